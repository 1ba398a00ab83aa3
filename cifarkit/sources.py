"""What each data source is called: the one table that datasets, the runs table and pages share.

It imports nothing but the config and the label names, so datasets.py (which loads the data) can
use it too.
"""

from __future__ import annotations

from typing import NamedTuple

from cifarkit.config import PATH_SOURCES, AugmentConfig, DataConfig
from cifarkit.labels import display_name


class Source(NamedTuple):
    title: str  # short name: headers, tables, captions
    choice: str  # longer wording: the dataset picker and the catalog


SOURCES: dict[str, Source] = {
    "digits": Source("Digits", "Digits (built in, works offline)"),
    "cifar10": Source("CIFAR-10", "CIFAR-10"),
    "cifar100": Source("CIFAR-100", "CIFAR-100"),
    "folder": Source("My own images", "My own images (folder or .zip)"),
    "tfrecord": Source("TFRecord folder", "TFRecord folder (from datasets export)"),
}
# What the Data page offers, in its order (TFRecord folders: `python -m cifarkit datasets export`).
CHOICES = ("digits", "cifar10", "cifar100", "folder", "tfrecord")


def source_title(source: str) -> str:
    """The short name of a source ("CIFAR-10"); an unknown key is shown as it is."""
    known = SOURCES.get(source)
    return known.title if known else source


def source_choice(source: str) -> str:
    """The longer wording of a source ("Digits (built in, works offline)")."""
    known = SOURCES.get(source)
    return known.choice if known else source


def describe_data(spec: DataConfig) -> str:
    """One line naming a dataset choice, e.g. "CIFAR-100 (fine labels) · 5 classes: …"."""
    parts = [source_title(spec.source)]
    if spec.source == "cifar100":
        parts[0] += f" ({spec.label_mode} labels)"
    if spec.source in PATH_SOURCES and spec.path:
        parts.append(f"`{spec.path}`")
    if spec.classes:
        shown = ", ".join(display_name(name) for name in spec.classes[:6])
        shown += " …" if len(spec.classes) > 6 else ""
        parts.append(f"{len(spec.classes)} classes: {shown}")
    elif spec.num_classes:
        parts.append(f"first {spec.num_classes} classes")
    if spec.max_train_images:
        parts.append(f"at most {spec.max_train_images:,} training images")
    return " · ".join(parts)


def recommended_augment(source: str) -> AugmentConfig:
    """Augmentation that helps each dataset: the default recipe's for photos; no flips for
    digits, in training or at test time (a mirrored 2 is no 2)."""
    if source == "digits":
        return AugmentConfig(horizontal_flip=False, rotation=0.03, shift=0.1, flip_tta=False)
    return AugmentConfig()
