"""TuneConfig: what a hyperparameter search varies, and how a trial becomes a RunConfig.

Pure data (no Keras), so the Tune page builds and validates it instantly. `config_for` is the one
mapping from sampled values to a RunConfig: trials are built with it, and "train the best" runs
exactly the config it gives for the best trial.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cifarkit.config import (
    BASE_FILTERS_RANGE,
    BLOCKS_RANGE,
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    OPTIMIZERS,
    ConfigError,
    JsonConfig,
    ModelConfig,
    RunConfig,
    check_between,
    check_name,
    check_types,
    check_whole_number,
    is_between,
    is_number,
    require,
)

ALGORITHMS = ("random", "hyperband", "bayesian")
OBJECTIVES = ("val_accuracy", "val_loss")  # val_accuracy is maximised, val_loss minimised
TUNABLE_ARCHITECTURE = "custom_cnn"  # the only architecture whose width and depth are searched
MAX_TRIALS = 1000

# Hyperparameter name -> the RunConfig fields it sets. One table for building trials, showing
# them and turning the best one back into a run.
HYPERPARAMETER_FIELDS: dict[str, tuple[str, ...]] = {
    "base_filters": ("model.base_filters",),
    "blocks": ("model.blocks",),
    "dropout": ("model.dropout",),
    "learning_rate": ("optimizer.learning_rate",),
    "optimizer": ("optimizer.name",),
    "augmentation": ("augment.rotation", "augment.zoom", "augment.shift"),
    "batch_size": ("training.batch_size",),
}


@dataclass(frozen=True)
class SearchSpace:
    """Where each hyperparameter is sampled from; a range with min == max holds it fixed."""

    base_filters: tuple[int, ...] = (16, 32, 64)  # custom_cnn width: first block's filters
    blocks_min: int = 2  # custom_cnn depth: conv blocks (each halves the image side)
    blocks_max: int = 4
    dropout_min: float = 0.0  # head dropout rate
    dropout_max: float = 0.5
    learning_rate_min: float = 1e-4  # sampled on a log scale
    learning_rate_max: float = 1e-2
    optimizers: tuple[str, ...] = ("adam", "sgd")
    augmentation_min: float = 0.0  # one strength for rotation, zoom and shift (fractions)
    augmentation_max: float = 0.2
    batch_sizes: tuple[int, ...] = (32, 64, 128)


def _default_base() -> RunConfig:
    return RunConfig(model=ModelConfig(architecture=TUNABLE_ARCHITECTURE))


@dataclass(frozen=True)
class TuneConfig(JsonConfig):
    """A whole search: the run everything starts from, the space, and the search budget."""

    json_name = "tune"  # not a field: no annotation

    name: str = ""
    base: RunConfig = field(default_factory=_default_base)  # data, seed, epochs for the best run
    space: SearchSpace = field(default_factory=SearchSpace)
    algorithm: str = "random"  # random | hyperband | bayesian
    max_trials: int = 10  # hyperband may finish its brackets with fewer
    epochs_per_trial: int = 3  # hyperband: the most epochs any trial trains
    objective: str = "val_accuracy"  # val_accuracy | val_loss

    @property
    def direction(self) -> str:
        """"max" or "min": how the objective ranks trials."""
        return "min" if self.objective == "val_loss" else "max"

    def hyperparameters(self) -> list[str]:
        """Names of the hyperparameters this search varies (width/depth only for custom_cnn)."""
        names = list(HYPERPARAMETER_FIELDS)
        if self.base.model.architecture != TUNABLE_ARCHITECTURE:
            names = [name for name in names if name not in ("base_filters", "blocks")]
        return names

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TuneConfig:
        """As JsonConfig.from_dict, but a partial "base" fills in from the default base
        (custom_cnn), not from RunConfig()."""
        if isinstance(raw, dict) and isinstance(raw.get("base"), dict):
            raw = {**raw, "base": _merged(_default_base().to_dict(), raw["base"])}
        return super().from_dict(raw)

    def validate(self) -> TuneConfig:
        """Raise ConfigError naming the field (e.g. space.learning_rate_min); return self."""
        check_types(self)
        check_name(self.name, "name")
        try:
            self.base.validate()
        except ConfigError as error:
            raise ConfigError(f"base.{error.field}", error.reason) from None
        require(self.base.model.architecture == TUNABLE_ARCHITECTURE, "base.model.architecture",
                f"searches tune {TUNABLE_ARCHITECTURE} only, "
                f"got {self.base.model.architecture!r}")
        _check_budget(self)
        _check_space(self.space, self.base.model.input_size)
        return self


def config_for(values: Mapping[str, Any], tune: TuneConfig) -> RunConfig:
    """The RunConfig a trial with these hyperparameter values trains (validated).

    Keys other than HYPERPARAMETER_FIELDS (keras-tuner's own "tuner/epochs" etc.) are ignored,
    and training.epochs stays the base's: a trial shortens it, "train the best" keeps it.
    """
    raw = tune.base.to_dict()
    for name, fields_set in HYPERPARAMETER_FIELDS.items():
        if name in values:
            for dotted in fields_set:
                section, key = dotted.split(".")
                raw[section][key] = values[name]
    return RunConfig.from_dict(raw).validate()


def _merged(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """`given` laid over `defaults`, section by section."""
    merged = dict(defaults)
    for key, value in given.items():
        both_sections = isinstance(value, dict) and isinstance(defaults.get(key), dict)
        merged[key] = _merged(defaults[key], value) if both_sections else value
    return merged


def _check_budget(tune: TuneConfig) -> None:
    require(tune.algorithm in ALGORITHMS, "algorithm",
            f"must be one of {ALGORITHMS}, got {tune.algorithm!r}")
    require(tune.objective in OBJECTIVES, "objective",
            f"must be one of {OBJECTIVES}, got {tune.objective!r}")
    check_between(tune.max_trials, "max_trials", 1, MAX_TRIALS)
    check_whole_number(tune.epochs_per_trial, "epochs_per_trial", high=MAX_EPOCHS)


def _check_range(space: SearchSpace, name: str, low: float, high: float,
                 high_inclusive: bool = True) -> None:
    """space.<name>_min ≤ space.<name>_max, both within [low, high] (or [low, high))."""
    lo, hi = getattr(space, f"{name}_min"), getattr(space, f"{name}_max")
    upper = f"to {high}" if high_inclusive else f"up to (not including) {high}"
    for suffix, value in (("min", lo), ("max", hi)):
        inside = is_number(value) and low <= value and (
            value <= high if high_inclusive else value < high)
        require(inside, f"space.{name}_{suffix}",
                f"must be a number from {low} {upper}, got {value!r}")
    require(lo <= hi, f"space.{name}_min", f"must not exceed {name}_max ({lo} > {hi})")


def _check_choices(values: Any, field_path: str, allowed: Any, what: str) -> None:
    require(isinstance(values, tuple) and len(values) > 0, field_path, "choose at least one")
    require(len(set(values)) == len(values), field_path, "values repeat")
    bad = [value for value in values if not allowed(value)]
    require(not bad, field_path, f"{bad} not allowed: each must be {what}")


def _check_space(space: SearchSpace, input_size: int) -> None:
    low, high = BASE_FILTERS_RANGE
    _check_choices(space.base_filters, "space.base_filters",
                   lambda v: is_between(v, low, high), f"a whole number from {low} to {high}")
    for suffix in ("min", "max"):
        check_between(getattr(space, f"blocks_{suffix}"), f"space.blocks_{suffix}", *BLOCKS_RANGE)
    require(space.blocks_min <= space.blocks_max, "space.blocks_min", "must not exceed blocks_max")
    require(2 ** space.blocks_max <= input_size, "space.blocks_max",
            f"{space.blocks_max} max-pools shrink a {input_size}-px input below 1 px")
    _check_range(space, "dropout", 0.0, 1.0, high_inclusive=False)
    require(is_number(space.learning_rate_min) and space.learning_rate_min > 0,
            "space.learning_rate_min", "must be above 0 (it is sampled on a log scale)")
    _check_range(space, "learning_rate", 0.0, 10.0)
    _check_choices(space.optimizers, "space.optimizers", lambda v: v in OPTIMIZERS,
                   f"one of {OPTIMIZERS}")
    _check_range(space, "augmentation", 0.0, 1.0)
    _check_choices(space.batch_sizes, "space.batch_sizes",
                   lambda v: is_between(v, 1, MAX_BATCH_SIZE),
                   f"a whole number from 1 to {MAX_BATCH_SIZE}")
