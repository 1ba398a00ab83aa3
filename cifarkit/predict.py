"""Any uploaded image -> model input; saved models -> ranked class probabilities.

Keras is imported only inside load_model: reading and resizing images stays usable (Data page,
image-folder datasets) without paying for TensorFlow's multi-second import.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    import keras

ImageSource = bytes | str | Path | BinaryIO

# What Pillow's decoders raise on corrupt or hostile input (truncated data, bad chunks, bad
# headers, unsupported mode conversions). Listed so real bugs elsewhere are not swallowed.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError,
                  TypeError)
# Downscaling filter: Lanczos is antialiased and keeps edges sharp at CIFAR's tiny sizes.
_RESAMPLE = Image.Resampling.LANCZOS
_WHITE = (255, 255, 255, 255)


class ImageError(ValueError):
    """An image that cannot be used; the message names the file when its name is known."""


class ModelFileError(ValueError):
    """A model file that cannot (or must not) be loaded; the message names the file."""


def read_image(source: ImageSource) -> Image.Image:
    """Decode an upload, a path or raw bytes into an upright RGB image, or raise ImageError.

    Decoding is forced here so a broken file fails now with its name, not later inside the model.
    """
    label = _label(source)
    data = _read_bytes(source, label)
    if not data:
        raise ImageError(f"{label} is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
        _check_pixel_count(image)
        image.load()
        return _to_rgb(_upright(image))
    except Image.DecompressionBombError as err:
        raise ImageError(f"{label} is too large to decode safely: {err}") from err
    except UnidentifiedImageError as err:
        raise ImageError(f"{label} is not an image (or not a format Pillow can read)") from err
    except _DECODE_ERRORS as err:
        raise ImageError(f"{label} is damaged or unreadable: {err}") from err


def _label(source: ImageSource) -> str:
    """How messages name the image: the path or the upload's file name when there is one."""
    name = source if isinstance(source, str | Path) else getattr(source, "name", None)
    return f"'{name}'" if name else "the image"


def _read_bytes(source: ImageSource, label: str) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if isinstance(source, str | Path):
        try:
            return Path(source).read_bytes()
        except OSError as err:
            raise ImageError(f"cannot read {label}: {err.strerror or err}") from err
    if not callable(getattr(source, "read", None)):
        raise ImageError(f"cannot read an image from a {type(source).__name__}")
    seekable = getattr(source, "seekable", None)
    if callable(seekable) and seekable():
        source.seek(0)  # a Streamlit upload already shown with st.image is read to its end
    data = source.read()
    if not isinstance(data, bytes | bytearray):
        raise ImageError(f"{label} was opened in text mode; open it with 'rb'")
    return bytes(data)


def _check_pixel_count(image: Image.Image) -> None:
    """Refuse images over Pillow's pixel limit before decoding them: Pillow itself only warns
    between one and two times the limit, and a warning does not stop a memory blow-up."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and image.width * image.height > limit:
        raise Image.DecompressionBombError(
            f"{image.width}x{image.height} pixels exceeds the limit of {limit} pixels")


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation flag: phones store portraits sideways plus a rotate tag."""
    try:
        return ImageOps.exif_transpose(image)
    except _DECODE_ERRORS:
        return image  # a broken EXIF block is no reason to refuse the picture itself


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB; transparent pixels become white, as a browser would show them
    on a page (their stored colour is often black and meaningless)."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I") or image.mode == "F":
        image = _to_8bit(image)
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba).convert("RGB")
    return image.convert("RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit grey to 0..255: Pillow's own conversion clips, turning most of a 16-bit
    photo pure white."""
    values = np.asarray(image, dtype=np.float64)
    sixteen_bit = image.mode.startswith("I;16") or values.max(initial=0) > 255
    scaled = values * (255 / 65535) if sixteen_bit else values
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def to_input(image: Image.Image | np.ndarray, size: int) -> np.ndarray:
    """A uint8 (size, size, 3) array: centre crop to a square, then an antialiased resize.

    Cropping rather than stretching: CIFAR images are square, so squeezing a wide photo would
    distort objects into shapes the model never saw; the subject is usually near the centre.
    """
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    if isinstance(image, np.ndarray):
        image = _array_to_image(image)
    image = _to_rgb(image)
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    # Crop, then resize: resizing with a crop box (ImageOps.fit) lets the filter read pixels
    # outside the square, bleeding cropped-away content into the edges.
    square = image.crop((left, top, left + side, top + side))
    return np.array(square.resize((size, size), _RESAMPLE), dtype=np.uint8)


def _array_to_image(array: np.ndarray) -> Image.Image:
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) image array, got shape {array.shape}")
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def load_model(path: str | Path) -> keras.Model:
    """Load a .keras/.h5 model in safe mode: a model file from elsewhere must not run code.

    compile=False: inference needs no optimizer state, and loading skips restoring it.
    """
    import keras

    import cifarkit.models.layers  # noqa: F401 - registers ImagePreprocess for deserialization

    path = Path(path)
    _check_model_file(path)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
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


def predict_probs(models: Sequence[keras.Model], images: np.ndarray) -> np.ndarray:
    """Mean class probabilities of one or several models (an ensemble) for a batch of images.

    Each model gets the batch at its own input size, so models trained at 32 and 96 pixels mix.
    """
    if not models:
        raise ValueError("predict_probs needs at least one model")
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise ValueError(f"expected a non-empty (N, H, W, 3) batch, got shape {images.shape}")
    resized: dict[int, np.ndarray] = {}
    outputs: list[np.ndarray] = []
    for model in models:
        batch = _batch_for(model, images, resized)
        probs = np.asarray(model.predict(batch.astype(np.float32), verbose=0))
        _check_output(models[0], outputs, model, probs, len(images))
        outputs.append(probs)
    return np.mean(outputs, axis=0, dtype=np.float64).astype(np.float32)


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
