"""RunConfig: everything that defines a training run, as frozen dataclasses.

A config is what a run directory stores as `config.json`, what the Train page builds from its form
and what `python -m cifarkit train` reads, so it round-trips through JSON and validates itself
with messages that name the offending field (e.g. ``model.input_size``).
"""

from __future__ import annotations

import functools
import json
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Self, TypeVar

from cifarkit.labels import builtin_label_names
from cifarkit.models.catalog import DEFAULT_MODEL, MODELS

SOURCES = ("digits", "cifar10", "cifar100", "folder", "tfrecord")
# Sources read from data.path, and what to say when it is missing
PATH_SOURCES = {"folder": "a folder dataset needs the path of a folder or .zip of class "
                "sub-folders",
                "tfrecord": "a TFRecord dataset needs the path of a folder written by "
                "`python -m cifarkit datasets export` (manifest.json and .tfrecord shards)"}
LABEL_MODES = ("fine", "coarse")
OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd", "adagrad")
SCHEDULES = ("constant", "cosine", "one_cycle", "linear")
POOLINGS = ("avg", "max", "flatten")
MONITORS = ("val_loss", "val_accuracy")
MAX_INPUT_SIZE = 224
MAX_BLOCKS = 5  # custom_cnn: 5 max-pools take a 32-px input down to 1 px
# custom_cnn's searchable sizes, (lowest, highest): runs and search spaces check the same range
BASE_FILTERS_RANGE = (8, 256)  # filters of the first block
BLOCKS_RANGE = (1, MAX_BLOCKS)  # conv blocks
# Upper limits that keep a typo from asking for the impossible (one table, shared with searches)
MAX_NAME_LENGTH = 100  # characters of a run or search name
MAX_SEED = 2**32 - 1  # numpy's seed range
MAX_EPOCHS = 10_000  # also the cap of every patience (counted in epochs)
MAX_BATCH_SIZE = 4096  # images per step
MAX_STEPS = 1_000_000  # steps per epoch
MAX_IMAGES = 10_000_000  # max_train_images / max_test_images
MAX_CLASSES = 10_000
MAX_DENSE_UNITS = 65_536
MIN_TIME_BUDGET_S = 10  # seconds: the run needs a few of them to measure its own speed
MAX_TIME_BUDGET_S = 7 * 24 * 3600  # a week
MAX_STEPS_PER_EXECUTION = 1000
TRANSFER_LEARNING_RATE = 1e-4  # peak rate for a pretrained backbone (recommended_optimizer)
ADAM_LEARNING_RATE = 1e-3  # peak rate for the other scratch nets (Keras' Adam default)
MAX_WARMUP_FRACTION = 0.5  # of all steps: more warm-up than decay is a typo
WEIGHTS_SUFFIX = ".weights.h5"  # what Keras' load_weights accepts


def recommended_optimizer(architecture: str) -> OptimizerConfig:
    """The optimizer a new run of this architecture starts from (the Train page's defaults).

    The default recipe's large SGD steps were measured for airbench_cpu (whitened, batch-normed);
    the seed nets (simple_cnn has no batch norm: SGD at 0.2 diverges on it) keep Adam at 1e-3,
    and a pretrained backbone keeps what it knows only with small Adam steps (keras-io's
    fine-tuning recipe). All of them warm up and decay to the end of the run.
    """
    if architecture == ModelConfig().architecture:  # the recipe's optimizer goes with its net
        return OptimizerConfig()
    rate = TRANSFER_LEARNING_RATE if MODELS[architecture].kind == "transfer" else ADAM_LEARNING_RATE
    return OptimizerConfig(name="adam", learning_rate=rate)


