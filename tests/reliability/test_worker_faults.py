"""Worker faults: a full disk or a crash inside fit ends the run as failed, explained, tidy.

Issue 7 defect 7 (disk full) and the simulated out-of-memory crash. Each run is a tiny digits
run trained in this process; the fault is injected in its second epoch (or at its end), so the
first epoch's checkpoint exists and must survive byte for byte.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import pytest

from cifarkit import evaluation, rundir, runs, training
from cifarkit.config import CallbacksConfig, DataConfig, ModelConfig, RunConfig, TrainingConfig

TEMPORARY = (".partial-*", "*.partial", ".*.json.*")  # what a cut-short save may leave


def tiny_config(name: str = "faulty") -> RunConfig:
    return RunConfig(
        name=name,
        data=DataConfig(source="digits", max_train_images=120, max_test_images=30),
        model=ModelConfig(architecture="simple_cnn"),
        training=TrainingConfig(epochs=2, batch_size=32),
        callbacks=CallbacksConfig(early_stopping=False, reduce_lr=False, checkpoint=False))


def disk_full() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def leftovers(run_dir: Path) -> list[str]:
    return sorted(path.name for pattern in TEMPORARY for path in run_dir.glob(pattern))


class Snapshot:
    """The checkpoints' bytes at the moment the fault strikes (what must survive it)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def take(self, run_dir: Path) -> None:
        for name in (rundir.LAST_MODEL, rundir.BEST_MODEL):
            self.files[name] = (run_dir / name).read_bytes()


