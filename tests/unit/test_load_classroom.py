"""The classroom load test's parts that need no server: its arithmetic, the tab's protocol
bookkeeping, the /proc readings, the refusals and the teardown of worker processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from benchmarks import load_classroom, loadstats, procs
from benchmarks.stclient import PageSession, Rerun, RunTracker, rerun_request
from cifarkit import settings

# metrics.jsonl batch rows of a real digits run (simple_cnn at 64 px, batch 64, 21 steps).
ROWS = [
    {"kind": "batch", "epoch": 1, "step": 1, "steps": 21, "elapsed": 2.046},
    {"kind": "batch", "epoch": 1, "step": 5, "steps": 21, "elapsed": 2.621},
    {"kind": "batch", "epoch": 1, "step": 11, "steps": 21, "elapsed": 3.197},
    {"kind": "batch", "epoch": 1, "step": 17, "steps": 21, "elapsed": 3.746},
    {"kind": "batch", "epoch": 1, "step": 21, "steps": 21, "elapsed": 4.056},
    {"kind": "epoch", "epoch": 1, "elapsed": 4.429},
    {"kind": "batch", "epoch": 2, "step": 1, "steps": 21, "elapsed": 4.592},
    {"kind": "batch", "epoch": 2, "step": 5, "steps": 21, "elapsed": 5.115},
    {"kind": "batch", "epoch": 2, "step": 21, "steps": 21, "elapsed": 6.627},
]


def test_latency_is_the_median_and_95th_percentile() -> None:
    assert loadstats.latency([0.5, 0.1, 0.2, 0.4, 0.3]) == pytest.approx(
        {"n": 5, "median": 0.3, "p95": 0.48})
    assert loadstats.latency([]) == {"n": 0, "median": None, "p95": None}


def test_steady_stretches_leave_out_each_epochs_start_and_its_last_partial_batch() -> None:
    assert loadstats.steady_stretches(ROWS, batch_size=64) == [
        (2.046, 2.621, 4 * 64), (2.621, 3.197, 6 * 64), (3.197, 3.746, 6 * 64),
        (4.592, 5.115, 4 * 64)]


def test_within_keeps_the_stretches_wholly_inside_the_window() -> None:
    stretches = loadstats.steady_stretches(ROWS, batch_size=64)
    images, seconds = loadstats.within(stretches, offset=100.0, window=(102.5, 104.0))
    assert images == 12 * 64  # 102.621-103.197 and 103.197-103.746; the first starts early
    assert seconds == pytest.approx(3.746 - 2.621)
    assert loadstats.within(stretches, 0.0, (0.0, float("inf"))) == (20 * 64,
                                                                      pytest.approx(2.223))


def test_throughput_weighs_runs_by_their_time_and_drop_compares_with_quiet() -> None:
    assert loadstats.throughput([(600, 1.0), (300, 2.0)]) == 300.0
    assert loadstats.throughput([]) is None
    assert loadstats.drop(500.0, 450.0) == pytest.approx(0.10)
    assert loadstats.drop(None, 450.0) is None
    assert loadstats.drop(500.0, None) is None


def test_memory_used_is_total_minus_available() -> None:
    text = "MemTotal:       24000000 kB\nMemFree:  1000 kB\nMemAvailable:   20000000 kB\n"
    used, total = procs.meminfo_used_mb(text)
    assert (used, total) == pytest.approx((4000000 / 1024, 24000000 / 1024))


def message(**fields) -> ForwardMsg:
    msg = ForwardMsg()
    for name, value in fields.items():
        if name == "script_finished":
            msg.script_finished = value
        else:
            getattr(msg, name).CopyFrom(value)
    return msg


def test_tracker_follows_live_fragments_and_ends_on_the_last_finish() -> None:
    tracker = RunTracker(fragments={"old": 2.0})
    start = message()
    start.new_session.page_script_hash = "train-hash"
    assert not tracker.feed(start)
    assert (tracker.page_hash, tracker.fragments) == ("train-hash", {})  # a full run resets
    timer = message()
    timer.auto_rerun.fragment_id, timer.auto_rerun.interval = "live", 2.0
    tracker.feed(timer)
    assert tracker.fragments == {"live": 2.0}
    assert not tracker.feed(message(script_finished=ForwardMsg.FINISHED_EARLY_FOR_RERUN))
    assert tracker.feed(message(script_finished=ForwardMsg.FINISHED_SUCCESSFULLY))
    assert tracker.feed(message(script_finished=ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY))
    cancel = message()
    cancel.stop_auto_rerun.fragment_ids.append("live")
    tracker.feed(cancel)
    assert tracker.fragments == {}
    assert tracker.errors == []


def test_tracker_records_the_exception_a_page_shows() -> None:
    tracker = RunTracker()
    shown = message()
    shown.delta.new_element.exception.type = "ModuleNotFoundError"
    tracker.feed(shown)
    assert tracker.feed(message(script_finished=ForwardMsg.FINISHED_WITH_COMPILE_ERROR))
    assert tracker.errors == ["ModuleNotFoundError", "script failed to compile"]


def test_rerun_request_asks_for_the_live_fragment_as_the_browser_timer_does() -> None:
    tracker = RunTracker(page_hash="train-hash", cached={"b", "a"})
    back = BackMsg()
    back.ParseFromString(rerun_request(tracker, "train", "me=k1", fragment_id="live"))
    state = back.rerun_script
    assert (state.page_name, state.page_script_hash, state.query_string) == (
        "train", "train-hash", "me=k1")
    assert (state.fragment_id, state.is_auto_rerun) == ("live", True)
    assert list(state.cached_message_hashes) == ["a", "b"]
    back.ParseFromString(rerun_request(RunTracker(), "train", ""))
    assert (back.rerun_script.fragment_id, back.rerun_script.is_auto_rerun) == ("", False)


@pytest.mark.parametrize(("argv", "reason"), [
    (["--sessions", "31"], "--sessions must be 1 to 30, got 31"),
    (["--sessions", "0"], "--sessions must be 1 to 30, got 0"),
    (["--max-seconds", "5"], "--max-seconds must be over 20 (teardown time), got 5"),
])
def test_out_of_bounds_settings_are_refused(argv, reason, capsys) -> None:
    with pytest.raises(SystemExit):
        load_classroom.parse_args(argv)
    assert capsys.readouterr().err.strip().endswith(f"error: {reason}")


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """isolate() sets these for the whole process: put them back after the test."""
    for variable in load_classroom.FOLDERS:
        monkeypatch.setenv(variable, "unused")


def test_isolate_points_every_written_folder_into_the_test_folder(tmp_path, isolated_env):
    load_classroom.isolate(tmp_path)
    assert settings.runs_dir() == tmp_path / "runs"
    assert settings.searches_dir() == tmp_path / "searches"
    assert settings.uploads_dir() == tmp_path / "uploads"


def test_isolate_refuses_a_folder_it_cannot_redirect(tmp_path, isolated_env, monkeypatch):
    monkeypatch.setattr(settings, "queue_dir", lambda: Path("/srv/class/queue"), raising=False)
    with pytest.raises(SystemExit) as refused:
        load_classroom.isolate(tmp_path / "test")
    assert str(refused.value) == (f"error: settings.queue_dir() is /srv/class/queue, outside "
                                  f"the test's folder {tmp_path / 'test'}: refusing to write "
                                  "there")


def test_teardown_finds_and_ends_the_workers_that_name_the_folder(tmp_path: Path) -> None:
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                               str(tmp_path / "runs" / "run-1")])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "elsewhere"])
    try:
        assert procs.pids_naming(tmp_path) == [worker.pid]
        assert procs.end_processes([worker.pid]) == []  # SIGTERM was enough
        assert worker.wait(timeout=10) == -15
        assert other.poll() is None
    finally:
        worker.kill()
        other.kill()


def tab(*reruns: tuple[str, float, float]) -> PageSession:
    """A tab that has already made these (kind, sent, seconds) reruns."""
    page = PageSession("http://127.0.0.1:1", "train")
    page.reruns = [Rerun(kind, sent, seconds) for kind, sent, seconds in reruns]
    return page


def test_all_watching_is_the_time_every_tab_was_polling_its_live_panel() -> None:
    first = tab(("page", 0.0, 3.0), ("fragment", 4.0, 0.5), ("fragment", 20.0, 1.0))
    second = tab(("page", 0.0, 5.0), ("fragment", 6.0, 0.5), ("fragment", 30.0, 0.5))
    assert first.watching() == (4.0, 21.0)
    assert load_classroom.all_watching([first, second]) == (6.0, 21.0)
    assert load_classroom.all_watching([first, tab(("page", 0.0, 3.0))]) == (0.0, 0.0)


def result(**changes) -> dict:
    """A load test's result as summarise() builds it, with `changes` applied on top."""
    base = {
        "sessions": 2, "settings": {"max_seconds": 600.0}, "machine": {"slots": 1},
        "latency": {"page": {"n": 2, "median": 1.5, "p95": 2.25},
                    "fragment": {"n": 1200, "median": 0.125, "p95": 0.5}},
        "reruns": 1202, "failed_reruns": 0, "rerun_errors": {}, "tabs_stopped_early": 0,
        "tab_crashes": [],
        "throughput": {"quiet": 500.0, "quiet_each": [510.0, 490.0], "watched": 460.0,
                       "watched_runs": 2, "drop": 0.08},
        "jobs": {"launched": 2, "completed": 2, "max_running": 1, "max_queued": 1},
        "memory": {"total_mb": 24000.0, "start_used_mb": 2000.0, "peak_used_mb": 3500.0,
                   "peak_ours_mb": 1900.0, "low": None},
        "cpu": {"server": 0.25, "clients": 0.05, "server_seconds_per_rerun": 0.0625},
        "wall_seconds": 312.4, "capped": False,
    }
    return {**base, **changes}