class ConfigError(ValueError):
    """A config value that cannot work; `field` is the dotted path of the culprit."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}")
        self.field = field_path
        self.reason = message


@dataclass(frozen=True)
class DataConfig:
    """Which images to train on."""

    source: str = "digits"  # digits (embedded, offline) | cifar10 | cifar100 | folder | tfrecord
    label_mode: str = "fine"  # CIFAR-100 only: fine (100 classes) or coarse (20 superclasses)
    classes: tuple[str, ...] = ()  # subset by name; empty = all classes
    num_classes: int | None = None  # subset by count: the first N classes (ignored if `classes`)
    path: str | None = None  # folder/.zip of class sub-folders, TFRecord folder, CIFAR archive
    image_size: int = 32  # side (pixels) of folder images; CIFAR is 32, TFRecords as exported
    validation_split: float = 0.1  # fraction of train carved off (fixed seed) for validation
    max_train_images: int | None = None  # cap for quick experiments; None = all
    max_test_images: int | None = None


# The defaults below are the recommended recipe, what a click on Train runs: each part was
# measured on the CIFAR-10 sample before it was kept (README, Performance; benchmarks/). A whole
# number of pixels of shift (0.0625 x 32 = 2 px) takes augment.RandomShift's fast path.


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation layers placed inside the model (active in training only)."""

    horizontal_flip: bool = True
    vertical_flip: bool = False
    rotation: float = 0.0  # max rotation as a fraction of a full turn (0.1 = ±36°)
    zoom: float = 0.0  # max zoom in/out as a fraction of the side
    shift: float = 0.0625  # max translation as a fraction of the side (2 px of 32)
    contrast: float = 0.0  # max contrast change (0.2 = ±20 %)
    brightness: float = 0.0  # max brightness change as a fraction of the value range
    flip_tta: bool = True  # test time: average the prediction of each image and its mirror


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
    cache_features: bool = True  # head-only transfer: run the frozen backbone once, not per epoch


@dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer and learning-rate schedule."""

    name: str = "sgd"  # adam | adamw | nadam | rmsprop | sgd | adagrad
    learning_rate: float = 0.2  # the peak of the schedule
    momentum: float = 0.9  # sgd and rmsprop
    nesterov: bool = True  # sgd
    weight_decay: float = 5e-4  # sgd and adamw: weights shrink by lr * weight_decay per step
    schedule: str = "linear"  # constant | cosine (decay to 0) | one_cycle (warm up, then decay)
    #                             | linear (warm up, then straight down to 0 at the last step)
    warmup_fraction: float = 0.1  # linear: share of all steps spent warming up from ~0 to the peak
    use_ema: bool = False  # keep an exponential moving average of the weights and end on it
    ema_momentum: float = 0.99  # per step: average = momentum * average + (1 - momentum) * weights


@dataclass(frozen=True)
class TrainingConfig:
    """How long and how to fit."""

    epochs: int = 10
    batch_size: int = 256
    steps_per_epoch: int | None = None  # None = one pass over the training split
    label_smoothing: float = 0.2  # airbench's value; calibration undoes its under-confidence
    mixed_precision: bool = True  # float16 compute on a GPU, bfloat16 on a CPU that has it
    jit_compile: bool = False  # XLA; only pays off on a GPU
    time_budget_s: float | None = None  # train for this long: epochs and schedule are fitted to
    #                                     the speed measured in the first steps; `epochs` is ignored
    steps_per_execution: int = 8  # batches per call into the compiled step (+15 % images/s here)
    distribute: bool = False  # MirroredStrategy over every visible GPU (batch_size per GPU)
    calibrate: bool = True  # fit a softmax temperature on the validation split after training


@dataclass(frozen=True)
class CallbacksConfig:
    """Keras callbacks; the progress writer and stop check are always on."""

    early_stopping: bool = False  # the schedule decides the end (refused with a time budget)
    early_stopping_monitor: str = "val_loss"
    early_stopping_patience: int = 5  # epochs without improvement before stopping
    restore_best_weights: bool = True
    reduce_lr: bool = False  # only with a constant schedule
    reduce_lr_factor: float = 0.5  # new lr = lr * factor
    reduce_lr_patience: int = 2
    checkpoint: bool = True  # keep the best model (by validation accuracy) as model.keras


class JsonConfig:
    """The JSON round trip of a config file (RunConfig, TuneConfig), written once.

    Subclasses are frozen dataclasses; `json_name` is the field named when text is not an object.
    """

    json_name = "config"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        """Build from a (possibly partial) dict; unknown keys are errors naming the field."""
        if not isinstance(raw, dict):
            raise ConfigError(cls.json_name, "must be an object")
        return _from_dict(cls, raw, "")

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls.from_dict(parse_json_object(text, cls.json_name))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a config file; a missing, unreadable or non-object file is a ConfigError."""
        return cls.from_dict(load_json_object(path))

    def save(self, path: str | Path) -> None:
        save_json_object(path, self.to_dict())