def fail_checkpoint(monkeypatch: pytest.MonkeyPatch, run_dir: Path, snapshot: Snapshot) -> None:
    """Epoch 2's resume checkpoint runs out of space half-way through writing."""
    real_save = keras.Model.save
    saves: list[str] = []

    def save(model: keras.Model, filepath: Any, *args: Any, **kwargs: Any) -> None:
        saves.append(Path(filepath).name)
        if saves.count(f".partial-{rundir.LAST_MODEL}") == 2:
            snapshot.take(run_dir)
            Path(filepath).write_bytes(b"PK\x03\x04 half a zip")
            raise disk_full()
        real_save(model, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", save)


def fail_metrics(monkeypatch: pytest.MonkeyPatch, run_dir: Path, snapshot: Snapshot) -> None:
    """Appending epoch 2's first progress line runs out of space."""
    real_append = rundir.append_metrics

    def append(folder: Path, row: dict[str, Any]) -> None:
        if row.get("epoch") == 2:
            snapshot.take(run_dir)
            raise disk_full()
        real_append(folder, row)

    monkeypatch.setattr(rundir, "append_metrics", append)


def fail_status(monkeypatch: pytest.MonkeyPatch, run_dir: Path, snapshot: Snapshot) -> None:
    """Writing status.json after epoch 2 runs out of space and leaves its temporary file."""
    real_write = rundir.write_json_atomic

    def write(path: Path, value: dict[str, Any]) -> None:
        if value.get("epochs_run") == 2 and value.get("status") == "running":
            snapshot.take(run_dir)
            (path.parent / f".{path.name}.tmp123").write_text("")
            raise disk_full()
        real_write(path, value)

    monkeypatch.setattr(rundir, "write_json_atomic", write)


def fail_predictions(monkeypatch: pytest.MonkeyPatch, run_dir: Path,
                     snapshot: Snapshot) -> None:
    """Saving the test predictions at the end runs out of space half-way through."""

    def save(predictions: evaluation.Predictions, path: Any) -> Path:
        snapshot.take(run_dir)
        Path(f"{path}.partial").write_bytes(b"PK half")
        raise disk_full()

    monkeypatch.setattr(evaluation.Predictions, "save", save)


FAULTS: dict[str, tuple[Callable[..., None], str, str, int]] = {
    # fault -> (injector, what the message says is being saved, file named, checkpoint epoch)
    "checkpoint": (fail_checkpoint, "the resume checkpoint", rundir.LAST_MODEL, 1),
    "metrics": (fail_metrics, "the training progress", rundir.METRICS, 1),
    "status": (fail_status, "the status", rundir.STATUS, 2),
    "predictions": (fail_predictions, "the test predictions", rundir.PREDICTIONS, 2),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_disk_full_fails_the_run_with_one_line_and_keeps_the_checkpoint(
        fault: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    inject, what, filename, checkpoint_epoch = FAULTS[fault]
    run_dir = runs.create(tiny_config())
    snapshot = Snapshot()
    inject(monkeypatch, run_dir, snapshot)

    status = training.train(run_dir, verbose=0)

    message = f"disk full while saving {what} ({run_dir / filename})"
    assert status["status"] == "failed" and status["error"] == message
    assert rundir.read_status(run_dir)["status"] == "failed"
    assert rundir.read_status(run_dir)["error"] == message
    assert rundir.read_status(run_dir)["checkpoint_epoch"] == checkpoint_epoch
    assert leftovers(run_dir) == []
    assert snapshot.files, "the fault never struck"
    for name, content in snapshot.files.items():
        assert (run_dir / name).read_bytes() == content, f"{name} changed"
    output = capsys.readouterr()
    assert [line for line in output.out.splitlines() if "error" in line] == [f"error: {message}"]
    assert "Traceback" not in output.out + output.err


def test_a_status_that_cannot_be_written_gives_one_line_and_leaves_no_temporary_files(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = runs.create(tiny_config())
    snapshot = Snapshot()
    fail_metrics(monkeypatch, run_dir, snapshot)
    real_write = rundir.write_json_atomic

    def write(path: Path, value: dict[str, Any]) -> None:  # the disk stays full
        if value.get("status") == "failed":
            (path.parent / f".{path.name}.tmp456").write_text("")
            raise disk_full()
        real_write(path, value)

    monkeypatch.setattr(rundir, "write_json_atomic", write)
    status = training.train(run_dir, verbose=0)

    message = f"disk full while saving the training progress ({run_dir / rundir.METRICS})"
    assert status["status"] == "failed" and status["recorded"] is False
    on_disk = rundir.read_status(run_dir)
    assert on_disk["status"] == "running" and on_disk["epochs_run"] == 1  # the last good one
    assert leftovers(run_dir) == []
    lines = [line for line in capsys.readouterr().out.splitlines() if "error" in line]
    assert lines == [f"error: {message}; not recorded in {run_dir / rundir.STATUS} "
                     f"({os.strerror(errno.ENOSPC)})"]


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A real 15 MB tmpfs (needs root and mount rights; skipped elsewhere)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=15m", "tmpfs",
                              str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_really_full_disk_fails_the_run_and_keeps_the_checkpoint(
        small_filesystem: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Epoch 2 starts with 64 KB left: far too little for the checkpoint (hundreds of KB)."""
    run_dir = runs.create(tiny_config(), root=small_filesystem / "runs")
    snapshot = Snapshot()
    real_end = training.ResumeCheckpoint.on_epoch_end

    def fill_then_save(callback: training.ResumeCheckpoint, epoch: int,
                       logs: dict | None = None) -> None:
        if epoch == 1:
            snapshot.take(run_dir)
            stats = os.statvfs(small_filesystem)
            filler = max(0, stats.f_bavail * stats.f_frsize - 64 * 1024)
            with open(small_filesystem / "filler", "wb") as handle:
                handle.truncate(0)
                handle.write(b"\0" * filler)
        real_end(callback, epoch, logs)

    monkeypatch.setattr(training.ResumeCheckpoint, "on_epoch_end", fill_then_save)
    status = training.train(run_dir, verbose=0)

    message = f"disk full while saving the resume checkpoint ({run_dir / rundir.LAST_MODEL})"
    assert status["status"] == "failed" and status["error"] == message
    assert rundir.read_status(run_dir)["error"] == message
    assert leftovers(run_dir) == []
    for name, content in snapshot.files.items():
        assert (run_dir / name).read_bytes() == content, f"{name} changed"


ROOT = Path(__file__).resolve().parents[2]
OOM_MESSAGE = "OOM when allocating tensor with shape[32,32,32,32] (simulated)"
# A worker process exactly as jobs.start_worker starts it, with fit's second epoch running out
# of device memory (what TensorFlow raises then).
OOM_WORKER = f"""
import sys
import tensorflow as tf
from cifarkit import cli, training

real = training.ProgressWriter.on_train_batch_end

def out_of_memory(self, batch, logs=None):
    if self._epoch == 2:
        raise tf.errors.ResourceExhaustedError(None, None, {OOM_MESSAGE!r})
    real(self, batch, logs)

training.ProgressWriter.on_train_batch_end = out_of_memory
sys.exit(cli.main(["train", "--run-dir", sys.argv[1]]))
"""


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_out_of_memory_in_fit_fails_the_run_with_log_tail_and_spares_other_runs() -> None:
    from tests.app.conftest import fabricate_run, open_page, page_path

    other = fabricate_run(1, "completed", name="bystander")
    before = folder_bytes(other.path)
    run_dir = runs.create(tiny_config("out-of-memory"))
    with open(run_dir / rundir.LOG, "w") as log:
        worker = subprocess.run(
            [sys.executable, "-c", OOM_WORKER, str(run_dir)], stdout=log,
            stderr=subprocess.STDOUT, cwd=ROOT, timeout=300,
            env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})

    error = f"ResourceExhaustedError: {OOM_MESSAGE}"
    assert worker.returncode == 1
    run = runs.load(run_dir)
    assert run.status == "failed" and run.info["error"] == error
    assert run.info["checkpoint_epoch"] == 1 and (run_dir / rundir.LAST_MODEL).is_file()
    assert leftovers(run_dir) == []
    log_lines = (run_dir / rundir.LOG).read_text().splitlines()
    assert log_lines[-1] == f"error: {error}"
    assert "Traceback (most recent call last):" in log_lines  # kept: it says where it broke
    assert folder_bytes(other.path) == before
    assert runs.load(other.path).status == "completed"

    page = open_page(page_path("pages/train.py"), 120, selected_run=run.run_id,
                     train_tab="Live training")
    assert page.error[0].value == f"The run failed: {error}"
    assert page.code[0].value.splitlines()[-1] == f"error: {error}"


def test_disk_full_in_a_search_trial_fails_the_search_instead_of_the_next_trials(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from cifarkit import searchdir, searches, tuning
    from cifarkit.tuneconfig import SearchSpace, TuneConfig

    base = tiny_config("search").with_updates(model=ModelConfig(architecture="custom_cnn"))
    tune = TuneConfig(base=base, max_trials=3, epochs_per_trial=1,
                      space=SearchSpace(base_filters=(8,), blocks_min=1, blocks_max=2))
    search_dir = searches.create_search(tune)

    def append(folder: Path, row: dict[str, Any]) -> None:
        raise disk_full()

    monkeypatch.setattr(rundir, "append_metrics", append)
    status = tuning.search(search_dir, verbose=0)

    message = f"disk full while saving the training progress ({search_dir / rundir.METRICS})"
    assert status["status"] == "failed" and status["error"] == message
    assert rundir.read_status(search_dir)["error"] == message
    trials = sorted(searchdir.project_dir(search_dir).glob("trial_*"))
    assert [trial.name for trial in trials] == ["trial_0"]  # no second trial was started
    assert leftovers(search_dir) == []
    output = capsys.readouterr()
    assert [line for line in output.out.splitlines() if "error" in line] == [f"error: {message}"]
    assert "Traceback" not in output.out + output.err
