"""Whether a data choice can be used yet, and its shape, without loading it where avoidable."""

from __future__ import annotations

from collections.abc import Callable

from cifarkit import datasets, settings
from cifarkit.config import DataConfig
from cifarkit.labels import builtin_label_names


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
    `load`, which a page passes cached); a TFRecord folder's manifest says it (no shard is read);
    built-in sources are known from their label tables."""
    if spec.source == "tfrecord" and spec.path:
        manifest = datasets.read_tfrecord_manifest(spec.path)
        count = len(spec.classes) or spec.num_classes or len(manifest.class_names)
        return count, manifest.image_size
    if spec.source == "folder":
        dataset = load(spec)
        return dataset.num_classes, int(dataset.x_train.shape[1])
    names = builtin_label_names(spec.source, spec.label_mode) or ()
    return len(spec.classes) or spec.num_classes or len(names), spec.image_size
