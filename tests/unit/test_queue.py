"""The device queue's arithmetic and files, in one process: slots from the environment, the
words of a wait, the simulated wait from this machine's finished runs, the line's order and a
teacher's move. The queue's processes (workers waiting, killed, cancelled) are in
tests/reliability/test_queue.py."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cifarkit import classroom, cli, durations, jobs, processes, queue, rundir, runs, settings
from cifarkit.config import RunConfig, TrainingConfig
from tests.app.conftest import spawn_sleeper

TEACHER = classroom.Person("user-teacher", "Ms Teacher", teacher=True)
STUDENT = classroom.Person("user-alice", "Alice")


@pytest.fixture(autouse=True)
def _one_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFARKIT_SLOTS", "1")
    durations._cache.clear()  # each test has its own runs folder, but be explicit


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen]]:
    """Live stand-in workers (their pids make tickets live), killed at teardown."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def in_line(sleepers: list[subprocess.Popen], epochs: int = 2) -> Path:
    """A run folder with a ticket at the end of the line, held by a live stand-in."""
    path = runs.create(RunConfig(training=TrainingConfig(epochs=epochs)), by=TEACHER)
    sleepers.append(spawn_sleeper())
    queue.enqueue(path, "run", processes.process_identity(sleepers[-1].pid))
    return path


def holding(sleepers: list[subprocess.Popen], slot: int, since: float, epochs: int = 2) -> Path:
    """A run holding `slot` since `since` (its ticket as queue.slot leaves it)."""
    path = in_line(sleepers, epochs)
    ticket = settings.queue_dir() / queue.TICKETS / f"{path.name}.json"
    rundir.write_json_atomic(ticket, {**rundir.read_json(ticket), "state": "running",
                                      "slot": slot, "took": since})
    return path


def finished_run(per_epoch: float, overhead: float, epochs: int = 4) -> Path:
    """A completed run of the default recipe as training leaves it: epochs_run, train_seconds,
    and its time in the slot (slot_taken → finished)."""
    path = runs.create(RunConfig(training=TrainingConfig(epochs=epochs)), by=TEACHER)
    seconds = per_epoch * epochs
    rundir.update_status(path, status="completed", epochs_run=epochs, train_seconds=seconds,
                         slot_taken=1000.0, started=1005.0, finished=1000.0 + seconds + overhead)
    return path


# --- slots


@pytest.mark.parametrize(("value", "slots"), [("1", 1), ("2", 2), (" 3 ", 3), ("16", 16)])
def test_cifarkit_slots_sets_the_slot_count(monkeypatch: pytest.MonkeyPatch, value: str,
                                            slots: int) -> None:
    monkeypatch.setenv("CIFARKIT_SLOTS", value)
    assert settings.slots() == slots


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "2 3"])
def test_a_bad_slot_count_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                         value: str) -> None:
    monkeypatch.setenv("CIFARKIT_SLOTS", value)
    with pytest.raises(ValueError) as refused:
        settings.slots()
    assert str(refused.value) == f"CIFARKIT_SLOTS must be a whole number ≥ 1, got {value!r}"


@pytest.mark.parametrize(("visible", "gpus", "slots"), [
    ("0,1,2", ["0", "1", "2"], 3), ("3,5", ["3", "5"], 2), ("", [], 1), ("-1", [], 1),
    ("2,-1,3", ["2"], 1), ("GPU-8d2e,GPU-11aa", ["GPU-8d2e", "GPU-11aa"], 2)])
def test_without_cifarkit_slots_there_is_one_slot_per_visible_gpu(
        monkeypatch: pytest.MonkeyPatch, visible: str, gpus: list[str], slots: int) -> None:
    monkeypatch.delenv("CIFARKIT_SLOTS")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert settings.visible_gpus() == gpus
    assert settings.slots() == slots


@pytest.mark.skipif(Path("/proc/driver/nvidia/gpus").is_dir(), reason="a real NVIDIA driver")
def test_gpus_are_counted_with_nvidia_smi_when_nothing_else_says(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CIFARKIT_SLOTS")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert settings.slots() == 1  # no tool, no driver: a CPU machine
    tool = tmp_path / "nvidia-smi"
    tool.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-a)'\n"
                    "echo 'GPU 1: NVIDIA H200 (UUID: GPU-b)'\n")
    tool.chmod(0o755)
    assert settings.visible_gpus() == ["0", "1"]
    assert settings.slots() == 2


