"""A class on one server: page latency, training throughput and memory while students watch.

Run on demand (not part of the tests), on a machine nobody else is using:
    python benchmarks/load_classroom.py --sessions 20 --max-seconds 900
It starts `streamlit run app.py` on a free port, with every folder it writes (runs, searches,
uploads, queue, class) in one temporary folder, and then:
  1. trains one tiny run (digits) with nobody watching: the quiet speed;
  2. (with --see-others the teacher lets students see each other's runs); N students, each
     a simulated browser tab (benchmarks/stclient.py speaks the app's WebSocket protocol; 30
     real browsers would measure themselves on a small machine), launch one tiny run each (they
     queue for the device slot) and open the Train page, whose live panel every tab reruns on
     its 2 s timer, as the browser does, until the student's own run has ended (Train
     watches the person's own runs: 19 tabs watch the first run while theirs wait in line);
  3. trains one more tiny run with nobody watching, so a drift of the machine shows.
Page latency is the time from a tab's rerun request to its script_finished; throughput is
images/s between a run's batch rows while all N tabs polled (benchmarks/loadstats.py). At the
end, at --max-seconds or on Ctrl-C/SIGTERM, every worker and the server are stopped and the
folder removed. Prints a Markdown table, writes benchmarks/results-load-<host>.json, and exits
1 naming what failed (runs not completed, reruns failed, too many runs at once, memory low).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import loadstats, procs
from benchmarks.stclient import PageSession
from cifarkit import classroom, rundir, runs, settings
from cifarkit.config import CallbacksConfig, DataConfig, ModelConfig, RunConfig, TrainingConfig
from tests.e2e.conftest import AppServer  # the suite's way to start the app

MAX_SESSIONS = 30  # a class; more would measure this script more than the server
SAMPLE_EVERY_S = 0.5  # memory and job statuses
TEARDOWN_S = 20.0  # kept back from --max-seconds to stop everything
EARLY_STOP_S = 10.0  # a tab that stopped polling this long before the last run ended stopped early
MIN_AVAILABLE = 0.10  # stop the test when less than this share of the memory is left
# Every folder the app and the workers write, inside the test's own folder (never the class's).
FOLDERS = {"CIFARKIT_RUNS_DIR": "runs", "CIFARKIT_SEARCHES_DIR": "searches",
           "CIFARKIT_UPLOADS_DIR": "uploads", "CIFARKIT_QUEUE_DIR": "queue",
           "CIFARKIT_CLASS_DIR": "class"}
WRITTEN = ("runs_dir", "searches_dir", "uploads_dir", "queue_dir", "class_dir", "people_dir",
           "classroom_file")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20,
                        help=f"simulated students, each with a tab and a run (1-{MAX_SESSIONS})")
    parser.add_argument("--max-seconds", type=float, default=600,
                        help="wall-clock cap for the whole test, teardown included")
    parser.add_argument("--architecture", default="simple_cnn")
    parser.add_argument("--input-size", type=int, default=64,
                        help="digits upscaled to this size: long enough batches to time")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--see-others", action="store_true",
                        help="the teacher lets students see each other's runs (read-only; "
                        "default: the class default, each student sees their own)")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= MAX_SESSIONS:
        parser.error(f"--sessions must be 1 to {MAX_SESSIONS}, got {args.sessions}")
    if args.max_seconds <= TEARDOWN_S:
        parser.error(f"--max-seconds must be over {TEARDOWN_S:.0f} (teardown time), "
                     f"got {args.max_seconds:g}")
    return args


def tiny_config(args: argparse.Namespace, name: str) -> RunConfig:
    """Digits (offline, 1,797 images) and a small net; no early stop, so every run is alike."""
    return RunConfig(name=name, data=DataConfig(source="digits"),
                     model=ModelConfig(architecture=args.architecture,
                                       input_size=args.input_size),
                     training=TrainingConfig(epochs=args.epochs, batch_size=args.batch_size),
                     callbacks=CallbacksConfig(early_stopping=False, reduce_lr=False))


def isolate(folder: Path) -> None:
    """Point every folder cifarkit writes into `folder` (for this process, the server and the
    workers alike), and refuse to start if any still lies outside it."""
    for variable, name in FOLDERS.items():
        os.environ[variable] = str(folder / name)
    for name in WRITTEN:
        where = getattr(settings, name)
        if not Path(where()).resolve().is_relative_to(folder.resolve()):
            raise SystemExit(f"error: settings.{name}() is {where()}, outside the test's "
                             f"folder {folder}: refusing to write there")


def open_class(see_others: bool) -> None:
    """The class settings a teacher would choose: whether students see each other's runs."""
    teacher = classroom.Person("load-test-teacher", "Teacher", teacher=True)
    classroom.set_class_rules(teacher, students_see_others=see_others)


