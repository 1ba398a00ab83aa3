"""The device queue with real processes (issue 9): order, the slot limit, cancel, killed holders
and waiters, and a launcher that exits.

Most workers here are stand-ins that go through the real path (jobs.start_worker's ticket and
detached Popen, cli._in_slot, queue.slot) and then, instead of training, hold their slot until
the test drops a RELEASE file in their folder: the test decides when a slot frees, so nothing
depends on how fast this machine is. The cancel test queues a real `python -m cifarkit train`
worker, and the launcher test runs two real tiny runs end to end.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cifarkit import cli, jobs, processes, queue, rundir, runs, settings
from tests.conftest import wait_for
from tests.unit.test_runs import tiny_config

REPO_ROOT = Path(__file__).resolve().parents[2]
RELEASE = "RELEASE"  # a stand-in holds its slot until this file appears in its folder
# A worker as `python -m cifarkit train --run-dir` is, up to the training itself.
STAND_IN = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from cifarkit import cli, rundir, runs

    folder = Path(sys.argv[1])

    def hold() -> int:
        rundir.update_status(folder, gpu=os.environ.get("CUDA_VISIBLE_DEVICES"),
                             loaded_tensorflow="tensorflow" in sys.modules)
        while not (folder / "RELEASE").exists():
            time.sleep(0.05)
        rundir.update_status(folder, status="completed", finished=time.time())
        return 0

    sys.exit(cli._in_slot(folder, runs.KIND, hold))
""")
_POPEN = subprocess.Popen  # the real one, while the fixture patches the module


@pytest.fixture(autouse=True)
def _one_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFARKIT_SLOTS", "1")


@pytest.fixture
def workers() -> Iterator[list[dict]]:
    """The identity of every worker a test started (each leads its own session); those still
    alive at the end are killed, and only they (a pid may have been reused meanwhile)."""
    started: list[dict] = []
    yield started
    for identity in started:
        if processes.is_alive(identity["pid"], identity["pid_started"]):
            os.killpg(identity["pid"], signal.SIGKILL)


@pytest.fixture
def launch_stand_in(monkeypatch: pytest.MonkeyPatch,
                    workers: list[dict]) -> Callable[[], runs.Run]:
    """runs.launch, with the worker's command swapped for STAND_IN (same folder, same env,
    same detached session)."""
    def popen(command: list[str], **options: object) -> subprocess.Popen:
        folder = command[command.index("--run-dir") + 1]
        return _started(workers, [sys.executable, "-c", STAND_IN, folder], **options)

    monkeypatch.setattr(jobs.subprocess, "Popen", popen)
    return lambda: runs.launch(tiny_config())


def release(run: runs.Run) -> None:
    (run.path / RELEASE).touch()


def status(run: runs.Run) -> str:
    return runs.load(run.run_id).status


def wait_status(run: runs.Run, wanted: str) -> runs.Run:
    wait_for(lambda: status(run) == wanted, timeout=60, what=f"{run.run_id} {wanted}")
    return runs.load(run.run_id)


def line() -> list[tuple[str, str, int | None]]:
    """The queue as (job id, state, position)."""
    return [(entry.job_id, entry.state, entry.position) for entry in queue.entries()]


def test_jobs_start_in_launch_order_one_at_a_time(launch_stand_in) -> None:
    launched = [launch_stand_in() for _ in range(3)]
    wait_status(launched[0], "running")
    assert line() == [(launched[0].run_id, "running", None), (launched[1].run_id, "queued", 1),
                      (launched[2].run_id, "queued", 2)]
    for run in launched:
        release(run)
    done = [runs.wait(run.run_id, timeout=60) for run in launched]
    assert [run.status for run in done] == ["completed"] * 3
    taken = [run.info["slot_taken"] for run in done]
    assert taken == sorted(taken)  # launch order is start order
    for before, after in itertools.pairwise(done):
        assert after.info["slot_taken"] >= before.info["finished"]  # one slot: one at a time
    assert queue.entries() == []


