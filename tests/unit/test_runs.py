"""Runs as processes: launch, status, stop keeps the best model, kill = interrupted, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cifarkit import jobs, rundir, runs, settings
from cifarkit.config import CallbacksConfig, DataConfig, ModelConfig, RunConfig, TrainingConfig
from tests.conftest import wait_for


def tiny_config(epochs: int = 2, **training: object) -> RunConfig:
    """Digits (embedded, offline), a small CNN, ~300 images: seconds per epoch on 2 cores."""
    return RunConfig(
        name="tiny",
        data=DataConfig(source="digits", max_train_images=300, max_test_images=100),
        model=ModelConfig(architecture="simple_cnn"),
        training=TrainingConfig(epochs=epochs, batch_size=32, **training),
        callbacks=CallbacksConfig(early_stopping=False),
    )


def test_create_writes_config_and_queued_status() -> None:
    run_dir = runs.create(tiny_config())
    assert run_dir.parent == settings.runs_dir()
    assert RunConfig.load(run_dir / rundir.CONFIG) == tiny_config()
    assert rundir.read_status(run_dir)["status"] == "queued"


def test_create_refuses_an_invalid_config() -> None:
    with pytest.raises(ValueError, match=r"training\.epochs"):
        runs.create(tiny_config(epochs=0))
    assert not settings.runs_dir().exists() or not any(settings.runs_dir().iterdir())


def test_queued_run_without_a_process_is_interrupted() -> None:
    run_dir = runs.create(tiny_config())
    rundir.update_status(run_dir, status="running", pid=2**22 + 12345)  # no such process
    assert runs.load(run_dir.name).status == "interrupted"


def test_a_recycled_pid_of_another_program_is_not_the_worker() -> None:
    run_dir = runs.create(tiny_config())
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        identity = jobs.process_identity(other.pid)
        rundir.update_status(run_dir, status="running", **identity)
        assert runs.load(run_dir).status == "running"  # the recorded process itself is alive
        rundir.update_status(run_dir, pid_started=identity["pid_started"] - 1)
        assert runs.load(run_dir).status == "interrupted"  # same pid, another process
    finally:
        other.kill()
        other.wait()


def test_a_foreground_training_process_counts_as_running() -> None:
    """`python -m cifarkit train --source ...` trains in the CLI's own process: that process's
    identity in status.json is what makes the run live."""
    run_dir = runs.create(tiny_config())
    rundir.update_status(run_dir, status="running", **jobs.process_identity(os.getpid()))
    assert runs.load(run_dir).status == "running"


def test_a_stop_requested_before_the_worker_starts_is_honoured() -> None:
    """A STOP that reaches a run before its worker holds a device slot cancels it (the queue):
    nothing is trained, and it can be resumed."""
    run = runs.launch(tiny_config(epochs=3))
    runs.stop(run.run_id)  # the worker is still starting: it has not taken its slot
    stopped = runs.wait(run.run_id, timeout=180)
    assert stopped.status == "cancelled", (run.path / rundir.LOG).read_text()[-2000:]
    assert stopped.can_resume
    assert rundir.completed_epochs(run.path) == 0
    assert not (run.path / rundir.BEST_MODEL).exists()


def test_list_delete_and_refusals() -> None:
    first = runs.create(tiny_config())
    second = runs.create(tiny_config())
    rundir.update_status(first, status="completed")
    rundir.update_status(second, status="failed")
    assert {run.run_id for run in runs.list_runs()} == {first.name, second.name}
    with pytest.raises(runs.RunError, match="not running"):
        runs.stop(first.name)
    with pytest.raises(runs.RunError, match="only"):
        runs.resume(first.name)
    runs.delete(first.name)
    assert [run.run_id for run in runs.list_runs()] == [second.name]
    with pytest.raises(runs.RunError, match="no run"):
        runs.load("20260101-000000-simple_cnn-abcd")  # well-formed, absent


def test_metrics_reader_skips_a_half_written_line(tmp_path: Path) -> None:
    rundir.append_metrics(tmp_path, {"kind": "epoch", "epoch": 1, "val_accuracy": 0.5})
    with open(tmp_path / rundir.METRICS, "a") as handle:
        handle.write('{"kind": "epoch", "ep')
    assert rundir.epoch_rows(tmp_path) == [{"kind": "epoch", "epoch": 1, "val_accuracy": 0.5}]
    assert rundir.best_validation_accuracy(tmp_path) == 0.5


@pytest.mark.slow
def test_stopped_run_keeps_best_model_and_resumes_to_the_end() -> None:
    run = runs.launch(tiny_config(epochs=4))
    wait_for(lambda: rundir.completed_epochs(run.path) >= 1, what="first epoch")
    runs.stop(run.run_id)
    stopped = runs.wait(run.run_id, timeout=180)
    assert stopped.status == "stopped", (run.path / rundir.LOG).read_text()[-2000:]
    assert (run.path / rundir.BEST_MODEL).is_file()
    assert (run.path / rundir.PREDICTIONS).is_file()
    epochs_at_stop = rundir.completed_epochs(run.path)
    assert 1 <= epochs_at_stop < 4

    runs.resume(run.run_id)
    finished = runs.wait(run.run_id, timeout=300)
    assert finished.status == "completed", (run.path / rundir.LOG).read_text()[-2000:]
    assert [row["epoch"] for row in rundir.epoch_rows(run.path)] == [1, 2, 3, 4]
    assert finished.info["epochs_run"] == 4
    history = (run.path / rundir.HISTORY).read_text().splitlines()
    assert len(history) == 1 + 4


@pytest.mark.slow
def test_killed_run_is_interrupted_and_resumes() -> None:
    run = runs.launch(tiny_config(epochs=3))
    wait_for(lambda: rundir.completed_epochs(run.path) >= 1, what="first epoch")
    os.killpg(os.getpgid(run.info["pid"]), signal.SIGKILL)
    wait_for(lambda: runs.load(run.run_id).status == "interrupted", timeout=30,
             what="interrupted status")
    runs.resume(run.run_id)
    finished = runs.wait(run.run_id, timeout=300)
    assert finished.status == "completed", (run.path / rundir.LOG).read_text()[-2000:]
    assert rundir.completed_epochs(run.path) == 3


def test_a_crashing_run_is_failed_with_its_reason(tmp_path: Path) -> None:
    config = RunConfig(data=DataConfig(source="folder", path=str(tmp_path / "nowhere")))
    run = runs.launch(config)
    finished = runs.wait(run.run_id, timeout=180)
    assert finished.status == "failed"
    assert "nowhere" in finished.info["error"]
    assert "Traceback" in (run.path / rundir.LOG).read_text()
