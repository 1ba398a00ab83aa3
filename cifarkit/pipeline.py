"""tf.data input pipelines: validation splits, batched datasets, TFRecord files.

Images stay uint8 until the last step and reach the model as float32 0..255: rescaling lives
inside the model (ImagePreprocess), so training and inference cannot disagree about it.

TFRecord files are a storage format here, not a second input pipeline: a TFRecord dataset
(cifarkit.datasets, written by `python -m cifarkit datasets export`) is read into memory like
every other source, so Browse, Errors and Predict see its images and `make_dataset` feeds them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import message
from sklearn.model_selection import train_test_split

# Elements held by the shuffle buffer: bounds memory for big images (10k at 224 px ≈ 1.5 GB).
# A full CIFAR training split (45k) is not fully shuffled, but split_validation has already
# shuffled it once, so a 10k window is random enough.
SHUFFLE_BUFFER = 10_000

PathLike = str | os.PathLike
Split = tuple[np.ndarray, np.ndarray]

_RECORD_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),  # raw uint8 bytes, C order (H, W, 3)
    "height": tf.io.FixedLenFeature([], tf.int64),
    "width": tf.io.FixedLenFeature([], tf.int64),
    "label": tf.io.FixedLenFeature([], tf.int64),
}


# ---------------------------------------------------------------------------------------------
# Splits


def split_validation(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[Split, Split]:
    """Carve a validation set off the training set: ((x_train, y_train), (x_val, y_val)).

    Stratified, so every class keeps its share on both sides, whenever sklearn can do it (each
    class has ≥ 2 examples and both sides have room for one of each); else a plain seeded split.
    """
    x, y = _check_examples(x, y)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"fraction: must be above 0 and below 1, got {fraction!r}")
    n_val = math.ceil(len(y) * fraction)
    if n_val >= len(y):
        raise ValueError(f"fraction: {fraction} of {len(y)} examples leaves none to train on")
    stratify = y if _can_stratify(y, n_val) else None
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=n_val, random_state=seed, stratify=stratify
    )
    return (x_train, y_train), (x_val, y_val)


def _can_stratify(y: np.ndarray, n_val: int) -> bool:
    counts = np.unique(y, return_counts=True)[1]
    return bool(counts.min() >= 2 and len(counts) <= min(n_val, len(y) - n_val))


def steps_for(n_examples: int, batch_size: int) -> int:
    """Batches in one pass over n_examples (the last one may be short): a full epoch's steps."""
    _check_positive(n_examples, "n_examples")
    _check_positive(batch_size, "batch_size")
    return math.ceil(n_examples / batch_size)


# ---------------------------------------------------------------------------------------------
# Datasets


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    batch_size: int,
    *,
    training: bool,
    seed: int = 0,
    repeat: bool = False,
    one_hot: bool = True,
    cache: bool = True,
) -> tf.data.Dataset:
    """Batches of (float32 images 0..255, one-hot float32 labels) ready for `model.fit`.

    training=True reshuffles every epoch (seeded, so runs repeat); training=False keeps the order,
    so predictions line up with `y`. repeat=True makes it endless, for `steps_per_epoch`.
    """
    x, y = _check_examples(x, y)
    _check_labels(y, num_classes)
    _check_positive(batch_size, "batch_size")
    elements = tf.data.Dataset.from_tensor_slices((x, y))
    if cache:  # uint8 is 4x smaller than the float32 the model gets
        elements = elements.cache()
    if training:
        elements = elements.shuffle(min(len(y), SHUFFLE_BUFFER), seed=seed,
                                    reshuffle_each_iteration=True)
    # cast whole batches (vectorised); repeat after batching, so steps_for(n, batch) is one epoch
    batches = elements.batch(batch_size).map(
        _model_inputs(num_classes, one_hot), num_parallel_calls=tf.data.AUTOTUNE
    )
    if repeat:
        batches = batches.repeat()
    return batches.prefetch(tf.data.AUTOTUNE)