def test_two_slots_let_two_run_and_never_more(monkeypatch: pytest.MonkeyPatch,
                                             launch_stand_in) -> None:
    monkeypatch.setenv("CIFARKIT_SLOTS", "2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # two GPUs: one per slot
    launched = [launch_stand_in() for _ in range(4)]
    first, second, third, fourth = launched
    # With two slots free, 1st and 2nd in line may each take one in either order.
    wait_status(first, "running")
    wait_status(second, "running")
    assert [status(run) for run in launched] == ["running", "running", "queued", "queued"]
    assert line()[2:] == [(third.run_id, "queued", 1), (fourth.run_id, "queued", 2)]
    release(second)
    wait_status(third, "running")
    assert [status(run) for run in (first, second, fourth)] == ["running", "completed", "queued"]
    for run in launched:
        release(run)
    done = [runs.wait(run.run_id, timeout=60) for run in launched]
    spans = [(run.info["slot_taken"], run.info["finished"]) for run in done]
    most = max(sum(start <= moment < end for start, end in spans) for moment, _ in spans)
    assert most == 2
    assert {run.info["slot"]: run.info["gpu"] for run in done[:2]} == {0: "3", 1: "5"}
    assert not any(run.info["loaded_tensorflow"] for run in done)


def test_a_stop_cancels_a_queued_run_that_never_loads_tensorflow(
        monkeypatch: pytest.MonkeyPatch, launch_stand_in, workers: list[dict],
        capsys: pytest.CaptureFixture) -> None:
    holder = launch_stand_in()
    wait_status(holder, "running")
    # The real worker command, with every import it makes written to its log.
    monkeypatch.setattr(jobs.subprocess, "Popen", lambda command, **options: _started(
        workers, [*command[:1], "-X", "importtime", *command[1:]], **options))
    run = runs.launch(tiny_config())
    log = run.path / rundir.LOG
    wait_for(lambda: "queued, 1st in line" in log.read_text(), timeout=60, what="waiting")
    pid = runs.load(run.run_id).info["pid"]
    assert pid == workers[-1]["pid"]  # status.json names the waiter itself
    rss_mb = _rss_mb(pid)
    print(f"\nRSS of a worker waiting in line: {rss_mb:.1f} MB")
    assert rss_mb < 150  # TensorFlow alone takes several hundred MB
    imported = [text.rsplit("|", 1)[1].strip() for text in log.read_text().splitlines()
                if text.startswith("import time:") and "|" in text]
    assert "cifarkit.queue" in imported
    assert not [name for name in imported if name.split(".")[0] in ("tensorflow", "keras")]

    runs.stop(run.run_id)
    cancelled = runs.wait(run.run_id, timeout=60)
    assert cancelled.status == "cancelled" and cancelled.can_resume
    assert cancelled.info["note"] == queue.CANCEL_NOTE
    assert sorted(path.name for path in run.path.iterdir()) == [
        rundir.STOP, rundir.CONFIG, rundir.STATUS, rundir.LOG]  # kept, nothing trained
    assert f"{run.run_id}: {queue.CANCEL_NOTE}" in log.read_text().splitlines()
    assert line() == [(holder.run_id, "running", None)]

    runs.resume(run.run_id)  # back in line, at the end
    wait_for(lambda: line()[1:] == [(run.run_id, "queued", 1)], timeout=30, what="in line")
    assert status(run) == "queued"
    capsys.readouterr()
    assert cli.main(["runs", "stop", run.run_id]) == 0
    assert capsys.readouterr().out == (f"cancelled run {run.run_id} while it waited in the "
                                       "queue; resume puts it back in line\n")
    assert runs.wait(run.run_id, timeout=60).status == "cancelled"
    release(holder)


def _started(workers: list[dict], command: list[str], **options: object) -> subprocess.Popen:
    process = _POPEN(command, **options)
    workers.append(processes.process_identity(process.pid))
    return process


def _rss_mb(pid: int) -> float:
    for text in Path(f"/proc/{pid}/status").read_text().splitlines():
        if text.startswith("VmRSS:"):
            return int(text.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_a_killed_holder_frees_its_slot(launch_stand_in) -> None:
    holder, waiter = launch_stand_in(), launch_stand_in()
    wait_status(holder, "running")
    os.killpg(runs.load(holder.run_id).info["pid"], signal.SIGKILL)
    wait_status(waiter, "running")  # the kernel dropped the dead holder's lock
    assert status(holder) == "interrupted"
    assert line() == [(waiter.run_id, "running", None)]
    release(waiter)
    assert runs.wait(waiter.run_id, timeout=60).status == "completed"


def test_a_killed_waiter_is_interrupted_and_does_not_block_the_line(launch_stand_in) -> None:
    holder, killed, last = (launch_stand_in() for _ in range(3))
    wait_status(holder, "running")
    wait_for(lambda: len(line()) == 3, timeout=30, what="three in the queue")
    os.killpg(runs.load(killed.run_id).info["pid"], signal.SIGKILL)
    wait_status(killed, "interrupted")
    assert line() == [(holder.run_id, "running", None), (last.run_id, "queued", 1)]
    release(holder)
    release(last)
    assert runs.wait(last.run_id, timeout=60).status == "completed"
    assert status(killed) == "interrupted" and runs.load(killed.run_id).can_resume


def test_jobs_complete_after_the_launcher_exits(workers: list[dict]) -> None:
    """Two real tiny runs launched by a process that exits at once (as a Streamlit server that
    restarts): both train to the end, one after the other, with no page and no daemon."""
    launcher = textwrap.dedent("""
        from cifarkit import runs
        from tests.unit.test_runs import tiny_config
        for _ in range(2):
            print(runs.launch(tiny_config(epochs=1)).run_id)
    """)
    started = subprocess.run([sys.executable, "-c", launcher], cwd=REPO_ROOT, text=True,
                             capture_output=True, timeout=120, env={**os.environ})
    assert started.returncode == 0, started.stderr
    ids = started.stdout.split()
    workers.extend(processes.process_identity(runs.load(run_id).info["pid"]) for run_id in ids)
    done = [runs.wait(run_id, timeout=400) for run_id in ids]
    assert [run.status for run in done] == ["completed", "completed"], [
        (run.path / rundir.LOG).read_text()[-1500:] for run in done]
    assert all((run.path / rundir.BEST_MODEL).is_file() for run in done)
    assert done[1].info["slot_taken"] >= done[0].info["finished"]
    assert done[1].info["queued_seconds"] > 0
    assert queue.entries() == [] and settings.slots() == 1
