"""Legacy HDF5 (.h5) model files checked before Keras deserialises anything in them.

Keras' .h5 loader rebuilds a model from the JSON config stored in the file, and a Lambda layer
in that config carries marshalled Python bytecode that runs while the model is rebuilt; a
config may also name any importable module. This reads the config with h5py (plain data, no
Keras) and refuses a file with code or with classes Keras does not ship, so that loading it
gives the same guarantee as a .keras file in safe mode.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import h5py

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Classes whose config holds Python code (marshalled bytecode or a function to import).
CODE_CLASSES = {"Lambda": "a Lambda layer", "TFOpLambda": "a TensorFlow-op Lambda layer",
                "SlicingOpLambda": "a TensorFlow slicing Lambda layer",
                "__lambda__": "a Python lambda function"}
# Keras' own serialisation markers for plain values, never code.
_VALUE_MARKERS = {"__keras_tensor__", "__tuple__", "__numpy__", "__bytes__", "__ellipsis__",
                  "__slice__", "__typespec__", "__tensor__"}
_MODEL_CLASSES = {"Functional", "Sequential", "Model"}
# Where Keras keeps what a model config may name: layers, their weights' helpers, dtypes.
_KERAS_NAMESPACES = ("layers", "initializers", "regularizers", "constraints", "dtype_policies",
                     "activations")


class UnsafeModelError(ValueError):
    """An .h5 model that would run code, or needs classes from elsewhere, when loaded."""


def is_hdf5(path: str | Path) -> bool:
    """Whether the file starts with the HDF5 signature (what model.save('x.h5') writes)."""
    with open(path, "rb") as handle:
        return handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE


def check_h5(path: str | Path, label: str | None = None) -> None:
    """Refuse an .h5 model whose config holds code or unknown classes; nothing is executed.

    label: how messages name the file (an upload's temporary path means nothing to a user).
    """
    label = label or str(path)
    config = read_model_config(path, label)
    for item in objects(config):
        problem = _problem(item)
        if problem:
            raise UnsafeModelError(f"{label} {problem} and was refused")


def read_model_config(path: str | Path, label: str) -> dict[str, Any]:
    """The model's JSON config from the file's attributes, as plain data."""
    try:
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
    except OSError as error:
        raise UnsafeModelError(f"{label} is not a readable HDF5 model file: {error}") from error
    if raw is None:
        raise UnsafeModelError(f"{label} holds weights only, no model: save the whole model "
                               "with model.save('name.keras') (or 'name.h5')")
    try:
        config = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UnsafeModelError(f"{label} has an unreadable model config: {error}") from error
    if not isinstance(config, dict):
        raise UnsafeModelError(f"{label} has an unreadable model config (not a JSON object)")
    return config


def objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every serialised object ({"class_name": ...}) anywhere in the config, depth first."""
    if isinstance(value, dict):
        if "class_name" in value:
            yield value
        for item in value.values():
            yield from objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from objects(item)


def _problem(item: dict[str, Any]) -> str | None:
    """What makes this object unsafe to deserialise, in words; None when it is Keras' own."""
    name = str(item.get("class_name"))
    if name in CODE_CLASSES:
        return (f"contains arbitrary code ({CODE_CLASSES[name]}: Python code stored in the "
                "file, which loading would run; rebuild the model with a Rescaling layer or "
                "another built-in layer instead)")
    module = item.get("module")
    if isinstance(module, str) and module.split(".")[0] not in ("keras", "cifarkit"):
        return f"names the module {module!r}, which loading would import and run,"
    if name in _VALUE_MARKERS or name in known_classes():
        return None
    return (f"needs an unknown custom object {name!r} (a class defined in the code that made "
            "the model, not in Keras; loading it would mean running that code)")


@cache
def known_classes() -> frozenset[str]:
    """Class names Keras (and cifarkit's registered layers) deserialise without extra code."""
    import keras

    from cifarkit import legacyh5
    from cifarkit.models import layers

    del legacyh5, layers  # imported to register cifarkit's own layers

    names = set(_MODEL_CLASSES)
    for namespace in _KERAS_NAMESPACES:
        module = getattr(keras, namespace)
        names.update(attr for attr in dir(module) if isinstance(getattr(module, attr), type))
    names.update(keras.saving.get_custom_objects())  # "cifarkit>ImagePreprocess"
    return frozenset(names - set(CODE_CLASSES))