def test_table_reads_the_figures_with_their_units() -> None:
    lines = loadstats.table(result()).splitlines()
    assert lines[:2] == ["| measure | value |", "|---|---|"]
    assert "| page load, median / p95 | 1.50 s / 2.25 s (n=2) |" in lines
    assert "| live update, median / p95 | 0.12 s / 0.50 s (n=1,200) |" in lines
    assert ("| training images/s, nobody watching | 500 (runs before and after: 510, 490) |"
            in lines)
    assert "| training images/s, all 2 tabs polling | 460 (2 runs) |" in lines
    assert "| throughput drop | 8.0% (target < 10 %) |" in lines
    assert ("| student runs completed | 2 of 2 (at most 1 running and 1 queued at once) |"
            in lines)
    assert "| peak memory, whole machine | 3,500 MB of 24,000 MB (+1,500 MB) |" in lines
    assert ("| CPU while the class watched: server / the simulated tabs | 25% / 5% of one core |"
            in lines)
    assert "| server CPU per live update | 0.06 s |" in lines
    assert "| wall time | 312 s |" in lines


def test_verdict_names_each_thing_that_failed() -> None:
    assert load_classroom.verdict(result()) == []
    failed = result(capped=True, failed_reruns=3, rerun_errors={"KeyError": 3},
                    tabs_stopped_early=1, tab_crashes=["OSError('gone')"],
                    jobs={"launched": 2, "completed": 1, "max_running": 2, "max_queued": 0})
    assert load_classroom.verdict(failed) == [
        "stopped at --max-seconds 600",
        "1 of 2 student runs completed",
        "2 runs trained at once on 1 slot(s)",
        "1 tab(s) stopped polling early, 1 crashed: [\"OSError('gone')\"]",
        "3 reruns failed: {'KeyError': 3}",
    ]