def _model_inputs(num_classes: int, one_hot: bool) -> Callable[[tf.Tensor, tf.Tensor], tuple]:
    """Batch converter: float32 images; labels range-checked (one_hot would silently zero them)."""

    def convert(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        labels = tf.cast(labels, tf.int64)
        tf.debugging.assert_non_negative(labels, message="labels must be ≥ 0")
        tf.debugging.assert_less(labels, tf.constant(num_classes, tf.int64),
                                 message=f"labels must be below num_classes={num_classes}")
        if one_hot:
            labels = tf.one_hot(labels, num_classes, dtype=tf.float32)
        return tf.cast(images, tf.float32), labels

    return convert


# ---------------------------------------------------------------------------------------------
# TFRecords


class RecordFileError(ValueError):
    """A TFRecord file that cannot be read as ours; the message names the file."""


RecordProgress = Callable[[int], None]  # records written so far
_PROGRESS_EVERY = 1000  # records between progress calls: often enough for a bar, cheap


def write_tfrecords(path: PathLike, x: np.ndarray, y: np.ndarray,
                    progress: RecordProgress | None = None) -> Path:
    """Write (image, label) pairs as tf.train.Example records to one file; returns its path.

    Images are stored as raw uint8 bytes (lossless, no decode cost). The file appears only when
    complete, so an interrupted export never leaves a truncated file behind.
    """
    x, y = _check_examples(x, y)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with tf.io.TFRecordWriter(str(partial)) as writer:
            for done, (image, label) in enumerate(zip(x, y, strict=True), start=1):
                writer.write(_example(image, int(label)).SerializeToString())
                if progress and (done % _PROGRESS_EVERY == 0 or done == len(y)):
                    progress(done)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def read_tfrecords(paths: PathLike | Sequence[PathLike]) -> tf.data.Dataset:
    """(uint8 HxWx3 image, int64 label) elements from files written by `write_tfrecords`.

    The image shape is read from the first record and set statically, so Keras sees (H, W, 3)
    rather than unknown dimensions; a record of another size fails when iterated. A missing,
    empty or foreign first file raises RecordFileError now rather than mid-epoch.
    """
    files = _record_files(paths)
    height, width = _first_record_shape(files)

    def parse(record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        example = tf.io.parse_single_example(record, _RECORD_FEATURES)
        image = tf.io.decode_raw(example["image"], tf.uint8)
        image = tf.reshape(image, tf.stack([example["height"], example["width"], 3]))
        return tf.ensure_shape(image, (height, width, 3)), example["label"]

    return tf.data.TFRecordDataset(files).map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def _example(image: np.ndarray, label: int) -> tf.train.Example:
    height, width, _ = image.shape
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
        "height": _int64_feature(height),
        "width": _int64_feature(width),
        "label": _int64_feature(label),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _int64_feature(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _record_files(paths: PathLike | Sequence[PathLike]) -> list[str]:
    """Check the files exist now, rather than fail with NotFoundError mid-epoch."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise RecordFileError("no TFRecord files given")
    missing = [str(item) for item in items if not Path(item).is_file()]
    if missing:
        raise RecordFileError(f"no such TFRecord file(s): {', '.join(missing)}")
    return [str(item) for item in items]


def _first_record_shape(files: list[str]) -> tuple[int, int]:
    try:
        first = next(iter(tf.data.TFRecordDataset(files[:1]).take(1)), None)
    except tf.errors.DataLossError:
        raise RecordFileError(f"{files[0]} is not a TFRecord file (or is truncated)") from None
    if first is None:
        raise RecordFileError(f"{files[0]} holds no records")
    try:
        feature = tf.train.Example.FromString(first.numpy()).features.feature
    except message.DecodeError:
        feature = {}
    sides = [feature[key].int64_list.value if key in feature else [] for key in ("height", "width")]
    if not all(key in feature for key in _RECORD_FEATURES) or not all(sides):
        raise RecordFileError(f"{files[0]} holds records cifarkit did not write (each needs "
                              f"the features {', '.join(sorted(_RECORD_FEATURES))})")
    return sides[0][0], sides[1][0]


# ---------------------------------------------------------------------------------------------
# Argument checks: fail early, naming the argument, not deep inside a tf.data graph.


def _check_examples(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype != np.uint8:
        raise ValueError(f"x: images must be uint8 (0..255), got {x.dtype}")
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"x: images must have shape (N, height, width, 3), got {x.shape}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y: labels must be a 1-D integer array, got {y.dtype} {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"x, y: {len(x)} images but {len(y)} labels")
    if len(y) == 0:
        raise ValueError("x: no images")
    if y.min() < 0:
        raise ValueError(f"y: labels must be ≥ 0, got {y.min()}")
    return x, y.astype(np.int64, copy=False)


def _check_labels(y: np.ndarray, num_classes: int) -> None:
    _check_positive(num_classes, "num_classes")
    if y.max() >= num_classes:
        raise ValueError(f"y: label {y.max()} is out of range for num_classes={num_classes}")


def _check_positive(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: must be a whole number ≥ 1, got {value!r}")
