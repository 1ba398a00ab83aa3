"""Showing tiny images large."""

from __future__ import annotations

import numpy as np
from PIL import Image


def enlarge(image: np.ndarray, side: int) -> Image.Image:
    """Blow a tiny image up with square pixels (a browser would blur a 32×32 image)."""
    return Image.fromarray(image).resize((side, side), Image.Resampling.NEAREST)
