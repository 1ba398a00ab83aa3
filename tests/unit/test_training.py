"""train() end to end: every artifact is written and the model really learns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cifarkit import rundir, runs, training
from cifarkit.config import (
    AugmentConfig,
    CallbacksConfig,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    RunConfig,
    TrainingConfig,
    recommended_optimizer,
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
        optimizer=recommended_optimizer("simple_cnn"),  # no batch norm: SGD at 0.2 diverges
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


def test_a_stop_during_an_epoch_is_not_counted_and_resume_trains_that_epoch_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 8 item 4: STOP after 5 batches of epoch 2 of 3, then resume."""
    import keras

    config = RunConfig(
        data=DataConfig(source="digits", max_train_images=300, max_test_images=40),
        model=ModelConfig(architecture="simple_cnn"),
        training=TrainingConfig(epochs=3, batch_size=16, steps_per_execution=1),  # per batch
        callbacks=CallbacksConfig(early_stopping=False, reduce_lr=False))
    run_dir = runs.create(config)
    real_batch_end = training.ProgressWriter.on_train_batch_end

    def stop_in_epoch_2(writer: training.ProgressWriter, batch: int,
                        logs: dict | None = None) -> None:
        if writer._epoch == 2 and batch + 1 == 5:
            rundir.request_stop(run_dir)  # as the Stop button does, between two batches
        real_batch_end(writer, batch, logs)

    monkeypatch.setattr(training.ProgressWriter, "on_train_batch_end", stop_in_epoch_2)
    stopped = training.train(run_dir, verbose=0)
    monkeypatch.undo()

    steps = stopped["steps_per_epoch"]
    assert steps > 5
    assert stopped["status"] == "stopped", stopped.get("error")
    assert (stopped["epochs_run"], stopped["checkpoint_epoch"]) == (1, 1)
    assert (stopped["partial_epoch"], stopped["partial_batches"]) == (2, 5)
    first_rows = rundir.read_metrics(run_dir)
    assert [row["epoch"] for row in first_rows if row["kind"] == "epoch"] == [1]
    assert max(row["step"] for row in first_rows if row["epoch"] == 2) == 5
    assert len((run_dir / rundir.HISTORY).read_text().splitlines()) == 1 + 1
    last = keras.saving.load_model(run_dir / rundir.LAST_MODEL)
    assert int(last.optimizer.iterations) == steps  # epoch 1 only, not epoch 2's five batches
    # the clock kept the cut-short epoch's time: one clock from the first batch to the stop
    assert stopped["train_seconds"] >= first_rows[-1]["elapsed"] > first_rows[0]["elapsed"]

    assert rundir.resume_refusal(run_dir) is None
    rundir.clear_stop(run_dir)  # as runs.resume does before it starts the worker
    finished = training.train(run_dir, resume=True, verbose=0)

    assert finished["status"] == "completed", finished.get("error")
    rows = rundir.read_metrics(run_dir)
    resumed = rows[len(first_rows):]
    assert (resumed[0]["epoch"], resumed[0]["step"]) == (2, 1)  # epoch 2 again, from its start
    assert sorted({row["epoch"] for row in resumed}) == [2, 3]
    assert [row["epoch"] for row in rows if row["kind"] == "epoch"] == [1, 2, 3]  # each once
    assert (finished["epochs_run"], finished["checkpoint_epoch"]) == (3, 3)
    assert finished.get("partial_epoch") is None and finished.get("partial_batches") is None
    last = keras.saving.load_model(run_dir / rundir.LAST_MODEL)
    assert int(last.optimizer.iterations) == 3 * steps  # three whole epochs, no more
    assert len((run_dir / rundir.HISTORY).read_text().splitlines()) == 1 + 3
    # the resumed attempt's clock starts where the stopped one ended
    assert finished["elapsed_before"] == stopped["train_seconds"]
    assert resumed[0]["elapsed"] > stopped["train_seconds"]
    assert finished["train_seconds"] >= rows[-1]["elapsed"]
    elapsed = [row["elapsed"] for row in rows]
    assert elapsed == sorted(elapsed)


class _Kernel(__import__("keras").callbacks.Callback):
    """Records the one-weight model's kernel after every step; re-sets the total after step 3."""

    def __init__(self, schedule: training.WarmupDecay) -> None:
        super().__init__()
        self.schedule = schedule
        self.kernels: list[float] = []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.kernels.append(float(self.model.layers[-1].get_weights()[0][0, 0]))
        if batch == 2:
            self.schedule.set_total(6, warmup=False)