@dataclass(frozen=True)
class RunConfig(JsonConfig):
    """A whole training run."""

    name: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    seed: int = 42

    def validate(self) -> RunConfig:
        """Raise ConfigError for the first impossible setting; return self so calls chain."""
        check_types(self)
        check_name(self.name, "name")
        check_whole_number(self.seed, "seed", low=0, high=MAX_SEED)
        for check in (_check_data, _check_augment, _check_model, _check_optimizer,
                      _check_training, _check_callbacks):
            check(self)
        return self

    def with_updates(self, **sections: Any) -> RunConfig:
        """Copy with whole sections or top-level fields replaced."""
        return replace(self, **sections)


T = TypeVar("T")


JSON_KINDS = {list: "a list", str: "a string", int: "a number", float: "a number",
              bool: "true/false", type(None): "null"}


def parse_json_object(text: str, field_path: str) -> dict[str, Any]:
    """A JSON object from text, or a ConfigError naming field_path (configs are JSON objects)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(field_path, f"not valid JSON ({error})") from None
    if not isinstance(raw, dict):
        raise ConfigError(field_path, f"must be a JSON object, got {JSON_KINDS[type(raw)]}")
    return raw


def load_json_object(path: str | Path) -> dict[str, Any]:
    """The JSON object in a config file (run or search); every failure names the file."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(str(path), "is a folder, not a JSON file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "not valid JSON (not UTF-8 text)") from None
    except OSError as error:
        raise ConfigError(str(path), f"cannot be read ({error.strerror or error})") from None
    return parse_json_object(text, str(path))


def save_json_object(path: str | Path, value: dict[str, Any]) -> None:
    """Write a config file (run or search) as indented JSON."""
    Path(path).write_text(json.dumps(value, indent=2), encoding="utf-8")


def set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """raw["a"]["b"] = value for "a.b" (a CLI flag over a JSON config); sections must be objects."""
    *sections, key = dotted.split(".")
    done: list[str] = []
    for section in sections:
        done.append(section)
        raw = raw.setdefault(section, {})
        if not isinstance(raw, dict):
            raise ConfigError(".".join(done),
                              f"must be an object, got {JSON_KINDS.get(type(raw), 'a value')}")
    raw[key] = value


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


# --- validation helpers shared by RunConfig and TuneConfig (cifarkit.tuneconfig)


def require(condition: bool, field_path: str, message: str) -> None:
    if not condition:
        raise ConfigError(field_path, message)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_whole_number(value: Any, field_path: str, low: int = 1, high: int | None = None,
                       optional: bool = False) -> None:
    """A whole number from low to high (None allowed if optional)."""
    if optional and value is None:
        return
    require(is_int(value) and value >= low, field_path,
            f"must be a whole number ≥ {low}, got {value!r}")
    if high is not None:
        require(value <= high, field_path, f"must be at most {high:,}, got {value:,}")


def is_between(value: Any, low: int, high: int) -> bool:
    """A whole number from low to high, both included."""
    return is_int(value) and low <= value <= high


def check_between(value: Any, field_path: str, low: int, high: int) -> None:
    """A whole number from low to high, named with both ends in the message."""
    require(is_between(value, low, high), field_path,
            f"must be a whole number from {low} to {high}, got {value!r}")


def check_name(value: Any, field_path: str) -> None:
    """A run or search name: one line of text, short enough for a table cell."""
    require(isinstance(value, str), field_path, f"must be text, got {value!r}")
    require(len(value) <= MAX_NAME_LENGTH, field_path,
            f"must be at most {MAX_NAME_LENGTH} characters, got {len(value)}")
    require(value.isprintable(), field_path, "must not contain line breaks or control characters")


TYPE_WORDS = {bool: "true or false", str: "text", int: "a whole number", float: "a number",
              type(None): "null"}


def type_problem(config: Any, prefix: str = "") -> tuple[str, Any, str] | None:
    """The first field (dotted) of a config whose value does not fit its type hint, with the
    value and what it should be; None if every field fits. Nested sections are searched too.

    Number ranges get their own checks; this catches what would break far from the cause
    ("yes" for a switch is truthy, an object for a name breaks every table that shows it).
    """
    hints = _type_hints(type(config))
    for item in fields(config):
        value, path = getattr(config, item.name), f"{prefix}{item.name}"
        if is_dataclass(value):
            problem = type_problem(value, f"{path}.")
            if problem:
                return problem
        elif not _fits(value, hints[item.name]):
            return path, value, _describe(hints[item.name])
    return None