def test_caption_says_what_ran_on_what() -> None:
    settings_ = {"max_seconds": 600.0, "see_others": True, "architecture": "simple_cnn",
                 "input_size": 64, "epochs": 2, "batch_size": 64}
    machine = {"slots": 1, "cpus": 2, "memory_gb": 24, "gpus": 0, "host": "vm"}
    assert load_classroom.caption(result(settings=settings_, machine=machine)) == (
        "2 simulated tabs on Train (students see every run), one run each: digits, simple_cnn "
        "at 64 px, 2 epochs, batch 64; 1 slot(s), 2 CPUs, 24 GB, 0 GPU(s), host vm")


class ClosedSocket:
    """A WebSocket the server has already dropped."""

    async def send(self, data: bytes) -> None:
        raise websockets.ConnectionClosed(None, None)


def test_a_dropped_connection_is_a_failed_rerun_and_ends_the_tabs_watch() -> None:
    page = tab()
    page.tracker.fragments = {"live": 2.0}
    page._socket = ClosedSocket()
    asyncio.run(page.watch(asyncio.Event()))
    assert [(rerun.kind, rerun.errors) for rerun in page.reruns] == [
        ("fragment", ["connection closed (no close frame received or sent)"])]


def test_tabs_that_stopped_polling_before_their_own_run_ended_are_counted() -> None:
    tabs = [tab(("fragment", 4.0, 1.0), ("fragment", 79.0, 1.0)),  # stopped at 80
            tab(("fragment", 4.0, 1.0), ("fragment", 98.0, 1.0)),  # polled to the end
            tab(("page", 0.0, 3.0))]  # never polled
    assert load_classroom.stopped_early(tabs, [100.0, 100.0, 100.0]) == 2
    assert load_classroom.stopped_early(tabs, [85.0, 100.0, 100.0]) == 1  # its own ended at 85