def test_the_compiled_step_follows_a_total_re_set_during_fit(tmp_path: Path) -> None:
    """The rate is read from variables inside the traced step, not frozen at trace time."""
    import keras

    # loss |w - (-1000)| on inputs of 1: every SGD step moves w down by exactly that step's rate
    schedule = training.WarmupDecay(1.0, total_steps=100, warmup_steps=0)
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False,
                                                   kernel_initializer="zeros")(inputs))
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mean_absolute_error")
    recorder = _Kernel(schedule)
    model.fit(np.ones((10, 1)), np.full((10, 1), -1000.0), batch_size=1, epochs=1,
              shuffle=False, verbose=0, callbacks=[recorder])

    rates = -np.diff([0.0, *recorder.kernels])
    expected = [1 - step / 100 for step in range(3)] + [max(0.0, 1 - step / 6)
                                                        for step in range(3, 10)]
    assert rates == pytest.approx(expected, abs=1e-5)
    assert float(model.optimizer.learning_rate) == 0.0  # past the total: exactly 0

    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    reloaded = training.schedule_of(loaded)
    assert reloaded is not None and float(reloaded.total_steps) == 6.0
    assert float(loaded.optimizer.learning_rate) == 0.0


def test_linear_schedule_warms_up_then_reaches_zero_at_the_last_step() -> None:
    config = RunConfig(optimizer=OptimizerConfig(schedule="linear", learning_rate=0.4,
                                                 warmup_fraction=0.2),
                       callbacks=CallbacksConfig(reduce_lr=False),
                       training=TrainingConfig(epochs=5))
    schedule = training.learning_rate(config, steps_per_epoch=10)  # 50 steps, 10 warming up
    rates = [float(schedule(step)) for step in (0, 5, 10, 30, 49, 50)]
    assert rates[:3] == pytest.approx([0.4 / 25, (0.4 / 25 + 0.4) / 2, 0.4])
    assert rates[3] == pytest.approx(0.4 * 20 / 40) and 0 < rates[4] < 0.02
    assert rates[5] == 0.0


def budget_config(budget_s: float, **training_fields: object) -> RunConfig:
    return RunConfig(
        data=DataConfig(source="digits", max_train_images=240, max_test_images=40),
        model=ModelConfig(architecture="simple_cnn"),
        optimizer=OptimizerConfig(schedule="linear", learning_rate=2e-3),
        training=TrainingConfig(batch_size=32, time_budget_s=budget_s,
                                **{"steps_per_execution": 1, **training_fields}),  # per batch
        callbacks=CallbacksConfig(early_stopping=False, reduce_lr=False))


def test_a_time_budget_fits_whole_epochs_and_completes_the_schedule_on_time() -> None:
    budget_s = 15.0
    run_dir = runs.create(budget_config(budget_s))
    status = training.train(run_dir, verbose=0)

    assert status["status"] == "completed", status.get("error")
    rows = rundir.epoch_rows(run_dir)
    assert status["time_budget_s"] == budget_s
    assert status["budget_epochs"] == status["epochs_run"] == len(rows) > 2
    assert 0.5 * budget_s < status["train_seconds"] <= budget_s + 2.0  # slack: one epoch edge
    assert status["budget_planned_seconds"] <= budget_s
    assert status["budget_images_per_second"] > 0 and 0 < status["budget_fitted_at"] < budget_s
    assert rows[-1]["lr"] == pytest.approx(0.0, abs=1e-9)  # the schedule ended on the last epoch
    assert max(row["lr"] for row in rows) > 1e-3
    assert status.get("note") is None


