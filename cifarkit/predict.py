"""Saved models -> ranked class probabilities, for one run or an ensemble.

Images become model input in cifarkit.images. Keras is imported only inside load_model, so
importing this module stays cheap for pages that only read images.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

# Re-exported: callers (pages, CLI, Grad-CAM) keep using predict.read_image and friends, and
# cifarkit.images stays the only code that decodes an image.
from cifarkit import h5scan, rundir
from cifarkit.calibration import apply_temperature
from cifarkit.images import ImageError, ImageSource, read_image, to_input

__all__ = ["ImageError", "ImageSource", "Inference", "ModelFileError", "load_model",
           "predict_probs", "read_image", "run_inference", "to_input", "top_k"]

if TYPE_CHECKING:
    import keras


H5_SUFFIXES = (".h5", ".hdf5")  # the names Keras' legacy loader accepts
BATCH_SIZE = 256  # images per predict call: progress steps, and memory bounded for big models
Progress = Callable[[int, int], None]  # (images done, images in all)


@dataclass(frozen=True)
class Inference:
    """How a model's raw outputs become the probabilities shown: flip test-time augmentation
    (the mean of the image's and its mirror's prediction) then a fitted softmax temperature.

    The defaults are a plain model.predict, which is what old runs and imported models get.
    """

    flip_tta: bool = False
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.flip_tta, bool):
            raise ValueError(f"Inference.flip_tta must be true or false, got {self.flip_tta!r}")
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, int | float) \
                or not math.isfinite(self.temperature) or self.temperature <= 0:
            raise ValueError("Inference.temperature must be a positive number, "
                             f"got {self.temperature!r}")

    @property
    def passes(self) -> int:
        """Forward passes per image (2 with the mirror image)."""
        return 2 if self.flip_tta else 1


def run_inference(run_dir: str | Path) -> Inference:
    """The Inference a run's test predictions were made with, read from its folder.

    config.json's augment.flip_tta as written (a config from before the setting has none: no
    TTA, though RunConfig would default it on) and status.json's temperature (none: T = 1).
    An imported model is scored as it came: no TTA.
    """
    run_dir = Path(run_dir)
    status = rundir.read_status(run_dir)
    augment = rundir.read_json(run_dir / rundir.CONFIG).get("augment")
    flip = isinstance(augment, dict) and augment.get("flip_tta") is True
    temperature = status.get("temperature")
    usable = (isinstance(temperature, int | float) and not isinstance(temperature, bool)
              and math.isfinite(temperature) and temperature > 0)
    return Inference(flip_tta=flip and not status.get("imported"),
                     temperature=float(temperature) if usable else 1.0)


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
                  progress: Progress | None = None, batch_size: int = BATCH_SIZE,
                  inference: Sequence[Inference] | None = None) -> np.ndarray:
    """Mean class probabilities of one or several models (an ensemble) for a batch of images.

    inference holds one Inference per model (None: plain predictions for all): each member's
    probabilities get its own flip TTA and temperature before the ensemble averages them, so a
    run predicts here exactly as its test predictions were made. Each model gets the batch at
    its own input size, so models trained at 32 and 96 pixels mix. Forward passes go in slices
    of batch_size, reported to progress(done, total) after each: 10,000 test images through a
    large model take minutes on a CPU.
    """
    if not models:
        raise ValueError("predict_probs needs at least one model")
    inference = list(inference) if inference is not None else [Inference()] * len(models)
    if len(inference) != len(models):
        raise ValueError(f"{len(inference)} inference settings for {len(models)} models: "
                         "give one per model")
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise ValueError(f"expected a non-empty (N, H, W, 3) batch, got shape {images.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    resized: dict[int, np.ndarray] = {}
    outputs: list[np.ndarray] = []
    counter = _Counter(progress, len(images) * sum(each.passes for each in inference))
    for model, each in zip(models, inference, strict=True):
        batch = _batch_for(model, images, resized)
        probs = _member_probs(model, batch, batch_size, each, counter)
        _check_output(models[0], outputs, model, probs, len(images))
        outputs.append(probs)
    return np.mean(outputs, axis=0, dtype=np.float64).astype(np.float32)


@dataclass
class _Counter:
    """Images through the models so far, over every member and mirror pass, for progress."""

    progress: Progress | None
    total: int
    done: int = 0

    def add(self, count: int) -> None:
        self.done += count
        if self.progress is not None:
            self.progress(self.done, self.total)


def _member_probs(model: keras.Model, batch: np.ndarray, batch_size: int, inference: Inference,
                  counter: _Counter) -> np.ndarray:
    """One member's probabilities: plain, or averaged with the mirror image's; then T."""
    probs = _predict_in_slices(model, batch, batch_size, counter)
    if inference.flip_tta:
        mirrored = _predict_in_slices(model, batch[:, :, ::-1], batch_size, counter)
        if mirrored.shape == probs.shape:  # a bad shape is named by _check_output
            probs = (probs.astype(np.float64) + mirrored) / 2
    if inference.temperature != 1.0 and probs.ndim == 2:
        probs = apply_temperature(probs, inference.temperature)
    return np.asarray(probs, dtype=np.float32)


def _predict_in_slices(model: keras.Model, batch: np.ndarray, batch_size: int,
                       counter: _Counter) -> np.ndarray:
    """The model slice by slice, each slice counted as it finishes.

    predict_on_batch, not predict: predict builds a dataset and a progress loop per call, which
    is most of the time of one photo (about 50-110 ms against 2-3 ms, benchmarks/bench_predict.py).
    """
    slices: list[Any] = []
    for start in range(0, len(batch), batch_size):
        chunk = batch[start:start + batch_size].astype(np.float32)
        slices.append(np.asarray(model.predict_on_batch(chunk)))
        counter.add(len(chunk))
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
