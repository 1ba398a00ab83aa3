"""The one way an image file (upload, path, folder file, zip member) becomes model input.

Training on a folder and predicting on an upload must see the same pixels, so both go through
`read_image` (size check, decode, EXIF orientation, any mode to 8-bit RGB) and `to_input`
(centre crop, one resize filter). The pixel count is checked on the header, before decoding:
a few-KB PNG can declare 13000×13000 pixels and inflate to half a gigabyte.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageSource = bytes | str | Path | BinaryIO

# 50 megapixels admits full-resolution 48/50-MP phone photos (about 150 MB once decoded) and
# refuses anything bigger before it is decoded: thirty students decoding at once must fit in RAM.
MAX_PIXELS = 50_000_000
# JPEGs decode at a reduced scale (1/2, 1/4, 1/8) while both sides stay at least this many pixels:
# several times faster for phone photos, and still above the largest model input size.
DRAFT_SIDE = 1024
# Downscaling filter: Lanczos is antialiased and keeps edges sharp at CIFAR's tiny sizes.
RESAMPLE = Image.Resampling.LANCZOS
_WHITE = (255, 255, 255, 255)
# What Pillow's decoders raise on corrupt or hostile input (truncated data, bad chunks, bad
# headers, unsupported mode conversions). Listed so real bugs elsewhere are not swallowed.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError,
                  TypeError, RuntimeError, zlib.error)


class ImageError(ValueError):
    """An image that cannot be used; the message names the file when its name is known."""


class ImageTooLarge(ImageError):
    """An image over MAX_PIXELS: hostile or absurd, so a folder holding one is refused whole."""


def load_input(source: ImageSource, size: int, name: str | None = None) -> np.ndarray:
    """An image file as a uint8 (size, size, 3) model input, or ImageError naming the file."""
    return to_input(read_image(source, name), size)


def read_image(source: ImageSource, name: str | None = None) -> Image.Image:
    """Decode an upload, a path or raw bytes into an upright 8-bit RGB image, or raise ImageError.

    `name` labels messages when the source has none (zip members, raw bytes). Decoding is forced
    here so a broken file fails now with its name, not later inside the model.
    """
    label = f"'{name}'" if name else _label(source)
    opened = _openable(source, label)
    try:
        with Image.open(opened) as image:
            check_pixels(image, label)
            image.draft(None, (DRAFT_SIDE, DRAFT_SIDE))  # JPEG only; others ignore it
            image.load()
            return _to_rgb(_upright(image)).copy()
    except ImageError:
        raise  # our own refusal (a ValueError): already says what is wrong
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # Pillow's own limit (about 179 MP, or 89 MP where warnings are errors) fires inside
        # Image.open, before our check could read the header.
        raise ImageTooLarge(f"{label} is too large to decode safely: {err}") from err
    except UnidentifiedImageError as err:
        raise ImageError(f"{label} is not an image (or not a format Pillow can read)") from err
    except _DECODE_ERRORS as err:
        raise ImageError(f"{label} is damaged or unreadable: {err}") from err


def check_pixels(image: Image.Image, label: str, limit: int | None = None) -> None:
    """Refuse an opened (not yet decoded) image whose header declares more than `limit` pixels."""
    limit = MAX_PIXELS if limit is None else limit
    pixels = image.width * image.height
    if pixels > limit:
        raise ImageTooLarge(f"{label} is {image.width}×{image.height} pixels "
                            f"({pixels / 1e6:.0f} megapixels; the limit is "
                            f"{limit / 1e6:g} megapixels): too large to decode safely")


def _label(source: ImageSource) -> str:
    """How messages name the image: the path or the upload's file name when there is one."""
    name = source if isinstance(source, str | Path) else getattr(source, "name", None)
    return f"'{name}'" if name else "the image"


def _openable(source: ImageSource, label: str) -> BinaryIO | Path:
    """What Image.open reads: a path stays a path (read lazily, never slurped), the rest bytes."""
    if isinstance(source, str | Path):
        try:
            size = os.stat(source).st_size
        except OSError as err:
            raise ImageError(f"cannot read {label}: {err.strerror or err}") from err
        if not Path(source).is_file():
            raise ImageError(f"cannot read {label}: not a regular file")
        if size == 0:
            raise ImageError(f"{label} is empty (0 bytes)")
        return Path(source)
    data = _read_bytes(source, label)
    if not data:
        raise ImageError(f"{label} is empty (0 bytes)")
    return io.BytesIO(data)


def _read_bytes(source: bytes | BinaryIO, label: str) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if not callable(getattr(source, "read", None)):
        raise ImageError(f"cannot read an image from a {type(source).__name__}")
    seekable = getattr(source, "seekable", None)
    if callable(seekable) and seekable():
        source.seek(0)  # a Streamlit upload already shown with st.image is read to its end
    data = source.read()
    if not isinstance(data, bytes | bytearray):
        raise ImageError(f"{label} was opened in text mode; open it with 'rb'")
    return bytes(data)


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
    return np.array(square.resize((size, size), RESAMPLE), dtype=np.uint8)


def _array_to_image(array: np.ndarray) -> Image.Image:
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) image array, got shape {array.shape}")
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