def enrol(index: int) -> classroom.Person:
    """Student `index` of the class, by a typed name (the app keeps its key in `?me=`)."""
    return classroom.register(f"Student {index:02d}")


def launch(config: RunConfig, person: classroom.Person | None) -> str:
    """A run launched through the package as `person` (None: whoever runs this script); its
    worker waits in cifarkit's device queue until a slot is free."""
    return runs.launch(config, by=person).run_id


@dataclass
class Samples:
    """The machine and the jobs, sampled every SAMPLE_EVERY_S."""

    start_used_mb: float
    total_mb: float
    peak_used_mb: float = 0.0
    peak_ours_mb: float = 0.0
    max_running: int = 0
    max_queued: int = 0
    low_memory: str | None = None
    # run id -> wall time of its training clock's zero, to place its batch rows in time
    clock_zero: dict[str, float] = field(default_factory=dict)

    def take(self, folder: Path, server_pid: int) -> None:
        used, total = procs.machine_memory_mb()
        self.peak_used_mb = max(self.peak_used_mb, used)
        ours = [server_pid, *procs.pids_naming(folder)]  # the tabs stand for browsers
        self.peak_ours_mb = max(self.peak_ours_mb, sum(procs.rss_mb(pid) for pid in ours))
        every = runs.list_runs()
        counts = collections.Counter(run.status for run in every)
        for run in every:
            if run.info.get("training_started"):  # set while it trains, cleared at the end
                self.clock_zero.setdefault(run.run_id, run.info["training_started"]
                                           - (run.info.get("elapsed_before") or 0.0))
        self.max_running = max(self.max_running, counts["running"])
        self.max_queued = max(self.max_queued, counts["queued"])
        if total - used < MIN_AVAILABLE * total:
            self.low_memory = f"only {total - used:,.0f} MB of {total:,.0f} MB left"


@dataclass
class LoadTest:
    """One load test's server, folder and what it has measured so far."""

    args: argparse.Namespace
    folder: Path
    server: AppServer
    samples: Samples
    quiet: list[str] = field(default_factory=list)  # runs trained with nobody watching
    students: list[str] = field(default_factory=list)  # the students' runs
    tabs: list[PageSession] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=lambda: {"server": 0.0, "clients": 0.0})
    window: tuple[float, float] = (0.0, 0.0)  # wall times all N tabs were polling
    opened: float = 0.0  # wall time the students launched and opened the page
    ended: float = 0.0  # wall time the last student run ended
    tab_crashes: list[str] = field(default_factory=list)  # a tab's watch loop that raised
    capped: bool = False

    def page_query(self, key: str) -> str:
        return urllib.parse.urlencode({"me": key})

    async def until_ended(self, run_ids: list[str]) -> None:
        while any(runs.load(run_id).is_active for run_id in run_ids):
            await asyncio.sleep(SAMPLE_EVERY_S)

    async def warm_up(self) -> None:
        """One page load nobody counts: the server's first imports of every page module."""
        tab = PageSession(self.server.url, "train", self.page_query(enrol(0).key))
        await tab.open()
        await tab.rerun()
        await tab.close()

    async def quiet_run(self) -> None:
        run_id = launch(tiny_config(self.args, f"quiet-{len(self.quiet) + 1}"), None)
        self.quiet.append(run_id)
        await self.until_ended([run_id])

    async def watched_runs(self) -> None:
        """The students launch their runs (all queue at once) and open Train, whose live panel
        every tab reruns until its own run has ended."""
        open_class(see_others=self.args.see_others)
        self.opened = time.time()
        people = [enrol(index + 1) for index in range(self.args.sessions)]
        for person in people:
            self.launch_student(person)
        self.tabs = [PageSession(self.server.url, "train", self.page_query(person.key))
                     for person in people]
        await asyncio.gather(*(tab.open() for tab in self.tabs))
        await asyncio.gather(*(tab.rerun() for tab in self.tabs))  # the class opens the page
        stop = asyncio.Event()
        watching = [asyncio.create_task(tab.watch(stop)) for tab in self.tabs]
        before = self._cpu_now()
        try:
            await self.until_ended(self.students)
            self.ended = time.time()
        finally:
            after = self._cpu_now()
            seconds = max(after["wall"] - before["wall"], 1e-9)
            self.cpu = {name: (after[name] - before[name]) / seconds
                        for name in ("server", "clients")}
            self.cpu["server_seconds"] = after["server"] - before["server"]
            stop.set()
            outcomes = await asyncio.gather(*watching, return_exceptions=True)
            self.tab_crashes = [repr(outcome) for outcome in outcomes
                                if isinstance(outcome, Exception)]
            await asyncio.gather(*(tab.close() for tab in self.tabs), return_exceptions=True)
            self.window = all_watching(self.tabs)

    def launch_student(self, person: classroom.Person) -> None:
        name = f"student-{len(self.students) + 1:02d}"
        self.students.append(launch(tiny_config(self.args, name), person))

    def _cpu_now(self) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"server": procs.cpu_seconds(self.server.process.pid),
                "clients": usage.ru_utime + usage.ru_stime, "wall": time.monotonic(),
                "time": time.time()}

    async def sample(self, phases: asyncio.Task) -> None:
        """Sample until cancelled; cancels the phases when memory runs low."""
        while True:
            self.samples.take(self.folder, self.server.process.pid)
            if self.samples.low_memory:
                phases.cancel()
                return
            await asyncio.sleep(SAMPLE_EVERY_S)

    async def run(self) -> None:
        """The three phases, within --max-seconds (less the teardown time)."""
        async def phases() -> None:
            await self.warm_up()
            await self.quiet_run()
            await self.watched_runs()
            await self.quiet_run()

        task = asyncio.create_task(phases())
        sampler = asyncio.create_task(self.sample(task))
        done, _ = await asyncio.wait({task}, timeout=self.args.max_seconds - TEARDOWN_S)
        if not done:
            self.capped = True
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler


def all_watching(tabs: list[PageSession]) -> tuple[float, float]:
    """The wall times between which every tab was polling its live panel (empty if some
    never did)."""
    spans = [tab.watching() for tab in tabs]
    if not spans or None in spans:
        return (0.0, 0.0)
    return max(span[0] for span in spans), min(span[1] for span in spans)


def per_rerun(test: LoadTest) -> float | None:
    """The server's CPU seconds per rerun while the class watched: what each tab's poll costs,
    whatever else the machine was doing (latencies on a busy machine say more about it)."""
    polls = sum(rerun.kind == "fragment" for tab in test.tabs for rerun in tab.reruns)
    return test.cpu.get("server_seconds", 0.0) / polls if polls else None


def stopped_early(tabs: list[PageSession], ends: list[float]) -> int:
    """Tabs whose live panel stopped polling well before their own student's run ended (at
    ends[i], for tabs[i]), which a browser's would not do: Train polls while the person's own
    run is queued or running."""
    spans = [tab.watching() for tab in tabs]
    return sum(span is None or span[1] < end - EARLY_STOP_S
               for span, end in zip(spans, ends, strict=True))


def run_ends(test: LoadTest) -> list[float]:
    """When each student's run ended (status.json's finished; the class's end if unknown)."""
    ends = []
    for run_id in test.students:
        finished = runs.load(run_id).info.get("finished")
        ends.append(float(finished) if isinstance(finished, (int, float)) else test.ended)
    return ends


def run_speeds(run_ids: list[str], test: LoadTest, window: tuple[float, float]
               ) -> list[dict[str, Any]]:
    """Each run's final status and its steady training speed while `window` (wall times)."""
    speeds = []
    for run_id in run_ids:
        run = runs.load(run_id)
        stretches = loadstats.steady_stretches(rundir.read_metrics(run.path),
                                               test.args.batch_size)
        zero = test.samples.clock_zero.get(run_id)
        images, seconds = (0, 0.0) if zero is None else loadstats.within(stretches, zero,
                                                                         window)
        speeds.append({"run": run_id, "status": run.status, "error": run.info.get("error"),
                       "images": images, "seconds": round(seconds, 3),
                       "stretches": len(stretches),
                       "images_per_second": round(images / seconds, 1) if seconds else None})
    return speeds


def summarise(test: LoadTest, wall: float) -> dict[str, Any]:
    """Everything measured, as the JSON result (the table is drawn from it)."""
    quiet = run_speeds(test.quiet, test, (0.0, float("inf")))  # no tab exists then
    watched = run_speeds(test.students, test, test.window)
    quiet_rate = loadstats.throughput((row["images"], row["seconds"]) for row in quiet)
    watched_rate = loadstats.throughput((row["images"], row["seconds"]) for row in watched)
    reruns = [rerun for tab in test.tabs for rerun in tab.reruns]
    failures = collections.Counter(error for rerun in reruns for error in rerun.errors)
    samples = test.samples
    return {
        "sessions": test.args.sessions, "settings": vars(test.args), "machine": machine(),
        "latency": {kind: loadstats.latency([r.seconds for r in reruns if r.kind == kind])
                    for kind in ("page", "fragment")},
        "reruns": len(reruns), "failed_reruns": sum(not rerun.ok for rerun in reruns),
        "rerun_errors": dict(failures),
        "tabs": [[[rerun.kind, round(rerun.sent - test.opened, 2), round(rerun.seconds, 3)]
                  for rerun in tab.reruns] for tab in test.tabs],  # t=0: the class launched
        "all_watching_s": [round(edge - test.opened, 2) for edge in test.window],
        "tabs_stopped_early": stopped_early(test.tabs, run_ends(test)) if test.ended else 0,
        "tab_crashes": test.tab_crashes,
        "throughput": {"quiet": quiet_rate, "quiet_each": [r["images_per_second"] for r in quiet],
                       "watched": watched_rate,
                       "watched_runs": sum(bool(row["seconds"]) for row in watched),
                       "drop": loadstats.drop(quiet_rate, watched_rate)},
        "runs": {"quiet": quiet, "students": watched},
        "jobs": {"launched": len(watched),
                 "completed": sum(row["status"] == "completed" for row in watched),
                 "max_running": samples.max_running, "max_queued": samples.max_queued},
        "memory": {"total_mb": samples.total_mb, "start_used_mb": samples.start_used_mb,
                   "peak_used_mb": samples.peak_used_mb, "peak_ours_mb": samples.peak_ours_mb,
                   "low": samples.low_memory},
        "cpu": {**test.cpu, "server_seconds_per_rerun": per_rerun(test)},
        "wall_seconds": round(wall, 1), "capped": test.capped,
    }