def test_a_budget_too_small_for_one_epoch_trains_one_and_says_so(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The smallest budget allowed (10 s) against an epoch made slow on purpose."""
    import time as clock

    real = training.ProgressWriter.on_train_batch_end

    def slow(writer: training.ProgressWriter, batch: int, logs: dict | None = None) -> None:
        clock.sleep(1.6)  # 7 steps: an epoch of over 11 s
        real(writer, batch, logs)

    monkeypatch.setattr(training.ProgressWriter, "on_train_batch_end", slow)
    run_dir = runs.create(budget_config(10.0))
    status = training.train(run_dir, verbose=0)
    assert status["status"] == "completed", status.get("error")
    assert status["budget_epochs"] == status["epochs_run"] == 1
    assert "cannot hold even one epoch" in status.get("note", "")
    assert rundir.epoch_rows(run_dir)[-1]["lr"] == pytest.approx(0.0, abs=1e-9)


def test_a_stopped_budgeted_run_resumes_with_the_same_plan(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    real = training.ProgressWriter.on_train_batch_end

    def stop_in_epoch_3(writer: training.ProgressWriter, batch: int,
                        logs: dict | None = None) -> None:
        if writer._epoch == 3 and batch == 1:
            rundir.request_stop(writer.run_dir)
        real(writer, batch, logs)

    monkeypatch.setattr(training.ProgressWriter, "on_train_batch_end", stop_in_epoch_3)
    run_dir = runs.create(budget_config(10.0))
    stopped = training.train(run_dir, verbose=0)
    monkeypatch.undo()
    assert stopped["status"] == "stopped", stopped.get("error")
    planned = stopped["budget_epochs"]
    assert planned > 3 and stopped["checkpoint_epoch"] == 2
    last = keras.saving.load_model(run_dir / rundir.LAST_MODEL, safe_mode=True)
    steps = stopped["steps_per_epoch"]
    assert float(training.schedule_of(last).total_steps) == planned * steps

    rundir.clear_stop(run_dir)
    finished = training.train(run_dir, resume=True, verbose=0)
    assert finished["status"] == "completed", finished.get("error")
    assert finished["budget_epochs"] == finished["epochs_run"] == planned
    assert rundir.epoch_rows(run_dir)[-1]["lr"] == pytest.approx(0.0, abs=1e-9)


def ema_config(**callbacks: object) -> RunConfig:
    return RunConfig(
        data=DataConfig(source="digits", max_train_images=240, max_test_images=40),
        model=ModelConfig(architecture="simple_cnn"),
        optimizer=OptimizerConfig(use_ema=True, ema_momentum=0.9),
        training=TrainingConfig(epochs=2, batch_size=32),
        callbacks=CallbacksConfig(early_stopping=False, reduce_lr=False, **callbacks))


def test_an_ema_run_ends_on_whichever_of_the_average_and_the_best_epoch_validates_better(
        ) -> None:
    import keras

    config = ema_config()
    run_dir = runs.create(config)
    status = training.train(run_dir, verbose=0)
    assert status["status"] == "completed", status.get("error")
    best_epoch = max(row["val_accuracy"] for row in rundir.epoch_rows(run_dir))
    ema = status["ema_val_accuracy"]
    assert status["ema_kept"] == (ema >= best_epoch)

    validation = training.prepare_data(config).validation
    saved = keras.saving.load_model(run_dir / rundir.BEST_MODEL, safe_mode=True)
    score = saved.evaluate(validation, verbose=0, return_dict=True)["accuracy"]
    assert score == pytest.approx(ema if status["ema_kept"] else best_epoch, abs=1e-6)
    raw = keras.saving.load_model(run_dir / rundir.LAST_MODEL, safe_mode=True)
    assert raw.optimizer.use_ema
    if status["ema_kept"]:  # the average, not the last epoch's raw weights
        assert any(not np.array_equal(a, b)
                   for a, b in zip(saved.get_weights(), raw.get_weights(), strict=True))


@pytest.mark.parametrize("best_so_far", [-1.0, 2.0])
def test_the_averaged_weights_replace_the_best_model_only_when_they_validate_as_well(
        tmp_path: Path, best_so_far: float) -> None:
    import keras
    import tensorflow as tf

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    model.compile(optimizer=keras.optimizers.Adam(use_ema=True),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = np.eye(2, dtype="float32")[np.arange(16) % 2]
    model.fit(x, y, epochs=1, verbose=0)
    (tmp_path / rundir.BEST_MODEL).write_text("the best epoch's model")
    validation = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    checkpoint = training.BestCheckpoint(tmp_path, True, best_so_far,
                                         training.ProgressWriter(tmp_path, 1), validation)
    checkpoint.set_model(model)
    checkpoint.on_train_end()

    status = rundir.read_status(tmp_path)
    kept = best_so_far < 0  # accuracy can beat -1, never 2
    assert status["ema_kept"] is kept and 0 <= status["ema_val_accuracy"] <= 1
    replaced = (tmp_path / rundir.BEST_MODEL).read_bytes() != b"the best epoch's model"
    assert replaced == kept


def test_steps_per_execution_reports_whole_epochs_and_a_stop_still_stops(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """3 steps a call over 7-step epochs: Keras reports steps 3, 6, 9 (read as 7)."""
    import keras

    config = RunConfig(
        data=DataConfig(source="digits", max_train_images=240, max_test_images=40),
        model=ModelConfig(architecture="simple_cnn"),
        training=TrainingConfig(epochs=2, batch_size=32, steps_per_execution=3),
        callbacks=CallbacksConfig(early_stopping=False, reduce_lr=False))
    run_dir = runs.create(config)
    real = training.ProgressWriter.on_train_batch_end

    def stop_in_epoch_2(writer: training.ProgressWriter, batch: int,
                        logs: dict | None = None) -> None:
        if writer._epoch == 2:
            rundir.request_stop(run_dir)
        real(writer, batch, logs)

    monkeypatch.setattr(training.ProgressWriter, "on_train_batch_end", stop_in_epoch_2)
    stopped = training.train(run_dir, verbose=0)
    monkeypatch.undo()
    steps = stopped["steps_per_epoch"]
    assert steps == 7
    assert stopped["status"] == "stopped", stopped.get("error")
    assert (stopped["epochs_run"], stopped["partial_epoch"], stopped["partial_batches"]) == \
        (1, 2, 3)
    rows = rundir.read_metrics(run_dir)
    first = [row["step"] for row in rows if row["kind"] == "batch" and row["epoch"] == 1]
    assert first[-1] == 7 and all(step in (3, 6, 7) for step in first)
    rundir.clear_stop(run_dir)
    finished = training.train(run_dir, resume=True, verbose=0)
    assert finished["status"] == "completed", finished.get("error")
    assert finished["epochs_run"] == 2
    assert int(keras.saving.load_model(run_dir / rundir.LAST_MODEL).optimizer.iterations) == 14


def test_a_fresh_model_gets_its_whitening_layer_from_the_training_split() -> None:
    from cifarkit import whitening

    config = RunConfig(data=DataConfig(source="digits", max_train_images=120, max_test_images=20),
                       model=ModelConfig(architecture="airbench_cpu"),
                       training=TrainingConfig(epochs=1, batch_size=32))
    run_dir = runs.create(config)
    data = training.prepare_data(config)
    model = training._resume_or_build(run_dir, config, data, resume=False)
    layer = model.get_layer(whitening.WHITEN_LAYER)
    kernel, bias = whitening.whitening_weights(data.x_train)
    assert not layer.trainable
    assert np.allclose(layer.get_weights()[0], kernel) and np.allclose(layer.get_weights()[1], bias)
    assert np.abs(kernel).max() > 1.0  # whitened, not a random Glorot initialisation


def test_a_head_only_transfer_run_trains_on_cached_features_within_its_budget() -> None:
    """training.train hands a frozen backbone to headonly.fit_head with every callback, the
    time budget's included: the cached head ends on its plan with the schedule completed."""
    config = RunConfig(
        data=DataConfig(source="digits", max_train_images=120, max_test_images=20),
        model=ModelConfig(architecture="MobileNetV2", weights="none", input_size=32,
                          trainable_fraction=0.0),
        augment=AugmentConfig(shift=0.0),  # flips are cached as two views; shifts are not
        optimizer=OptimizerConfig(schedule="linear"),
        training=TrainingConfig(batch_size=32, time_budget_s=10),
        callbacks=CallbacksConfig(early_stopping=False, reduce_lr=False))
    run_dir = runs.create(config)
    status = training.train(run_dir, verbose=0)
    assert status["status"] == "completed", status.get("error")
    assert status["feature_cache"].startswith("cached"), status["feature_cache"]
    assert status["budget_epochs"] == status["epochs_run"] == len(rundir.epoch_rows(run_dir))
    assert status["train_seconds"] <= 10 + 2.0
    assert rundir.epoch_rows(run_dir)[-1]["lr"] == pytest.approx(0.0, abs=1e-9)


def test_a_fresh_process_loads_a_scheduled_model_compiled_with_cifarkit_schedules(
        tmp_path: Path) -> None:
    """Loading with compile=True needs the schedule registered: cifarkit.schedules alone does
    it (no cifarkit.training import, which a page or a user's script would not have)."""
    import subprocess
    import sys

    import keras

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    model.compile(optimizer=keras.optimizers.Adam(training.WarmupDecay(0.1, 50, 5, start=0.004)),
                  loss="categorical_crossentropy")
    model.fit(np.ones((4, 2)), np.eye(2)[[0, 1, 0, 1]], epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    script = ("import sys, keras, cifarkit.schedules; "
              "m = keras.saving.load_model(sys.argv[1], safe_mode=True); "
              "print(float(m.optimizer._learning_rate.total_steps), int(m.optimizer.iterations))")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.keras")],
                            capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["50.0", "1"]
