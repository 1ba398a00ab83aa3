"""train() end to end: every artifact is written and the model really learns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cifarkit import rundir, runs, training
from cifarkit.config import (
    CallbacksConfig,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    RunConfig,
    TrainingConfig,
)
from cifarkit.evaluation import Predictions

ARTIFACTS = (rundir.CONFIG, rundir.STATUS, rundir.METRICS, rundir.HISTORY, rundir.BEST_MODEL,
             rundir.LAST_MODEL, rundir.EVAL, rundir.PREDICTIONS)


@pytest.mark.slow
def test_real_cifar10_run_writes_every_artifact_and_beats_chance(cifar10_archive: Path) -> None:
    config = RunConfig(
        name="cifar10-sample",
        data=DataConfig(source="cifar10", path=str(cifar10_archive)),
        model=ModelConfig(architecture="simple_cnn"),
        training=TrainingConfig(epochs=4, batch_size=64),
    )
    run_dir = runs.create(config)
    status = training.train(run_dir, verbose=0)

    assert status["status"] == "completed", status.get("error")
    for name in ARTIFACTS:
        assert (run_dir / name).is_file(), name
    evaluation = json.loads((run_dir / rundir.EVAL).read_text())
    assert evaluation["accuracy"] > 0.3  # 10 classes: chance is 0.1
    assert evaluation["top5_accuracy"] > evaluation["accuracy"]
    predictions = Predictions.load(run_dir / rundir.PREDICTIONS)
    assert predictions.probs.shape == (1035, 10)
    assert predictions.images.shape == (1035, 32, 32, 3)
    assert np.isclose(float(np.mean(predictions.y_pred == predictions.y_true)),
                      evaluation["accuracy"], atol=1e-6)
    assert status["epochs_run"] == len(rundir.epoch_rows(run_dir)) >= 1
    assert status["train_seconds"] > 0 and status["peak_memory_mb"] > 0
    assert status["trainable_params"] > 0 and status["model_file_mb"] > 0
    batches = [row for row in rundir.read_metrics(run_dir) if row["kind"] == "batch"]
    assert batches and all(row["steps"] >= row["step"] for row in batches)


def test_schedule_and_optimizers_build() -> None:
    for name in ("adam", "adamw", "nadam", "rmsprop", "sgd", "adagrad"):
        config = RunConfig(optimizer=OptimizerConfig(name=name))
        optimizer = training.make_optimizer(config, steps_per_epoch=10)
        assert optimizer.__class__.__name__.lower() == name
    cycle = RunConfig(optimizer=OptimizerConfig(schedule="one_cycle", learning_rate=0.1),
                      callbacks=CallbacksConfig(reduce_lr=False),
                      training=TrainingConfig(epochs=10))
    schedule = training.learning_rate(cycle, steps_per_epoch=10)
    rates = [float(schedule(step)) for step in (0, 30, 99)]
    assert rates[0] == pytest.approx(0.004) and rates[1] == pytest.approx(0.1)
    assert rates[2] < 0.01


def test_digits_run_with_label_smoothing_and_steps_per_epoch() -> None:
    config = RunConfig(
        data=DataConfig(source="digits", max_train_images=200, max_test_images=60),
        model=ModelConfig(architecture="simple_cnn"),
        training=TrainingConfig(epochs=1, batch_size=32, steps_per_epoch=3, label_smoothing=0.1),
        callbacks=CallbacksConfig(checkpoint=False),
    )
    run_dir = runs.create(config)
    status = training.train(run_dir, verbose=0)
    assert status["status"] == "completed", status.get("error")
    batches = [row for row in rundir.read_metrics(run_dir) if row["kind"] == "batch"]
    assert batches[-1]["step"] == 3 and batches[-1]["steps"] == 3
    assert Predictions.load(run_dir / rundir.PREDICTIONS).probs.shape == (60, 10)


def test_resume_without_a_checkpoint_starts_over_instead_of_failing() -> None:
    """A kill after an epoch was logged but before last.keras was written must not break resume."""
    config = RunConfig(
        data=DataConfig(source="digits", max_train_images=150, max_test_images=40),
        model=ModelConfig(architecture="simple_cnn"),
        training=TrainingConfig(epochs=2, batch_size=32),
    )
    run_dir = runs.create(config)
    rundir.append_metrics(run_dir, {"kind": "epoch", "epoch": 1, "val_accuracy": 0.5})
    status = training.train(run_dir, resume=True, verbose=0)
    assert status["status"] == "completed", status.get("error")
    assert [row["epoch"] for row in rundir.epoch_rows(run_dir)] == [1, 2]
    assert status["checkpoint_epoch"] == 2 and training.checkpoint_epoch(run_dir) == 2
