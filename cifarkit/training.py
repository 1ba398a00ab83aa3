"""train(): one run from its config to every artifact in its run directory.

This is what the worker process executes (`python -m cifarkit train --run-dir ...`). It never
talks to the UI directly: everything a page shows is read back from the run directory.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from cifarkit import classroom, datasets, failures, jobs, pipeline, rundir, scoring
from cifarkit.config import RunConfig
from cifarkit.models.builder import build_model, model_stats, unfreeze_model
from cifarkit.models.catalog import model_info
from cifarkit.progress import elapsed_seconds
from cifarkit.system import peak_memory_mb

BATCH_REPORT_SECONDS = 0.5  # write batch progress at most this often (keeps metrics.jsonl small)


@dataclass
class PreparedData:
    """Everything fit/evaluate needs, built once per run."""

    train: Any  # tf.data.Dataset
    validation: Any
    x_test: np.ndarray
    y_test: np.ndarray
    dataset: datasets.Dataset
    steps_per_epoch: int
    x_train: np.ndarray  # the training split (validation carved off): whitening reads it
    y_train: np.ndarray
    x_val: np.ndarray  # the validation split as arrays: calibration fits its temperature on it
    y_val: np.ndarray


def train(run_dir: str | Path, resume: bool = False, verbose: int = 2) -> dict[str, Any]:
    """Run the training described by run_dir/config.json; return the final status dict.

    Any failure is recorded as status "failed" with the error (failures.run_recorded), so a
    crashed run explains itself; a full disk ends it as failed with "disk full while saving …".
    """
    run_dir = Path(run_dir)
    refusal = rundir.resume_refusal(run_dir) if resume else None
    if refusal:  # checked before anything is written: a scored model is never retrained over
        raise jobs.RunError(refusal)
    return failures.run_recorded(run_dir, lambda: _train(run_dir, resume, verbose))


def _train(run_dir: Path, resume: bool, verbose: int) -> dict[str, Any]:
    done_epochs = checkpoint_epoch(run_dir) if resume else 0
    # Earlier attempts' training time carries over (ProgressWriter starts its clock there).
    failures.save_status(run_dir, status="running", **jobs.process_identity(os.getpid()),
                         started=time.time(), error=None, finished=None, epochs_run=done_epochs,
                         train_seconds=_elapsed_so_far(run_dir) if resume else 0.0)
    config = RunConfig.load(run_dir / rundir.CONFIG).validate()
    configure_keras(config)
    data = prepare_data(config)
    model = _resume_or_build(run_dir, config, data, done_epochs > 0)
    if done_epochs == 0:
        rundir.reset_metrics(run_dir)
    stats = model_stats(model)
    failures.save_status(run_dir, trainable_params=stats.trainable_params,
                         non_trainable_params=stats.non_trainable_params,
                         weights_mb=stats.weights_mb, num_classes=len(data.dataset.class_names),
                         train_images=len(data.dataset.x_train),
                         test_images=len(data.dataset.x_test))
    progress = ProgressWriter(run_dir, data.steps_per_epoch)
    model.fit(data.train, validation_data=data.validation, epochs=config.training.epochs,
              initial_epoch=done_epochs, steps_per_epoch=data.steps_per_epoch, shuffle=False,
              callbacks=_callbacks(config, run_dir, progress), verbose=verbose)
    return scoring.finish_run(run_dir, config, model, data, stopped=progress.stopped)


def configure_keras(config: RunConfig) -> None:
    """Seed and float policy of a worker process (training or a search) before any model."""
    keras.utils.set_random_seed(config.seed)
    policy = "mixed_float16" if config.training.mixed_precision else "float32"
    keras.mixed_precision.set_global_policy(policy)


def prepare_data(config: RunConfig) -> PreparedData:
    """Load the dataset, carve validation from train, and build the tf.data pipelines."""
    dataset, (x_train, y_train), (x_val, y_val) = load_splits(config)
    num_classes = len(dataset.class_names)
    batch = config.training.batch_size
    steps = config.training.steps_per_epoch
    train = pipeline.make_dataset(x_train, y_train, num_classes, batch, training=True,
                                  seed=config.seed, repeat=steps is not None)
    validation = pipeline.make_dataset(x_val, y_val, num_classes, batch, training=False)
    return PreparedData(train, validation, dataset.x_test, dataset.y_test, dataset,
                        steps or math.ceil(len(x_train) / batch), x_train, y_train, x_val, y_val)


def load_splits(config: RunConfig) -> tuple[datasets.Dataset, tuple[np.ndarray, np.ndarray],
                                             tuple[np.ndarray, np.ndarray]]:
    """The dataset and its seeded (train, validation) arrays; a search re-batches them per trial."""
    dataset = datasets.load(config.data)
    train, validation = pipeline.split_validation(
        dataset.x_train, dataset.y_train, config.data.validation_split, config.seed)
    return dataset, train, validation


def checkpoint_epoch(run_dir: Path) -> int:
    """Epochs inside last.keras (0 without one): a resumed run continues from there."""
    if not (run_dir / rundir.LAST_MODEL).is_file():
        return 0
    return int(rundir.read_status(run_dir).get("checkpoint_epoch") or 0)


def _elapsed_so_far(run_dir: Path) -> float:
    """Training seconds recorded by earlier attempts, a killed one's last batch line included."""
    recorded = elapsed_seconds(rundir.read_status(run_dir), rundir.epoch_rows(run_dir),
                               rundir.latest_batch(run_dir), time.time(), active=False)
    return round(recorded or 0.0, 3)