def check_types(config: Any) -> None:
    """ConfigError for the first field of the wrong type (see type_problem)."""
    problem = type_problem(config)
    if problem:
        path, value, wanted = problem
        raise ConfigError(path, f"must be {wanted}, got {repr(value)[:60]}")


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _fits(value: Any, hint: Any) -> bool:
    """isinstance for the hints configs use: str, int, float, bool, X | None, tuple[X, ...]."""
    if isinstance(hint, types.UnionType):
        return any(_fits(value, option) for option in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        element = typing.get_args(hint)[0]
        return isinstance(value, tuple) and all(_fits(item, element) for item in value)
    if hint is float:
        return is_number(value)
    if hint is int:
        return is_int(value)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    if isinstance(hint, types.UnionType):
        return " or ".join(_describe(option) for option in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return f"a list, each {_describe(typing.get_args(hint)[0])}"
    return TYPE_WORDS.get(hint, getattr(hint, "__name__", str(hint)))


def _check_fraction(value: Any, field_path: str, upper: float = 1.0) -> None:
    require(is_number(value) and 0.0 <= value <= upper, field_path,
            f"must be a number from 0 to {upper}, got {value!r}")


def _check_data(config: RunConfig) -> None:
    data = config.data
    require(data.source in SOURCES, "data.source",
            f"must be one of {SOURCES}, got {data.source!r}")
    require(data.label_mode in LABEL_MODES, "data.label_mode",
            f"must be one of {LABEL_MODES}, got {data.label_mode!r}")
    require(data.source not in PATH_SOURCES or bool(data.path), "data.path",
            PATH_SOURCES.get(data.source, ""))
    check_whole_number(data.image_size, "data.image_size")
    require(8 <= data.image_size <= MAX_INPUT_SIZE, "data.image_size",
            f"must be from 8 to {MAX_INPUT_SIZE} pixels")
    require(is_number(data.validation_split) and 0.0 < data.validation_split < 0.9,
            "data.validation_split", "must be above 0 and below 0.9 (a validation set is needed)")
    check_whole_number(data.max_train_images, "data.max_train_images", high=MAX_IMAGES,
                       optional=True)
    check_whole_number(data.max_test_images, "data.max_test_images", high=MAX_IMAGES,
                       optional=True)
    _check_class_subset(data)


def _check_class_subset(data: DataConfig) -> None:
    names = builtin_label_names(data.source, data.label_mode)
    if data.num_classes is not None:
        check_whole_number(data.num_classes, "data.num_classes", high=MAX_CLASSES)
        require(data.num_classes >= 2, "data.num_classes", "a classifier needs at least 2 classes")
        if names is not None:
            require(data.num_classes <= len(names), "data.num_classes",
                    f"{data.source} has only {len(names)} classes")
    if data.classes:
        require(len(set(data.classes)) == len(data.classes), "data.classes", "names repeat")
        require(len(data.classes) >= 2, "data.classes", "a classifier needs at least 2 classes")
        unknown = [name for name in data.classes if names is not None and name not in names]
        require(not unknown, "data.classes",
                f"unknown class name(s) {unknown} for {data.source} ({data.label_mode} labels)")


def _check_augment(config: RunConfig) -> None:
    for name in ("rotation", "zoom", "shift", "contrast", "brightness"):
        _check_fraction(getattr(config.augment, name), f"augment.{name}")


def _check_model(config: RunConfig) -> None:
    model = config.model
    require(model.architecture in MODELS, "model.architecture",
            f"unknown architecture {model.architecture!r}")
    info = MODELS[model.architecture]
    check_whole_number(model.input_size, "model.input_size")
    require(info.min_input <= model.input_size <= MAX_INPUT_SIZE, "model.input_size",
            f"{info.name} needs an input size from {info.min_input} to {MAX_INPUT_SIZE}, "
            f"got {model.input_size}")
    if info.kind == "transfer" and model.weights not in ("imagenet", "none"):
        _check_weights_file(model.weights)
    _check_fraction(model.trainable_fraction, "model.trainable_fraction")
    require(model.pooling in POOLINGS, "model.pooling", f"must be one of {POOLINGS}")
    require(is_number(model.dropout) and 0.0 <= model.dropout < 1.0, "model.dropout",
            "must be from 0 up to (not including) 1")
    check_whole_number(model.dense_units, "model.dense_units", low=0, high=MAX_DENSE_UNITS)
    _check_custom_cnn(model)


def _check_weights_file(weights: str) -> None:
    """A local weights file must exist and be a Keras .weights.h5 (HDF5) file.

    Checked here, before a run folder exists; whether it fits the backbone shows when it loads.
    """
    import h5py  # only for a local weights file: keeps config imports light

    path = Path(weights)
    require(path.is_file(), "model.weights",
            f"weights file {weights!r} does not exist (use 'imagenet', 'none' or a path)")
    require(path.name.endswith(WEIGHTS_SUFFIX), "model.weights",
            f"weights file {weights!r} must be a Keras {WEIGHTS_SUFFIX} file")
    require(h5py.is_hdf5(path), "model.weights",
            f"weights file {weights!r} is not an HDF5 file (a Keras {WEIGHTS_SUFFIX} file)")


def _check_custom_cnn(model: ModelConfig) -> None:
    """Width and depth of custom_cnn; every block halves the side, which must stay ≥ 1 px."""
    check_between(model.base_filters, "model.base_filters", *BASE_FILTERS_RANGE)
    check_between(model.blocks, "model.blocks", *BLOCKS_RANGE)
    require(2 ** model.blocks <= model.input_size, "model.blocks",
            f"{model.blocks} max-pools shrink a {model.input_size}-px input below 1 px")


def _check_optimizer(config: RunConfig) -> None:
    opt = config.optimizer
    require(opt.name in OPTIMIZERS, "optimizer.name",
            f"must be one of {OPTIMIZERS}, got {opt.name!r}")
    require(is_number(opt.learning_rate) and 0.0 < opt.learning_rate <= 10.0,
            "optimizer.learning_rate",
            f"must be above 0 and at most 10, got {opt.learning_rate!r}")
    _check_fraction(opt.momentum, "optimizer.momentum")
    _check_fraction(opt.weight_decay, "optimizer.weight_decay")
    _check_fraction(opt.warmup_fraction, "optimizer.warmup_fraction", upper=MAX_WARMUP_FRACTION)
    require(is_number(opt.ema_momentum) and 0.0 < opt.ema_momentum < 1.0,
            "optimizer.ema_momentum", f"must be above 0 and below 1, got {opt.ema_momentum!r}")
    require(opt.schedule in SCHEDULES, "optimizer.schedule", f"must be one of {SCHEDULES}")


def _check_training(config: RunConfig) -> None:
    training = config.training
    check_whole_number(training.epochs, "training.epochs", high=MAX_EPOCHS)
    check_whole_number(training.batch_size, "training.batch_size", high=MAX_BATCH_SIZE)
    check_whole_number(training.steps_per_epoch, "training.steps_per_epoch", high=MAX_STEPS,
                       optional=True)
    require(is_number(training.label_smoothing) and 0.0 <= training.label_smoothing < 0.5,
            "training.label_smoothing", "must be from 0 up to (not including) 0.5")
    check_whole_number(training.steps_per_execution, "training.steps_per_execution",
                       high=MAX_STEPS_PER_EXECUTION)
    budget = training.time_budget_s
    require(budget is None or MIN_TIME_BUDGET_S <= budget <= MAX_TIME_BUDGET_S,
            "training.time_budget_s", f"must be from {MIN_TIME_BUDGET_S} seconds to "
            f"{MAX_TIME_BUDGET_S:,} (a week), got {budget!r}")
    require(budget is None or not config.callbacks.early_stopping, "callbacks.early_stopping",
            "cannot be combined with a time budget: the budget ends the run when its "
            "learning-rate schedule ends, and early stopping would cut the schedule short")


def _check_callbacks(config: RunConfig) -> None:
    callbacks = config.callbacks
    require(callbacks.early_stopping_monitor in MONITORS, "callbacks.early_stopping_monitor",
            f"must be one of {MONITORS}")
    check_whole_number(callbacks.early_stopping_patience, "callbacks.early_stopping_patience",
                       high=MAX_EPOCHS)
    require(is_number(callbacks.reduce_lr_factor) and 0.0 < callbacks.reduce_lr_factor < 1.0,
            "callbacks.reduce_lr_factor", "must be above 0 and below 1")
    check_whole_number(callbacks.reduce_lr_patience, "callbacks.reduce_lr_patience",
                       high=MAX_EPOCHS)
    require(not (callbacks.reduce_lr and config.optimizer.schedule != "constant"),
            "callbacks.reduce_lr", "cannot be combined with a learning-rate schedule "
            f"({config.optimizer.schedule}): the schedule already sets the rate every step")
