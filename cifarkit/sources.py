"""What each data source is called and needs: one table that pages, CLI and charts share.

Kept apart from datasets.py (which loads the data) so that naming a source costs no import of
the loaders, and so that a title is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from cifarkit import datasets, settings
from cifarkit.config import AugmentConfig, DataConfig
from cifarkit.labels import builtin_label_names


class Source(NamedTuple):
    title: str  # short name: headers, tables, captions
    choice: str  # longer wording for the dataset picker


SOURCES: dict[str, Source] = {
    "digits": Source("Digits", "Digits (built in, works offline)"),
    "cifar10": Source("CIFAR-10", "CIFAR-10"),
    "cifar100": Source("CIFAR-100", "CIFAR-100"),
    "folder": Source("My own images", "My own images (folder or .zip)"),
    "tfrecord": Source("TFRecord files", "TFRecord files (exported by cifarkit)"),
}
# What the Data page offers, in its order (TFRecord folders come from the command line).
CHOICES = ("digits", "cifar10", "cifar100", "folder")


def title(source: str) -> str:
    """The short name of a source ("CIFAR-10"); an unknown key is shown as it is."""
    known = SOURCES.get(source)
    return known.title if known else source


def describe_data(spec: DataConfig) -> str:
    """One line naming a dataset choice, e.g. "CIFAR-100 (fine labels) · 5 classes: …"."""
    parts = [title(spec.source)]
    if spec.source == "cifar100":
        parts[0] += f" ({spec.label_mode} labels)"
    if spec.source == "folder" and spec.path:
        parts.append(f"`{spec.path}`")
    if spec.classes:
        shown = ", ".join(spec.classes[:6]) + (" …" if len(spec.classes) > 6 else "")
        parts.append(f"{len(spec.classes)} classes: {shown}")
    elif spec.num_classes:
        parts.append(f"first {spec.num_classes} classes")
    if spec.max_train_images:
        parts.append(f"at most {spec.max_train_images:,} training images")
    return " · ".join(parts)


def archive_missing(spec: DataConfig) -> bool:
    """A CIFAR source with no archive on disk yet (loading it would start a download)."""
    return (spec.source in datasets.ARCHIVE_SOURCES and not spec.path
            and datasets.find_archive(spec.source) is None)


def where_to_put(source: str) -> str:
    """Where a hand-copied archive is found, for users without internet."""
    folder = settings.data_dir() or settings.cache_dir()
    archive = datasets.archive_file_name(source)
    return (f"Copy the official archive `{archive}` into `{folder}` (or point the "
            "`CIFARKIT_DATA_DIR` environment variable at the folder that holds it), then reload.")


def data_shape(spec: DataConfig,
               load: Callable[[DataConfig], datasets.Dataset] = datasets.load) -> tuple[int, int]:
    """(number of classes, image side) of a data choice. Only a folder has to be loaded (by
    `load`, which a page passes cached); built-in sources are known from their label tables."""
    if spec.source == "folder":
        dataset = load(spec)
        return dataset.num_classes, int(dataset.x_train.shape[1])
    names = builtin_label_names(spec.source, spec.label_mode) or ()
    return len(spec.classes) or spec.num_classes or len(names), spec.image_size


def recommended_augment(source: str) -> AugmentConfig:
    """Augmentation that helps each dataset; no flips for digits (a mirrored 2 is no 2)."""
    if source == "digits":
        return AugmentConfig(horizontal_flip=False, rotation=0.03, shift=0.1)
    return AugmentConfig(horizontal_flip=True, shift=0.1)
