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

from cifarkit import (
    accelerator,
    budget,
    classroom,
    datasets,
    failures,
    headonly,
    jobs,
    pipeline,
    rundir,
    scoring,
    whitening,
)
from cifarkit.config import MAX_EPOCHS, RunConfig
from cifarkit.models.builder import build_model, model_stats, unfreeze_model
from cifarkit.models.catalog import model_info
from cifarkit.progress import elapsed_seconds
from cifarkit.schedules import WarmupDecay
from cifarkit.system import peak_memory_mb

BATCH_REPORT_SECONDS = 0.5  # write batch progress at most this often (keeps metrics.jsonl small)
WARMUP_START = 1 / 25  # linear and one_cycle warm up from this share of the peak rate
ONE_CYCLE_WARMUP = 0.3  # one_cycle: share of all steps spent warming up


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
    decision = configure_keras(config)
    failures.save_status(run_dir, precision=decision.policy, replicas=decision.replicas,
                         note=" ".join(decision.notes) or None,
                         time_budget_s=config.training.time_budget_s)
    data = prepare_data(config, decision.replicas)
    with accelerator.strategy(decision).scope():  # variables live on every replica
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
    callbacks = _callbacks(config, run_dir, progress, data)
    timer = TimeBudget.attach(config, run_dir, progress, model, data, done_epochs,
                              config.training.batch_size * decision.replicas, decision.notes)
    epochs = config.training.epochs if timer is None else timer.fit_epochs()
    callbacks = ([timer] if timer else []) + callbacks
    if headonly.applies(config):  # frozen backbone: the head trains on features computed once
        headonly.fit_head(model, config, data, callbacks, epochs=epochs,
                          initial_epoch=done_epochs, verbose=verbose)
    else:
        model.fit(data.train, validation_data=data.validation, epochs=epochs,
                  initial_epoch=done_epochs, steps_per_epoch=data.steps_per_epoch,
                  shuffle=False, callbacks=callbacks, verbose=verbose)
    return scoring.finish_run(run_dir, config, model, data, stopped=progress.stopped)


def configure_keras(config: RunConfig) -> accelerator.Decision:
    """Seed and float policy of a worker process (training or a search) before any model;
    returns the accelerator decision (policy, XLA, strategy) for these devices."""
    keras.utils.set_random_seed(config.seed)
    decision = accelerator.decide(config.training, accelerator.detect())
    keras.mixed_precision.set_global_policy(decision.policy)
    return decision


def prepare_data(config: RunConfig, replicas: int = 1) -> PreparedData:
    """Load the dataset, carve validation from train, and build the tf.data pipelines.

    With several replicas the global batch is batch_size × replicas (batch_size per device).
    """
    dataset, (x_train, y_train), (x_val, y_val) = load_splits(config)
    num_classes = len(dataset.class_names)
    batch = config.training.batch_size * replicas
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
    whitening.init_whitening(model, data.x_train)  # a frozen patch-whitening conv, if it has one
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
                  metrics=_metrics(num_classes), jit_compile=config.training.jit_compile,
                  steps_per_execution=config.training.steps_per_execution)


def _metrics(num_classes: int) -> list[keras.metrics.Metric]:
    return [keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(k=min(5, num_classes), name="top5")]


