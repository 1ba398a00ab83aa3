"""RunConfig: everything that defines a training run, as frozen dataclasses.

A config is what a run directory stores as `config.json`, what the Train page builds from its form
and what `python -m cifarkit train` reads, so it round-trips through JSON and validates itself
with messages that name the offending field (e.g. ``model.input_size``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from cifarkit.labels import builtin_label_names
from cifarkit.models.catalog import DEFAULT_MODEL, MODELS

SOURCES = ("digits", "cifar10", "cifar100", "folder")
LABEL_MODES = ("fine", "coarse")
OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd", "adagrad")
SCHEDULES = ("constant", "cosine", "one_cycle")
POOLINGS = ("avg", "max", "flatten")
MONITORS = ("val_loss", "val_accuracy")
MAX_INPUT_SIZE = 224
MAX_BLOCKS = 5  # custom_cnn: 5 max-pools take a 32-px input down to 1 px


class ConfigError(ValueError):
    """A config value that cannot work; `field` is the dotted path of the culprit."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}")
        self.field = field_path
        self.reason = message


@dataclass(frozen=True)
class DataConfig:
    """Which images to train on."""

    source: str = "digits"  # digits (embedded, offline) | cifar10 | cifar100 | folder
    label_mode: str = "fine"  # CIFAR-100 only: fine (100 classes) or coarse (20 superclasses)
    classes: tuple[str, ...] = ()  # subset by name; empty = all classes
    num_classes: int | None = None  # subset by count: the first N classes (ignored if `classes`)
    path: str | None = None  # folder or .zip of class sub-folders, or a CIFAR archive/folder
    image_size: int = 32  # side (pixels) images are stored at; CIFAR is always 32
    validation_split: float = 0.1  # fraction of train carved off (fixed seed) for validation
    max_train_images: int | None = None  # cap for quick experiments; None = all
    max_test_images: int | None = None


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation layers placed inside the model (active in training only)."""

    horizontal_flip: bool = True
    vertical_flip: bool = False
    rotation: float = 0.0  # max rotation as a fraction of a full turn (0.1 = ±36°)
    zoom: float = 0.0  # max zoom in/out as a fraction of the side
    shift: float = 0.0  # max translation as a fraction of the side
    contrast: float = 0.0  # max contrast change (0.2 = ±20 %)
    brightness: float = 0.0  # max brightness change as a fraction of the value range


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and, for transfer learning, what to reuse and what to train."""

    architecture: str = DEFAULT_MODEL  # a name from cifarkit.models.catalog.MODELS
    input_size: int = 32  # side (pixels) images are resized to inside the model
    weights: str = "imagenet"  # transfer only: imagenet | none | path to a .weights.h5 file
    trainable_fraction: float = 1.0  # transfer only: 1 = all layers, 0 = head only, 0.2 = top 20 %
    pooling: str = "avg"  # head: avg | max | flatten
    dropout: float = 0.2  # head dropout rate
    dense_units: int = 0  # head: width of an extra dense layer, 0 = none
    base_filters: int = 32  # custom_cnn only: filters of the first block, doubled per block
    blocks: int = 3  # custom_cnn only: conv blocks, each halving the side with a max-pool


@dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer and learning-rate schedule."""

    name: str = "adam"  # adam | adamw | nadam | rmsprop | sgd | adagrad
    learning_rate: float = 1e-3
    momentum: float = 0.9  # sgd and rmsprop
    nesterov: bool = False  # sgd
    weight_decay: float = 1e-4  # adamw
    schedule: str = "constant"  # constant | cosine (decay to 0) | one_cycle (warm up, then decay)


@dataclass(frozen=True)
class TrainingConfig:
    """How long and how to fit."""

    epochs: int = 10
    batch_size: int = 64
    steps_per_epoch: int | None = None  # None = one pass over the training split
    label_smoothing: float = 0.0
    mixed_precision: bool = False  # float16 compute; only pays off on a GPU
    jit_compile: bool = False  # XLA; only pays off on a GPU


@dataclass(frozen=True)
class CallbacksConfig:
    """Keras callbacks; the progress writer and stop check are always on."""

    early_stopping: bool = True
    early_stopping_monitor: str = "val_loss"
    early_stopping_patience: int = 5  # epochs without improvement before stopping
    restore_best_weights: bool = True
    reduce_lr: bool = True
    reduce_lr_factor: float = 0.5  # new lr = lr * factor
    reduce_lr_patience: int = 2
    checkpoint: bool = True  # keep the best model (by validation accuracy) as model.keras


@dataclass(frozen=True)
class RunConfig:
    """A whole training run."""

    name: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    seed: int = 42

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        """Build from a (possibly partial) dict; unknown keys are errors naming the field."""
        return _from_dict(cls, raw, "")

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(parse_json_object(text, "config"))

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        return cls.from_json(Path(path).read_text())

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    def validate(self) -> RunConfig:
        """Raise ConfigError for the first impossible setting; return self so calls chain."""
        for check in (_check_data, _check_augment, _check_model, _check_optimizer,
                      _check_training, _check_callbacks):
            check(self)
        return self

    def with_updates(self, **sections: Any) -> RunConfig:
        """Copy with whole sections or top-level fields replaced."""
        return replace(self, **sections)


T = TypeVar("T")


def parse_json_object(text: str, field_path: str) -> dict[str, Any]:
    """A JSON object from text, or a ConfigError naming field_path (configs are JSON objects)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(field_path, f"not valid JSON ({error})") from None
    if not isinstance(raw, dict):
        raise ConfigError(field_path, "must be a JSON object")
    return raw