@pytest.mark.parametrize(("slot", "gpu"), [(0, "3"), (1, "5"), (2, "3"), (3, "5")])
def test_a_slot_gets_its_gpu_round_robin_with_memory_growth_on(
        monkeypatch: pytest.MonkeyPatch, slot: int, gpu: str) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    for name in queue.GPU_SHARING:
        monkeypatch.delenv(name, raising=False)
    queue._use_gpu(slot)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == gpu
    assert os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"


def test_a_cpu_machine_sets_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    queue._use_gpu(0)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""


def test_the_worker_environment_turns_memory_growth_on_unless_set(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH", raising=False)
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "true")  # the operator's own choice
    env = jobs._worker_env()
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "true"


# --- the words of a wait


@pytest.mark.parametrize(("number", "text"), [
    (1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (10, "10th"), (11, "11th"), (12, "12th"),
    (13, "13th"), (21, "21st"), (22, "22nd"), (23, "23rd"), (101, "101st"), (111, "111th"),
    (112, "112th")])
def test_ordinals(number: int, text: str) -> None:
    assert queue.ordinal(number) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "starting"), (4, "starting"), (20, "under a minute"), (75, "about 1 min"),
    (240, "about 4 min"), (3500, "about 58 min"), (3600, "about 1 h"),
    (4800, "about 1 h 20 min"), (7800, "about 2 h 10 min")])
def test_a_wait_in_words(seconds: float, text: str) -> None:
    assert queue.about(seconds) == text


# --- the line and its estimated waits


def test_the_line_is_in_launch_order_with_positions(sleepers: list) -> None:
    paths = [in_line(sleepers) for _ in range(3)]
    line = queue.entries()
    assert [entry.path for entry in line] == paths
    assert [entry.position for entry in line] == [1, 2, 3]
    assert {entry.state for entry in line} == {"queued"}
    assert [(entry.owner, entry.owner_name) for entry in line] == [(TEACHER.key, TEACHER.name)] * 3


def test_a_dead_waiters_ticket_is_dropped_and_the_line_closes_up(sleepers: list) -> None:
    first, second, third = (in_line(sleepers) for _ in range(3))
    sleepers[1].kill()
    sleepers[1].wait()
    assert [(entry.path, entry.position) for entry in queue.entries()] == [(first, 1), (third, 2)]
    assert not (settings.queue_dir() / queue.TICKETS / f"{second.name}.json").exists()


def test_a_second_enqueue_by_the_same_worker_keeps_its_place(sleepers: list) -> None:
    first, second = in_line(sleepers), in_line(sleepers)
    queue.enqueue(first, "run", processes.process_identity(sleepers[0].pid))
    assert [entry.path for entry in queue.entries()] == [first, second]


def test_waits_are_simulated_from_finished_runs_and_the_holders_progress(sleepers: list) -> None:
    finished_run(per_epoch=10.0, overhead=8.0)
    finished_run(per_epoch=12.0, overhead=4.0)  # medians: 11 s per epoch, 6 s around training
    now = time.time()
    holder = holding(sleepers, slot=0, since=now - 100, epochs=3)
    rundir.append_metrics(holder, {"kind": "epoch", "epoch": 1, "seconds": 20.0})
    rundir.append_metrics(holder, {"kind": "batch", "epoch": 2, "step": 5, "steps": 10,
                                   "seconds": 10.0})
    waiting = [in_line(sleepers, epochs=2) for _ in range(3)]  # each expected 6 + 2 × 11 = 28 s
    # The holder has half of epoch 2 (10 s) and epoch 3 (20 s) to go: 30 s.
    assert queue.waits(now=now) == {waiting[0].name: 30.0, waiting[1].name: 58.0,
                                    waiting[2].name: 86.0}
    texts = queue.wait_texts()
    assert texts[waiting[0]] == "queued, 1st in line, under a minute"
    assert texts[waiting[2]] == "queued, 3rd in line, about 1 min"
    assert queue.wait_text(holder) is None  # holding a slot, not waiting