def make_optimizer(config: RunConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The configured optimizer, with its learning-rate schedule over the whole run.

    With optimizer.use_ema it also keeps a moving average of the trainable weights, which Keras
    swaps into the model when fit ends (BestCheckpoint then keeps it if it validates as well).
    BatchNorm's moving statistics are not trainable weights, so they are not averaged.
    """
    opt = config.optimizer
    rate = learning_rate(config, steps_per_epoch)
    ema = {"use_ema": opt.use_ema, "ema_momentum": opt.ema_momentum}
    builders = {
        "adam": lambda: keras.optimizers.Adam(rate, **ema),
        "adamw": lambda: keras.optimizers.AdamW(rate, weight_decay=opt.weight_decay, **ema),
        "nadam": lambda: keras.optimizers.Nadam(rate, **ema),
        "rmsprop": lambda: keras.optimizers.RMSprop(rate, momentum=opt.momentum, **ema),
        "sgd": lambda: keras.optimizers.SGD(rate, momentum=opt.momentum, nesterov=opt.nesterov,
                                            weight_decay=opt.weight_decay, **ema),
        "adagrad": lambda: keras.optimizers.Adagrad(rate, **ema),
    }
    return builders[opt.name]()


def learning_rate(config: RunConfig, steps_per_epoch: int) -> float | WarmupDecay:
    """A constant rate, or a schedule stepping once per batch over the run's optimizer steps
    (a time budget stretches its total later, once the run has measured its speed)."""
    opt = config.optimizer
    peak = opt.learning_rate
    total = max(1, executed_steps(config, steps_per_epoch) * config.training.epochs)
    if opt.schedule == "cosine":
        return WarmupDecay(peak, total, decay="cosine")
    if opt.schedule == "one_cycle":  # warm up from peak/25, then cosine to 0
        return WarmupDecay(peak, total, warmup_fraction=ONE_CYCLE_WARMUP,
                           start=peak * WARMUP_START, decay="cosine")
    if opt.schedule == "linear":  # airbench: warm up, then straight down to 0 at the last step
        return WarmupDecay(peak, total, warmup_fraction=opt.warmup_fraction,
                           start=peak * WARMUP_START, decay="linear")
    return peak


def executed_steps(config: RunConfig, steps_per_epoch: int) -> int:
    """Optimizer steps in an epoch. Keras runs steps_per_execution steps per call; on a repeated
    dataset (training.steps_per_epoch set) the last call of an epoch runs them all too."""
    per_call = config.training.steps_per_execution
    if config.training.steps_per_epoch is None:
        return steps_per_epoch
    return math.ceil(steps_per_epoch / per_call) * per_call


def schedule_of(model: keras.Model) -> WarmupDecay | None:
    """The model's fitted schedule (inside a loss-scale wrapper too), or None for others."""
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    rate = getattr(optimizer, "_learning_rate", None)  # Keras keeps the schedule object there
    return rate if isinstance(rate, WarmupDecay) else None


def _callbacks(config: RunConfig, run_dir: Path, progress: ProgressWriter,
               data: PreparedData) -> list[keras.callbacks.Callback]:
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
    callbacks.append(BestCheckpoint(run_dir, options.checkpoint, _best_so_far(run_dir),
                                    progress, data.validation))
    return callbacks


def _best_so_far(run_dir: Path) -> float | None:
    """The validation accuracy model.keras holds: the best epoch's, or a kept EMA model's."""
    best = rundir.best_validation_accuracy(run_dir)
    status = rundir.read_status(run_dir)
    ema = status.get("ema_val_accuracy") if status.get("ema_kept") else None
    return ema if ema is not None and (best is None or ema > best) else best


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
    With optimizer.use_ema, Keras swaps the averaged weights in when fit ends, before
    on_train_end: they are validated there and replace model.keras when they score at least as
    well as what it holds (the best epoch, or the last one when not best_only).
    """

    def __init__(self, run_dir: Path, best_only: bool, best_so_far: float | None,
                 progress: ProgressWriter, validation: Any = None) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.path = run_dir / rundir.BEST_MODEL
        self.best_only = best_only
        self.best = best_so_far
        self.last: float | None = None  # the latest saved epoch's score (not best_only)
        self.progress = progress
        self.validation = validation

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.progress.cut_short:  # its score belongs to no logged epoch
            return
        score = (logs or {}).get("val_accuracy")
        if self.best_only:
            if score is None or not (self.best is None or score > self.best):  # NaN: no
                return
            self.best = float(score)
        self.last = None if score is None else float(score)
        failures.save_atomic(self.path, "the best model", self.model.save)

    def on_train_end(self, logs: dict | None = None) -> None:
        optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
        if not getattr(optimizer, "use_ema", False) or self.validation is None:
            return
        score = float(self.model.evaluate(self.validation, verbose=0,
                                          return_dict=True)["accuracy"])
        held = self.best if self.best_only else self.last
        kept = held is None or score >= held or not self.path.is_file()
        if kept:
            failures.save_atomic(self.path, "the best model", self.model.save)
            self.best = max(score, self.best or score)
        failures.save_status(self.run_dir, ema_val_accuracy=score, ema_kept=kept)


class TimeBudget(keras.callbacks.Callback):
    """Fits the epochs and the schedule to training.time_budget_s, and ends the run on time.

    It times the first steps (after budget.SKIP_STEPS: tracing, pipeline start-up) and plans
    whole epochs (cifarkit.budget). At every epoch end it plans again from the mean of the
    whole epochs measured so far (validation and checkpoint saving included; epoch 1 counts
    only its timed steps and its own overhead, which also pays validation's tracing, so that
    plan is cautious): one epoch's time on a shared CPU is too noisy to plan the rest on. The
    schedule's total follows the planned epochs' steps whenever they change, so it ends on the
    last planned epoch, where this callback stops fit; late changes move the rate by about
    peak / planned epochs at most, and a schedule that has ended is never stretched
    (budget.replan). Before the first plan the warm-up is held long (the rate stays near its
    start); the first plan sets it and later plans leave it. The clock is ProgressWriter's
    (train_seconds); a class time limit shorter than the budget is planned for instead. A
    resumed run keeps its plan from status and does not refit.
    It runs before the other callbacks, so last.keras (ResumeCheckpoint) holds the schedule of
    the plan made at that epoch's end; its checkpoint saving is timed in the next whole epoch.
    """

    def __init__(self, run_dir: Path, progress: ProgressWriter, budget_s: float,
                 schedule: WarmupDecay | None, steps: int, executed: int,
                 validation_steps: int, batch_size: int, resumed: budget.Plan | None,
                 notes: tuple[str, ...]) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.progress = progress
        self.budget_s = budget_s
        self.schedule = schedule
        self.steps = steps  # batches per epoch, as Keras numbers them
        self.executed = executed  # optimizer steps per epoch (the schedule's unit)
        self.validation_steps = validation_steps
        self.batch_size = batch_size
        self.plan = resumed
        self.refitting = resumed is None
        self.notes = notes
        self._epoch = 0
        self._epoch_begin = self._last_batch = self._previous_end = 0.0
        self._whole: list[tuple[float, float]] = []  # (train steps s, wall s) of epochs 2, 3, ...
        self._calls = self._steps_done = 0
        self._timed_from: tuple[float, int] | None = None  # (clock, steps) after the skipped

    @classmethod
    def attach(cls, config: RunConfig, run_dir: Path, progress: ProgressWriter,
               model: keras.Model, data: PreparedData, done_epochs: int, batch_size: int,
               notes: tuple[str, ...]) -> TimeBudget | None:
        """The callback for a budgeted run (None without a budget), its plan kept on resume."""
        budget_s = config.training.time_budget_s
        if budget_s is None:
            return None
        if progress.limit_minutes is not None and progress.limit_minutes * 60 < budget_s:
            budget_s = progress.limit_minutes * 60
            notes = (*notes, f"the class time limit ({progress.limit_minutes:g} min) is "
                     "shorter than training.time_budget_s: the plan fits the limit")
        status = rundir.read_status(run_dir)
        resumed = None
        if done_epochs > 0 and status.get("budget_epochs"):
            resumed = budget.Plan(epochs=int(status["budget_epochs"]),
                                  planned_seconds=status.get("budget_planned_seconds") or 0.0,
                                  images_per_second=status.get("budget_images_per_second")
                                  or 0.0, note=None)
        return cls(run_dir, progress, float(budget_s), schedule_of(model), data.steps_per_epoch,
                   executed_steps(config, data.steps_per_epoch),
                   math.ceil(len(data.x_val) / batch_size), batch_size, resumed, notes)

    def fit_epochs(self) -> int:
        """The epochs to pass to fit: the plan's on resume, else a cap this callback ends."""
        return self.plan.epochs if self.plan else MAX_EPOCHS

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.schedule is not None and self.plan is not None:  # last.keras may predate it
            self.schedule.set_total(self.plan.epochs * self.executed, warmup=False)
        elif self.schedule is not None:  # unplanned: a long warm-up keeps the rate near start
            self.schedule.set_total(self.executed * MAX_EPOCHS, warmup=True)
        failures.save_status(self.run_dir, note=" ".join(self.notes) or None)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch + 1
        self._epoch_begin = time.perf_counter()
        self._calls = self._steps_done = 0
        self._timed_from = None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        now = time.perf_counter()
        self._calls += 1
        self._last_batch, self._steps_done = now, min(batch + 1, self.steps)
        if self.plan is not None or not self.refitting:
            return
        if self._timed_from is None:
            if self._calls >= 2 and self._steps_done >= budget.SKIP_STEPS:
                self._timed_from = (now, self._steps_done)
            return
        seconds, steps = now - self._timed_from[0], self._steps_done - self._timed_from[1]
        if steps >= budget.MEASURE_STEPS and seconds >= budget.MEASURE_SECONDS:
            per_step = seconds / steps
            speed = budget.Speed(per_step, self.steps,
                                 budget.estimated_overhead(self.validation_steps, per_step))
            self._adopt(budget.plan(self.budget_s, self.progress.elapsed(), self._epoch,
                                    self.steps - self._steps_done, speed, self.batch_size))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.progress.cut_short:
            return
        now = time.perf_counter()
        if self.refitting and self._steps_done:
            fresh = budget.plan(self.budget_s, self.progress.elapsed(), epoch + 1, 0,
                                self._speed(now), self.batch_size)
            self._adopt(fresh if self.plan is None else budget.replan(self.plan, fresh,
                                                                      epoch + 1))
        if self.plan is not None and epoch + 1 >= self.plan.epochs:
            self.model.stop_training = True
        self._previous_end = time.perf_counter()

    def _speed(self, now: float) -> budget.Speed:
        """The mean of the whole epochs after the first; after epoch 1, its timed steps and
        everything else it cost (validation and checkpoints)."""
        train_s = self._last_batch - self._epoch_begin
        if self._previous_end:
            self._whole.append((train_s, now - self._previous_end))
            steps = self.steps * len(self._whole)
            per_step = sum(train for train, _ in self._whole) / steps
            wall = sum(wall for _, wall in self._whole) / len(self._whole)
            return budget.Speed(per_step, self.steps, max(0.0, wall - per_step * self.steps))
        if self._timed_from is not None and self._steps_done > self._timed_from[1]:
            clock, steps_then = self._timed_from
            per_step = (self._last_batch - clock) / (self._steps_done - steps_then)
        else:
            per_step = train_s / self._steps_done
        return budget.Speed(per_step, self.steps, now - self._last_batch)

    def _adopt(self, plan: budget.Plan) -> None:
        first = self.plan is None
        changed = first or plan.epochs != self.plan.epochs
        self.plan = plan
        if self.schedule is not None and changed:
            self.schedule.set_total(plan.epochs * self.executed, warmup=first)
        notes = (*self.notes, plan.note) if plan.note else self.notes
        failures.save_status(self.run_dir, budget_epochs=plan.epochs,
                             budget_images_per_second=plan.images_per_second,
                             budget_planned_seconds=plan.planned_seconds,
                             budget_fitted_at=self.progress.elapsed(),
                             note=" ".join(notes) or None)


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
        # With steps_per_execution N, Keras calls this every N steps with the last step's index,
        # which passes the epoch's end when N does not divide it.
        step = min(batch + 1, self.steps)
        now = time.perf_counter()
        stop = rundir.stop_requested(self.run_dir) or self._over_limit()
        if stop or step == self.steps or now - self._last_report >= BATCH_REPORT_SECONDS:
            self._last_report = now  # the last batch before a stop is always on record
            self._append({
                "kind": "batch", "epoch": self._epoch, "step": step, "steps": self.steps,
                "seconds": round(now - self._epoch_start, 3), "elapsed": self.elapsed(),
                **_floats(logs)})
        if stop:
            self.stopped = True
            self.cut_short = step < self.steps
            self._batches = step
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