def _resume_or_build(run_dir: Path, config: RunConfig, data: PreparedData,
                     resume: bool) -> keras.Model:
    last = run_dir / rundir.LAST_MODEL
    if resume:
        import cifarkit.models.layers  # noqa: F401 - registers custom layers for loading

        return keras.saving.load_model(last, safe_mode=True)
    info = model_info(config.model.architecture)
    model = build_model(config, len(data.dataset.class_names), data.dataset.x_train.shape[1])
    if info.kind == "transfer":
        unfreeze_model(model, config.model.trainable_fraction)
    compile_model(model, config, len(data.dataset.class_names), data.steps_per_epoch)
    return model


def compile_model(model: keras.Model, config: RunConfig, num_classes: int,
                  steps_per_epoch: int) -> None:
    """Optimizer, loss and metrics of a run: one definition for training and search trials."""
    model.compile(optimizer=make_optimizer(config, steps_per_epoch),
                  loss=keras.losses.CategoricalCrossentropy(
                      label_smoothing=config.training.label_smoothing),
                  metrics=_metrics(num_classes), jit_compile=config.training.jit_compile)


def _metrics(num_classes: int) -> list[keras.metrics.Metric]:
    return [keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(k=min(5, num_classes), name="top5")]


def make_optimizer(config: RunConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The configured optimizer, with its learning-rate schedule over the whole run."""
    opt = config.optimizer
    rate = learning_rate(config, steps_per_epoch)
    builders = {
        "adam": lambda: keras.optimizers.Adam(rate),
        "adamw": lambda: keras.optimizers.AdamW(rate, weight_decay=opt.weight_decay),
        "nadam": lambda: keras.optimizers.Nadam(rate),
        "rmsprop": lambda: keras.optimizers.RMSprop(rate, momentum=opt.momentum),
        "sgd": lambda: keras.optimizers.SGD(rate, momentum=opt.momentum, nesterov=opt.nesterov),
        "adagrad": lambda: keras.optimizers.Adagrad(rate),
    }
    return builders[opt.name]()


def learning_rate(config: RunConfig, steps_per_epoch: int) -> float | Any:
    """A constant rate, or a cosine / one-cycle schedule stepping once per batch."""
    peak = config.optimizer.learning_rate
    total = max(1, steps_per_epoch * config.training.epochs)
    if config.optimizer.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(peak, decay_steps=total)
    if config.optimizer.schedule == "one_cycle":
        warmup = max(1, int(0.3 * total))  # 30 % warm-up from peak/25, then cosine to 0
        return keras.optimizers.schedules.CosineDecay(
            peak / 25, decay_steps=max(1, total - warmup), warmup_target=peak, warmup_steps=warmup)
    return peak


def _callbacks(config: RunConfig, run_dir: Path,
               progress: ProgressWriter) -> list[keras.callbacks.Callback]:
    options = config.callbacks
    # The resume checkpoint is saved before the epoch is logged: a kill in between re-runs the
    # epoch rather than resuming from a checkpoint that was never written. Both checkpoints skip
    # an epoch that a stop cut short (progress.cut_short), so a resume trains it again.
    callbacks: list[keras.callbacks.Callback] = [ResumeCheckpoint(run_dir, progress), progress]
    if options.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=options.early_stopping_monitor, patience=options.early_stopping_patience,
            restore_best_weights=options.restore_best_weights))
    if options.reduce_lr:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=options.reduce_lr_factor,
            patience=options.reduce_lr_patience, min_lr=1e-6))
    callbacks.append(BestCheckpoint(run_dir, options.checkpoint,
                                    rundir.best_validation_accuracy(run_dir), progress))
    return callbacks


class ResumeCheckpoint(keras.callbacks.Callback):
    """Replaces last.keras atomically after every whole epoch and records which epoch it holds."""

    def __init__(self, run_dir: Path, progress: ProgressWriter) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.progress = progress

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.progress.cut_short:
            return
        failures.save_atomic(self.run_dir / rundir.LAST_MODEL, "the resume checkpoint",
                             self.model.save)
        failures.save_status(self.run_dir, checkpoint_epoch=epoch + 1)


class BestCheckpoint(keras.callbacks.Callback):
    """model.keras replaced atomically when val_accuracy beats the best so far (or every epoch).

    Keras' ModelCheckpoint writes the file in place, so a full disk would leave a broken best
    model; this one keeps the previous best until the new one is whole.
    """

    def __init__(self, run_dir: Path, best_only: bool, best_so_far: float | None,
                 progress: ProgressWriter) -> None:
        super().__init__()
        self.path = run_dir / rundir.BEST_MODEL
        self.best_only = best_only
        self.best = best_so_far
        self.progress = progress

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.progress.cut_short:  # its score belongs to no logged epoch
            return
        score = (logs or {}).get("val_accuracy")
        if self.best_only:
            if score is None or not (self.best is None or score > self.best):  # NaN: no
                return
            self.best = float(score)
        failures.save_atomic(self.path, "the best model", self.model.save)


class ProgressWriter(keras.callbacks.Callback):
    """Appends epoch and (throttled) batch progress to metrics.jsonl and honours the stop file.

    A stop seen before an epoch's last batch cuts that epoch short (cut_short): Keras still ends
    it with validation and on_epoch_end, but it is neither logged nor counted, and status keeps
    how far it got (partial_epoch, partial_batches); a resume trains it again from its start.
    Time runs on one clock across attempts: train_seconds (status) and `elapsed` (rows) start
    from the train_seconds found in status.json, so a resumed run keeps its earlier time.
    The class time limit recorded at launch (time_limit_min) ends it on that clock like a stop,
    with classroom.limit_message as its error.
    """

    def __init__(self, run_dir: Path, steps_per_epoch: int) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.steps = steps_per_epoch
        self.stopped = False
        self.cut_short = False
        status = rundir.read_status(run_dir)
        self.elapsed_before = status.get("train_seconds") or 0.0
        self.limit_minutes = status.get("time_limit_min")
        self._fit_start = time.perf_counter()
        self._epoch_start = 0.0
        self._last_report = 0.0
        self._epoch = 0
        self._batches = 0

    def elapsed(self) -> float:
        """Training seconds of this run so far, earlier attempts included."""
        return round(self.elapsed_before + time.perf_counter() - self._fit_start, 3)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._fit_start = time.perf_counter()
        failures.save_status(self.run_dir, training_started=time.time(),
                             elapsed_before=round(self.elapsed_before, 3),
                             steps_per_epoch=self.steps, partial_epoch=None, partial_batches=None)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch + 1
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        now = time.perf_counter()
        stop = rundir.stop_requested(self.run_dir) or self._over_limit()
        if stop or batch + 1 == self.steps or now - self._last_report >= BATCH_REPORT_SECONDS:
            self._last_report = now  # the last batch before a stop is always on record
            self._append({
                "kind": "batch", "epoch": self._epoch, "step": batch + 1, "steps": self.steps,
                "seconds": round(now - self._epoch_start, 3), "elapsed": self.elapsed(),
                **_floats(logs)})
        if stop:
            self.stopped = True
            self.cut_short = batch + 1 < self.steps
            self._batches = batch + 1
            self.model.stop_training = True

    def _over_limit(self) -> bool:
        """True (recorded once as the error) when the class time limit is used up."""
        if self.limit_minutes is None or self.elapsed() < self.limit_minutes * 60:
            return False
        if not self.stopped:
            failures.save_status(self.run_dir,
                                 error=classroom.limit_message(self.limit_minutes))
        return True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.cut_short:
            return
        row = {"kind": "epoch", "epoch": epoch + 1,
               "seconds": round(time.perf_counter() - self._epoch_start, 3),
               "elapsed": self.elapsed(),
               "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
               **_floats(logs)}
        self._append(row)
        failures.save_status(self.run_dir, epochs_run=epoch + 1, train_seconds=row["elapsed"],
                             peak_memory_mb=peak_memory_mb())

    def on_train_end(self, logs: dict | None = None) -> None:
        """The clock stops (testing is not training) and a cut-short epoch is recorded."""
        changes: dict[str, Any] = {"train_seconds": self.elapsed(), "training_started": None}
        if self.cut_short:
            changes.update(partial_epoch=self._epoch, partial_batches=self._batches)
        failures.save_status(self.run_dir, **changes)

    def _append(self, row: dict[str, Any]) -> None:
        with failures.saving("the training progress", self.run_dir / rundir.METRICS):
            rundir.append_metrics(self.run_dir, row)


def _floats(logs: dict | None) -> dict[str, float]:
    return {key: float(value) for key, value in (logs or {}).items()
            if key != "learning_rate"}
