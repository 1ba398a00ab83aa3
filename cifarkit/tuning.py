"""search(): a keras-tuner hyperparameter search from its TuneConfig to trials on disk.

This is what the search worker process executes (`python -m cifarkit tune --search-dir ...`),
the counterpart of training.train for runs. Trials are built and compiled by the same code as a
run (builder.build_model, training.compile_model), so the best trial is an ordinary RunConfig.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np

from cifarkit import (
    failures,
    jobs,
    pipeline,
    rundir,
    searchdir,
    training,
    tuning_parallel,
    whitening,
)
from cifarkit.config import RunConfig
from cifarkit.models.builder import build_model
from cifarkit.tuneconfig import TuneConfig, config_for

HYPERBAND_FACTOR = 3  # keras-tuner's default: each Hyperband round keeps the best third
TUNERS = {"random": keras_tuner.RandomSearch, "bayesian": keras_tuner.BayesianOptimization,
          "hyperband": keras_tuner.Hyperband}


class SearchDiskFull(keras_tuner.errors.FatalError):
    """A trial ran out of disk space: fatal for the search, where keras-tuner would mark the
    trial failed and start the next one (which would fail the same way)."""


class SearchStopped(keras_tuner.errors.FatalError):
    """STOP was requested: ends keras-tuner's search loop at once (a FatalError is re-raised).

    The cut-short trial is never reported, so it is not ranked: it stays RUNNING in its
    trial.json and in the oracle's ongoing trials, and a resume runs it again from the start.
    """


@dataclass
class SearchData:
    """The arrays every trial trains on; batched per trial since batch size is searched."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[1])


def declare(hp: keras_tuner.HyperParameters, tune: TuneConfig) -> dict[str, Any]:
    """Register the search space with keras-tuner and return this trial's values by name."""
    space = tune.space
    samplers = {
        "base_filters": lambda: _choice(hp, "base_filters", space.base_filters),
        "blocks": lambda: _int(hp, "blocks", space.blocks_min, space.blocks_max),
        "dropout": lambda: _float(hp, "dropout", space.dropout_min, space.dropout_max),
        "learning_rate": lambda: _float(hp, "learning_rate", space.learning_rate_min,
                                        space.learning_rate_max, sampling="log"),
        "optimizer": lambda: _choice(hp, "optimizer", space.optimizers),
        "augmentation": lambda: _float(hp, "augmentation", space.augmentation_min,
                                       space.augmentation_max),
        "batch_size": lambda: _choice(hp, "batch_size", space.batch_sizes),
    }
    return {name: samplers[name]() for name in tune.hyperparameters()}


def _choice(hp: keras_tuner.HyperParameters, name: str, values: tuple) -> Any:
    return hp.Choice(name, list(values)) if len(values) > 1 else hp.Fixed(name, values[0])


def _int(hp: keras_tuner.HyperParameters, name: str, low: int, high: int) -> int:
    return hp.Int(name, low, high) if low < high else hp.Fixed(name, low)


def _float(hp: keras_tuner.HyperParameters, name: str, low: float, high: float,
           sampling: str = "linear") -> float:
    return hp.Float(name, low, high, sampling=sampling) if low < high else hp.Fixed(name, low)


class CifarHyperModel(keras_tuner.HyperModel):
    """Trial = config_for(sampled values) built and compiled like a run, fit with its batch size."""

    def __init__(self, tune: TuneConfig, data: SearchData, search_dir: Path) -> None:
        super().__init__(name="cifarkit")
        self.tune = tune
        self.data = data
        self.search_dir = search_dir

    def trial_config(self, hp: keras_tuner.HyperParameters) -> RunConfig:
        """The trial's RunConfig: config_for, with the trial's (short) epochs for schedules."""
        config = config_for(declare(hp, self.tune), self.tune)
        return config.with_updates(
            training=replace(config.training, epochs=self.tune.epochs_per_trial))

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        config = self.trial_config(hp)
        model = build_model(config, self.data.num_classes, self.data.image_size)
        whitening.init_whitening(model, self.data.x_train)  # as a run's fresh model
        training.compile_model(model, config, self.data.num_classes,
                               self._steps(config.training.batch_size))
        return model

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any,
            **kwargs: Any) -> keras.callbacks.History:
        """model.fit on tf.data batched with the trial's batch size; SearchStopped on STOP."""
        config = self.trial_config(hp)
        batch = config.training.batch_size
        data = self.data
        train = pipeline.make_dataset(data.x_train, data.y_train, data.num_classes, batch,
                                      training=True, seed=config.seed)
        validation = pipeline.make_dataset(data.x_val, data.y_val, data.num_classes, batch,
                                           training=False)
        rundir.reset_metrics(self.search_dir)  # metrics.jsonl holds the running trial only
        failures.save_status(self.search_dir, trial_epochs=kwargs.get("epochs"))
        progress = training.ProgressWriter(self.search_dir, self._steps(batch))
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), progress]
        try:
            history = model.fit(train, validation_data=validation, shuffle=False, **kwargs)
        except Exception as error:
            if failures.is_disk_full(error):
                raise SearchDiskFull(failures.error_line(error, self.search_dir)) from error
            raise
        if progress.stopped:
            raise SearchStopped("stop requested")
        return history

    def _steps(self, batch_size: int) -> int:
        return math.ceil(len(self.data.x_train) / batch_size)