def test_two_slots_take_turns_in_the_simulation(monkeypatch: pytest.MonkeyPatch,
                                                sleepers: list) -> None:
    monkeypatch.setenv("CIFARKIT_SLOTS", "2")
    finished_run(per_epoch=10.0, overhead=0.0)
    now = time.time()
    holding(sleepers, slot=1, since=now - 5, epochs=4)  # expected 40 s, held 5: 35 s left
    waiting = [in_line(sleepers, epochs=2) for _ in range(3)]  # 20 s each
    # slot 0 is free now: the 1st starts at once, the 2nd after it (20 s), the 3rd when the
    # holder of slot 1 is done (35 s) rather than after the 2nd (40 s).
    assert queue.waits(now=now) == {waiting[0].name: 0.0, waiting[1].name: 20.0,
                                    waiting[2].name: 35.0}


def test_without_finished_runs_the_wait_is_not_guessed(sleepers: list) -> None:
    holder = holding(sleepers, slot=0, since=time.time())
    waiting = [in_line(sleepers) for _ in range(4)]
    texts = queue.wait_texts()
    assert [texts[path] for path in waiting] == [
        "queued, 1st in line", "queued, 2nd in line", "queued, 3rd in line", "queued, 4th in line"]
    assert holder not in texts


def test_an_overrunning_holder_makes_the_wait_unknown(sleepers: list) -> None:
    finished_run(per_epoch=10.0, overhead=0.0)
    holding(sleepers, slot=0, since=time.time() - 500, epochs=2)  # expected 20 s, held 500 s
    waiting = in_line(sleepers)
    assert queue.wait_text(waiting) == "queued, 1st in line"


def test_a_job_not_in_line_has_no_wait_text() -> None:
    assert queue.wait_text(runs.create(RunConfig(), by=TEACHER)) is None


# --- a teacher moves jobs


def test_a_teacher_moves_a_job_to_the_front(sleepers: list) -> None:
    first, second, third = (in_line(sleepers) for _ in range(3))
    line = queue.move(third.name, 1, by=TEACHER)
    assert [(entry.path, entry.position) for entry in line] == [(third, 1), (first, 2),
                                                                (second, 3)]
    queue.move(third.name, 3, by=TEACHER)
    assert [entry.path for entry in queue.entries()] == [first, second, third]
    later = in_line(sleepers)  # a newcomer still joins at the end
    assert [entry.path for entry in queue.entries()] == [first, second, third, later]


def test_a_student_cannot_move_jobs(sleepers: list) -> None:
    first, second = in_line(sleepers), in_line(sleepers)
    with pytest.raises(classroom.NotAllowed) as refused:
        queue.move(second.name, 1, by=STUDENT)
    assert str(refused.value) == "only a teacher can move jobs in the queue"
    assert [entry.path for entry in queue.entries()] == [first, second]


@pytest.mark.parametrize("position", [0, 3, -1, "1", True])
def test_a_move_outside_the_line_is_refused(sleepers: list, position: object) -> None:
    first, second = in_line(sleepers), in_line(sleepers)
    with pytest.raises(jobs.JobError) as refused:
        queue.move(second.name, position, by=TEACHER)  # type: ignore[arg-type]
    assert str(refused.value) == (f"position must be 1 to 2 (the jobs waiting), "
                                  f"got {position!r}")
    assert [entry.path for entry in queue.entries()] == [first, second]


def test_only_a_waiting_job_can_be_moved(sleepers: list) -> None:
    holder = holding(sleepers, slot=0, since=time.time())
    in_line(sleepers)
    for job_id in (holder.name, "20260101-000000-simple_cnn-abcd"):
        with pytest.raises(jobs.JobError) as refused:
            queue.move(job_id, 1, by=TEACHER)
        assert str(refused.value) == f"{job_id} is not waiting in the queue"


def test_a_launch_with_a_bad_slot_count_is_refused_in_one_line(
        monkeypatch: pytest.MonkeyPatch, fake_worker: list, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("CIFARKIT_SLOTS", "zero")
    with pytest.raises(runs.RunError) as refused:
        runs.launch(RunConfig(), by=TEACHER)
    assert str(refused.value) == "CIFARKIT_SLOTS must be a whole number ≥ 1, got 'zero'"
    assert cli.main(["train", "--source", "digits", "--detach"]) == 2
    assert capsys.readouterr().err == ("error: CIFARKIT_SLOTS must be a whole number ≥ 1, "
                                       "got 'zero'\n")
    assert fake_worker == []  # no worker was started
