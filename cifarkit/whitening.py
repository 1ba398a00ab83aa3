"""Patch whitening: a frozen first conv that decorrelates the training images' pixel patches.

From airbench (Keller Jordan) and "How to train your ResNet" (David Page): with the first layer's
filters set to the eigenvectors of the 2x2-patch covariance, scaled to unit variance, the net
starts from decorrelated inputs and learns faster in a short budget. The filters come in +/- pairs
so a following ReLU/GELU keeps both signs. They are computed from the training split only (never
validation or test) and then frozen: the layer is part of the saved model, so prediction sees
exactly what training saw.
"""

from __future__ import annotations

import keras
import numpy as np

WHITEN_LAYER = "whiten"  # name of the Conv2D that init_whitening fills in
PATCH = 2  # patch side (pixels): airbench's choice, 12 input values per patch
CHANNELS = 2 * PATCH * PATCH * 3  # one filter per eigenvector, and its negative
EPSILON = 5e-4  # added to the eigenvalues: near-zero directions are not blown up into noise
MAX_IMAGES = 5_000  # enough for a stable 12x12 covariance; bounds memory on big datasets


def whitening_conv() -> keras.layers.Conv2D:
    """The frozen layer a scratch architecture places on its 0..1 input (filled in later)."""
    return keras.layers.Conv2D(CHANNELS, PATCH, padding="valid", name=WHITEN_LAYER,
                               trainable=False)


def whitening_weights(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kernel (2, 2, 3, 24), bias (24,)) that whiten 2x2 patches of uint8 images scaled to 0..1.

    The bias subtracts the patch mean, so outputs have zero mean and unit variance per filter.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or min(images.shape[1:3]) < PATCH:
        raise ValueError(f"images must have shape (N, H, W, 3) with H, W ≥ {PATCH}, "
                         f"got {images.shape}")
    patches = _patches(images[:MAX_IMAGES].astype(np.float64) / 255.0)
    mean = patches.mean(axis=0)
    centred = patches - mean
    covariance = centred.T @ centred / len(centred)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    filters = eigenvectors / np.sqrt(np.clip(eigenvalues, 0.0, None) + EPSILON)  # columns
    filters = np.concatenate([filters, -filters], axis=1)  # (12, 24)
    kernel = filters.reshape(PATCH, PATCH, 3, CHANNELS)
    bias = -mean @ filters
    return kernel.astype(np.float32), bias.astype(np.float32)


def init_whitening(model: keras.Model, images: np.ndarray) -> bool:
    """Fill the model's whitening layer from the training images; False if it has none."""
    layer = _find_layer(model, WHITEN_LAYER)
    if layer is None:
        return False
    kernel, bias = whitening_weights(images)
    layer.set_weights([kernel, bias])
    layer.trainable = False
    return True


def _patches(images: np.ndarray) -> np.ndarray:
    """Every PATCH x PATCH patch, flattened in Conv2D kernel order (row, column, channel)."""
    windows = np.lib.stride_tricks.sliding_window_view(images, (PATCH, PATCH), axis=(1, 2))
    # windows: (N, H-1, W-1, 3, PATCH, PATCH) -> (..., PATCH, PATCH, 3)
    windows = np.moveaxis(windows, 3, -1)
    return windows.reshape(-1, PATCH * PATCH * 3)


def _find_layer(model: keras.Model, name: str) -> keras.layers.Layer | None:
    for layer in model.layers:
        if layer.name == name:
            return layer
    return None