def make_tuner(tune: TuneConfig, hypermodel: CifarHyperModel, search_dir: Path,
               overwrite: bool = False) -> keras_tuner.Tuner:
    """The configured keras-tuner; overwrite=False reloads a project left by a stop or crash."""
    common = {"hypermodel": hypermodel, "seed": tune.base.seed, "overwrite": overwrite,
              "objective": keras_tuner.Objective(tune.objective, direction=tune.direction),
              "directory": str(search_dir), "project_name": searchdir.PROJECT}
    if tune.algorithm == "hyperband":
        tuner = keras_tuner.Hyperband(max_epochs=tune.epochs_per_trial, factor=HYPERBAND_FACTOR,
                                      **common)
        tuner.oracle.max_trials = tune.max_trials  # the budget caps Hyperband's brackets too
        return tuner
    return TUNERS[tune.algorithm](max_trials=tune.max_trials, **common)


def planned_trials(tune: TuneConfig) -> int:
    """How many trials the search will run: max_trials, or fewer if Hyperband's brackets end.

    Counted with the Hyperband oracle's own bracket arithmetic (one Hyperband iteration).
    """
    if tune.algorithm != "hyperband":
        return tune.max_trials
    oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=tune.epochs_per_trial,
                                                 factor=HYPERBAND_FACTOR)
    total = sum(oracle._get_size(bracket, round_)
                for bracket in range(oracle._get_num_brackets())
                for round_ in range(oracle._get_num_rounds(bracket)))
    return min(tune.max_trials, total)


def search(search_dir: str | Path, resume: bool = False, verbose: int = 2) -> dict[str, Any]:
    """Run (or resume) the search in search_dir; return the final status dict.

    Any failure is recorded as status "failed" with the error (failures.run_recorded, as for
    a run), so a crashed search explains itself; a STOP request ends it as "stopped" with every
    finished trial kept.
    """
    search_dir = Path(search_dir)
    return failures.run_recorded(search_dir, lambda: _search_or_stop(search_dir, resume, verbose))


def _search_or_stop(search_dir: Path, resume: bool, verbose: int) -> dict[str, Any]:
    failures.save_status(search_dir, status="running", **jobs.process_identity(os.getpid()),
                         started=time.time(), error=None, finished=None)
    try:
        return _search(search_dir, resume, verbose)
    except SearchStopped:
        print("search stopped: the cut-short trial is not scored; a resume runs it again")
        return failures.save_status(search_dir, status="stopped", finished=time.time())


def _search(search_dir: Path, resume: bool, verbose: int) -> dict[str, Any]:
    tune = TuneConfig.load(search_dir / searchdir.TUNE).validate()
    training.configure_keras(tune.base)
    dataset, (x_train, y_train), (x_val, y_val) = training.load_splits(tune.base)
    data = SearchData(x_train, y_train, x_val, y_val, len(dataset.class_names))
    failures.save_status(search_dir, planned_trials=planned_trials(tune),
                         num_classes=data.num_classes, train_images=len(x_train))
    tuner = make_tuner(tune, CifarHyperModel(tune, data, search_dir), search_dir,
                       overwrite=not resume)
    if tuning_parallel.enabled():  # on Ray with several trial workers: serve them the oracle
        tuning_parallel.run_chief(tuner, search_dir)
    else:
        tuner.search(epochs=tune.epochs_per_trial, verbose=verbose)
    best = tuner.oracle.get_best_trials(1)
    scored = [trial for trial in best if trial.score is not None]
    return failures.save_status(
        search_dir, status="completed", finished=time.time(),
        best_trial=int(scored[0].trial_id) if scored else None,
        best_score=float(scored[0].score) if scored else None)