def machine() -> dict[str, Any]:
    total = procs.machine_memory_mb()[1]
    return {"host": platform.node(), "cpus": os.cpu_count(), "memory_gb": round(total / 1024),
            "gpus": len(settings.visible_gpus()), "python": platform.python_version(),
            "slots": settings.slots()}


def caption(result: dict[str, Any]) -> str:
    """What was measured, on what: the line above the table."""
    options, where = result["settings"], result["machine"]
    seen = "every run" if options["see_others"] else "own run only"
    return (f"{result['sessions']} simulated tabs on Train (students see {seen}), one run each: "
            f"digits, {options['architecture']} at {options['input_size']} px, "
            f"{options['epochs']} epochs, batch {options['batch_size']}; "
            f"{where['slots']} slot(s), {where['cpus']} CPUs, {where['memory_gb']} GB, "
            f"{where['gpus']} GPU(s), host {where['host']}")


def verdict(result: dict[str, Any]) -> list[str]:
    """What failed the test, one line each (empty: it passed)."""
    problems = []
    jobs = result["jobs"]
    if result["memory"]["low"]:
        problems.append(f"stopped early: {result['memory']['low']}")
    if result["capped"]:
        problems.append(f"stopped at --max-seconds {result['settings']['max_seconds']:g}")
    if jobs["launched"] < result["sessions"] or jobs["completed"] < jobs["launched"]:
        problems.append(f"{jobs['completed']} of {result['sessions']} student runs completed")
    slots = result["machine"]["slots"]
    if jobs["max_running"] > slots:
        problems.append(f"{jobs['max_running']} runs trained at once on {slots} slot(s)")
    if result["tabs_stopped_early"] or result["tab_crashes"]:
        problems.append(f"{result['tabs_stopped_early']} tab(s) stopped polling early, "
                        f"{len(result['tab_crashes'])} crashed: {result['tab_crashes']}")
    if result["failed_reruns"]:
        problems.append(f"{result['failed_reruns']} reruns failed: {result['rerun_errors']}")
    return problems


def teardown(folder: Path, server: AppServer) -> None:
    """Stop every worker of the test's jobs (they name its folder) and the server, then remove
    the folder; says what needed a SIGKILL."""
    killed = procs.end_processes(procs.pids_naming(folder))
    if killed:
        print(f"killed {len(killed)} worker(s) that ignored SIGTERM: {killed}", file=sys.stderr)
    server.stop()
    shutil.rmtree(folder)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM tears down like Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="cifarkit-load-"))
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    try:
        isolate(folder)
        result, tail = measure(args, folder, started)
    except KeyboardInterrupt:
        print("interrupted: workers and server stopped, folder removed", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # isolate() refused, or teardown failed
    print(caption(result))
    print(loadstats.table(result))
    out = Path(__file__).with_name(f"results-load-{platform.node() or 'host'}.json")
    out.write_text(json.dumps(result, indent=2))
    problems = verdict(result)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if problems and tail:
        print(f"--- the server's log, last lines ---\n{tail}", file=sys.stderr)
    return 1 if problems else 0


def measure(args: argparse.Namespace, folder: Path, started: float) -> tuple[dict, str]:
    """Serve, run the phases, summarise; always tears down. Returns the result and the end of
    the server's log (printed if something failed)."""
    server = AppServer(folder)
    used, total = procs.machine_memory_mb()
    test = LoadTest(args, folder, server, Samples(used, total, used))
    log = folder / "streamlit.log"
    try:
        server.start()
        asyncio.run(test.run())
        return summarise(test, time.monotonic() - started), log.read_text()[-3000:]
    finally:
        if log.is_file() and sys.exc_info()[0] is not None:
            print(log.read_text()[-3000:], file=sys.stderr)
        teardown(folder, server)


if __name__ == "__main__":
    sys.exit(main())
