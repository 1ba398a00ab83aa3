"""A data choice as URL query parameters, so a reload, a new tab or a shared link keeps it.

Only the fields that differ from DataConfig's defaults go in (`?source=cifar10&num_classes=5`);
reading them back validates like a config file, naming the field that is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields

from cifarkit.config import ConfigError, DataConfig, RunConfig

# How a query value (always text) becomes the field's value; any other field is text as it is.
_PARSE: dict[str, Callable[[str], object]] = {
    "classes": lambda text: [name for name in text.split(",") if name],
    "num_classes": int, "image_size": int, "max_train_images": int, "max_test_images": int,
    "validation_split": float,
}
FIELDS = tuple(item.name for item in fields(DataConfig))  # the query keys this module owns


def to_query(spec: DataConfig) -> dict[str, str]:
    """The fields of `spec` that differ from the defaults, as query text."""
    default = DataConfig()
    query = {}
    for name in FIELDS:
        value = getattr(spec, name)
        if value != getattr(default, name):
            query[name] = ",".join(value) if isinstance(value, tuple) else str(value)
    return query


def from_query(query: Mapping[str, str]) -> DataConfig | None:
    """The DataConfig a query names, None when it names none; ConfigError (data.<field>) when a
    value is not one the config accepts. Keys that are not DataConfig fields are ignored."""
    raw = {}
    for name in FIELDS:
        if name not in query:
            continue
        text = str(query[name])
        try:
            raw[name] = _PARSE.get(name, str)(text)
        except ValueError:
            raise ConfigError(f"data.{name}", f"must be a number, got {text!r}") from None
    if not raw:
        return None
    return RunConfig.from_dict({"data": raw}).validate().data