def dataclass_from_dict(cls: type[T], raw: Any, prefix: str = "") -> T:
    """The JSON reader behind RunConfig.from_dict, for configs that embed one (TuneConfig)."""
    return _from_dict(cls, raw, prefix)


def _from_dict(cls: type[T], raw: Any, prefix: str) -> T:
    if not isinstance(raw, dict):
        raise ConfigError(prefix or "config", "must be an object")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(path, f"unknown setting; expected one of {sorted(known)}")
        default = getattr(cls(), key)  # type: ignore[call-arg]
        if is_dataclass(default):
            values[key] = _from_dict(type(default), value, f"{path}.")
        elif isinstance(default, tuple):
            if not isinstance(value, (list, tuple)):
                raise ConfigError(path, "must be a list")
            values[key] = tuple(value)
        else:
            values[key] = value
    return cls(**values)


def _require(condition: bool, field_path: str, message: str) -> None:
    if not condition:
        raise ConfigError(field_path, message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_fraction(value: Any, field_path: str, upper: float = 1.0) -> None:
    _require(_is_number(value) and 0.0 <= value <= upper, field_path,
             f"must be a number from 0 to {upper}, got {value!r}")


def _check_positive_int(value: Any, field_path: str, optional: bool = False) -> None:
    if optional and value is None:
        return
    _require(_is_int(value) and value > 0, field_path, f"must be a whole number ≥ 1, got {value!r}")


def _check_data(config: RunConfig) -> None:
    data = config.data
    _require(data.source in SOURCES, "data.source",
             f"must be one of {SOURCES}, got {data.source!r}")
    _require(data.label_mode in LABEL_MODES, "data.label_mode",
             f"must be one of {LABEL_MODES}, got {data.label_mode!r}")
    _require(data.source != "folder" or bool(data.path), "data.path",
             "a folder dataset needs the path of a folder or .zip of class sub-folders")
    _check_positive_int(data.image_size, "data.image_size")
    _require(8 <= data.image_size <= MAX_INPUT_SIZE, "data.image_size",
             f"must be from 8 to {MAX_INPUT_SIZE} pixels")
    _require(_is_number(data.validation_split) and 0.0 < data.validation_split < 0.9,
             "data.validation_split", "must be above 0 and below 0.9 (a validation set is needed)")
    _check_positive_int(data.max_train_images, "data.max_train_images", optional=True)
    _check_positive_int(data.max_test_images, "data.max_test_images", optional=True)
    _check_class_subset(data)


def _check_class_subset(data: DataConfig) -> None:
    names = builtin_label_names(data.source, data.label_mode)
    if data.num_classes is not None:
        _check_positive_int(data.num_classes, "data.num_classes")
        _require(data.num_classes >= 2, "data.num_classes", "a classifier needs at least 2 classes")
        if names is not None:
            _require(data.num_classes <= len(names), "data.num_classes",
                     f"{data.source} has only {len(names)} classes")
    if data.classes:
        _require(len(set(data.classes)) == len(data.classes), "data.classes", "names repeat")
        _require(len(data.classes) >= 2, "data.classes", "a classifier needs at least 2 classes")
        unknown = [name for name in data.classes if names is not None and name not in names]
        _require(not unknown, "data.classes",
                 f"unknown class name(s) {unknown} for {data.source} ({data.label_mode} labels)")


def _check_augment(config: RunConfig) -> None:
    for name in ("rotation", "zoom", "shift", "contrast", "brightness"):
        _check_fraction(getattr(config.augment, name), f"augment.{name}")


def _check_model(config: RunConfig) -> None:
    model = config.model
    _require(model.architecture in MODELS, "model.architecture",
             f"unknown architecture {model.architecture!r}")
    info = MODELS[model.architecture]
    _check_positive_int(model.input_size, "model.input_size")
    _require(info.min_input <= model.input_size <= MAX_INPUT_SIZE, "model.input_size",
             f"{info.name} needs an input size from {info.min_input} to {MAX_INPUT_SIZE}, "
             f"got {model.input_size}")
    if info.kind == "transfer" and model.weights not in ("imagenet", "none"):
        _require(Path(model.weights).is_file(), "model.weights",
                 f"weights file {model.weights!r} does not exist "
                 "(use 'imagenet', 'none' or a path)")
    _check_fraction(model.trainable_fraction, "model.trainable_fraction")
    _require(model.pooling in POOLINGS, "model.pooling", f"must be one of {POOLINGS}")
    _require(_is_number(model.dropout) and 0.0 <= model.dropout < 1.0, "model.dropout",
             "must be from 0 up to (not including) 1")
    _require(_is_int(model.dense_units) and model.dense_units >= 0, "model.dense_units",
             "must be a whole number ≥ 0")
    _check_custom_cnn(model)


def _check_custom_cnn(model: ModelConfig) -> None:
    """Width and depth of custom_cnn; every block halves the side, which must stay ≥ 1 px."""
    _require(_is_int(model.base_filters) and 8 <= model.base_filters <= 256, "model.base_filters",
             f"must be a whole number from 8 to 256, got {model.base_filters!r}")
    _require(_is_int(model.blocks) and 1 <= model.blocks <= MAX_BLOCKS, "model.blocks",
             f"must be a whole number from 1 to {MAX_BLOCKS}, got {model.blocks!r}")
    _require(2 ** model.blocks <= model.input_size, "model.blocks",
             f"{model.blocks} max-pools shrink a {model.input_size}-px input below 1 px")


def _check_optimizer(config: RunConfig) -> None:
    opt = config.optimizer
    _require(opt.name in OPTIMIZERS, "optimizer.name",
             f"must be one of {OPTIMIZERS}, got {opt.name!r}")
    _require(_is_number(opt.learning_rate) and 0.0 < opt.learning_rate <= 10.0,
             "optimizer.learning_rate",
             f"must be above 0 and at most 10, got {opt.learning_rate!r}")
    _check_fraction(opt.momentum, "optimizer.momentum")
    _check_fraction(opt.weight_decay, "optimizer.weight_decay")
    _require(opt.schedule in SCHEDULES, "optimizer.schedule", f"must be one of {SCHEDULES}")


def _check_training(config: RunConfig) -> None:
    training = config.training
    _check_positive_int(training.epochs, "training.epochs")
    _check_positive_int(training.batch_size, "training.batch_size")
    _require(training.batch_size <= 4096, "training.batch_size", "must be at most 4096")
    _check_positive_int(training.steps_per_epoch, "training.steps_per_epoch", optional=True)
    _require(_is_number(training.label_smoothing) and 0.0 <= training.label_smoothing < 0.5,
             "training.label_smoothing", "must be from 0 up to (not including) 0.5")


def _check_callbacks(config: RunConfig) -> None:
    callbacks = config.callbacks
    _require(callbacks.early_stopping_monitor in MONITORS, "callbacks.early_stopping_monitor",
             f"must be one of {MONITORS}")
    _check_positive_int(callbacks.early_stopping_patience, "callbacks.early_stopping_patience")
    _require(_is_number(callbacks.reduce_lr_factor) and 0.0 < callbacks.reduce_lr_factor < 1.0,
             "callbacks.reduce_lr_factor", "must be above 0 and below 1")
    _check_positive_int(callbacks.reduce_lr_patience, "callbacks.reduce_lr_patience")
    _require(not (callbacks.reduce_lr and config.optimizer.schedule != "constant"),
             "callbacks.reduce_lr", "cannot be combined with a learning-rate schedule "
             f"({config.optimizer.schedule}): the schedule already sets the rate every step")
