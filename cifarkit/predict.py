"""Saved models -> ranked class probabilities, for one run or an ensemble.

Images become model input in cifarkit.images. Keras is imported only inside load_model, so
importing this module stays cheap for pages that only read images.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

# Re-exported: callers (pages, CLI, Grad-CAM) keep using predict.read_image and friends, and
# cifarkit.images stays the only code that decodes an image.
from cifarkit import h5scan
from cifarkit.images import ImageError, ImageSource, read_image, to_input

__all__ = ["ImageError", "ImageSource", "ModelFileError", "load_model", "predict_probs",
           "read_image", "to_input", "top_k"]

if TYPE_CHECKING:
    import keras


H5_SUFFIXES = (".h5", ".hdf5")  # the names Keras' legacy loader accepts
BATCH_SIZE = 256  # images per predict call: progress steps, and memory bounded for big models
Progress = Callable[[int, int], None]  # (images done, images in all)


class ModelFileError(ValueError):
    """A model file that cannot (or must not) be loaded; the message names the file."""


def load_model(path: str | Path) -> keras.Model:
    """Load a .keras/.h5 model in safe mode: a model file from elsewhere must not run code.

    An .h5 file's config is checked by cifarkit.h5scan first (Lambda layers, unknown classes),
    before Keras' legacy loader deserialises anything.

    compile=False: inference needs no optimizer state, and loading skips restoring it.
    """
    import keras

    import cifarkit.models.layers  # noqa: F401 - registers ImagePreprocess for deserialization
    from cifarkit import legacyh5  # registers the stand-ins for layers of older Keras

    path = Path(path)
    _check_model_file(path)
    try:
        legacy = h5scan.is_hdf5(path)
        if legacy:  # Keras' legacy loader: the file's config is read before anything runs
            h5scan.check_h5(path)
        return keras.saving.load_model(path, compile=False, safe_mode=True,
                                       custom_objects=legacyh5.custom_objects() if legacy
                                       else None)
    except h5scan.UnsafeModelError as err:
        raise ModelFileError(str(err)) from err
    except ValueError as err:
        if "safe_mode" in str(err):
            raise ModelFileError(
                f"{path} contains arbitrary code (such as a Lambda layer) and was refused: "
                "only models built from registered layers can be loaded") from err
        raise ModelFileError(f"{path} is not a loadable Keras model: {err}") from err
    except (OSError, KeyError, TypeError, zipfile.BadZipFile) as err:
        raise ModelFileError(f"{path} is not a loadable Keras model: {err}") from err


def _check_model_file(path: Path) -> None:
    """Clear messages for the common mistakes, before Keras answers with confusing ones."""
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a Keras model: a .keras file is a zip archive")
    if h5scan.is_hdf5(path) and path.suffix not in H5_SUFFIXES:
        raise ModelFileError(f"{path} is an HDF5 model file: name it with .h5 to load it")


def predict_probs(models: Sequence[keras.Model], images: np.ndarray,
                  progress: Progress | None = None, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Mean class probabilities of one or several models (an ensemble) for a batch of images.

    Each model gets the batch at its own input size, so models trained at 32 and 96 pixels mix.
    Images go through in slices of batch_size, reported to progress(done, total) after each:
    10,000 test images through a large model take minutes on a CPU.
    """
    if not models:
        raise ValueError("predict_probs needs at least one model")
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise ValueError(f"expected a non-empty (N, H, W, 3) batch, got shape {images.shape}")
    resized: dict[int, np.ndarray] = {}
    outputs: list[np.ndarray] = []
    for number, model in enumerate(models):
        batch = _batch_for(model, images, resized)
        probs = _predict_in_slices(model, batch, batch_size, number, len(models), progress)
        _check_output(models[0], outputs, model, probs, len(images))
        outputs.append(probs)
    return np.mean(outputs, axis=0, dtype=np.float64).astype(np.float32)


def _predict_in_slices(model: keras.Model, batch: np.ndarray, batch_size: int, number: int,
                       members: int, progress: Progress | None) -> np.ndarray:
    """model.predict slice by slice; progress counts images over all members of an ensemble."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    total = len(batch) * members
    slices = []
    for start in range(0, len(batch), batch_size):
        chunk = batch[start:start + batch_size].astype(np.float32)
        slices.append(np.asarray(model.predict(chunk, batch_size=batch_size, verbose=0)))
        if progress is not None:
            progress(number * len(batch) + start + len(chunk), total)
    return np.concatenate(slices)


def _batch_for(model: keras.Model, images: np.ndarray,
               resized: dict[int, np.ndarray]) -> np.ndarray:
    """The batch at the model's input size; resized batches are shared between models."""
    shape = model.input_shape
    if not isinstance(shape, tuple) or len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"model '{model.name}' does not take one (N, H, W, 3) input: {shape}")
    height, width = shape[1], shape[2]
    if height is None or (height, width) == images.shape[1:3]:
        return images
    if height != width:
        raise ValueError(f"model '{model.name}' takes non-square {height}x{width} images")
    if height not in resized:
        resized[height] = np.stack([to_input(image, height) for image in images])
    return resized[height]


def _check_output(first: keras.Model, outputs: list[np.ndarray], model: keras.Model,
                  probs: np.ndarray, count: int) -> None:
    if probs.ndim != 2 or len(probs) != count:
        raise ValueError(f"model '{model.name}' returned shape {probs.shape}, "
                         f"not ({count}, classes)")
    if outputs and probs.shape[1] != outputs[0].shape[1]:
        raise ValueError(f"models disagree on the number of classes: '{first.name}' has "
                         f"{outputs[0].shape[1]}, '{model.name}' has {probs.shape[1]}")


def top_k(probs_row: np.ndarray, class_names: Sequence[str], k: int = 5) -> list[tuple[str, float]]:
    """The k most probable classes, most probable first (k larger than C gives all C)."""
    row = np.asarray(probs_row, dtype=np.float64)
    if row.ndim != 1 or len(row) != len(class_names):
        raise ValueError(f"expected {len(class_names)} probabilities, got shape {row.shape}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    order = np.argsort(-row, kind="stable")[:k]
    return [(str(class_names[i]), float(row[i])) for i in order]
