"""Random augmentation as Keras preprocessing layers.

The layers sit inside the model, so augmentation runs wherever the model runs (GPU included) and
switches itself off at inference; `preview` shows the Data page exactly what training will see.
"""

from __future__ import annotations

import keras
import numpy as np

from cifarkit.config import AugmentConfig

PIXEL_RANGE = (0, 255)  # models take raw pixels as floats; scaling happens after augmentation

_FLIP_MODES = {
    (True, False): "horizontal",
    (False, True): "vertical",
    (True, True): "horizontal_and_vertical",
}


def augmentation_layers(aug: AugmentConfig, seed: int = 0) -> keras.Sequential:
    """One random layer per enabled toggle; a lone Identity layer when nothing is on.

    An empty Sequential cannot be called in Keras 3, hence the Identity. Each layer gets its own
    seed so that, e.g., flips and shifts are not drawn from the same stream.
    """
    layers: list[keras.layers.Layer] = []
    flip_mode = _FLIP_MODES.get((aug.horizontal_flip, aug.vertical_flip))
    if flip_mode:
        layers.append(keras.layers.RandomFlip(flip_mode, seed=seed, name="flip"))
    if aug.rotation > 0:
        layers.append(keras.layers.RandomRotation(aug.rotation, seed=seed + 1, name="rotation"))
    if aug.zoom > 0:
        layers.append(keras.layers.RandomZoom(aug.zoom, seed=seed + 2, name="zoom"))
    if aug.shift > 0:
        layers.append(keras.layers.RandomTranslation(aug.shift, aug.shift, seed=seed + 3,
                                                     name="shift"))
    if aug.contrast > 0:
        # A single float gives factors in [1, 1 + c] in Keras 3.15 (contrast only ever rises);
        # the (c, c) pair gives the documented [1 - c, 1 + c].
        layers.append(keras.layers.RandomContrast((aug.contrast, aug.contrast),
                                                  value_range=PIXEL_RANGE, seed=seed + 4,
                                                  name="contrast"))
    if aug.brightness > 0:
        layers.append(keras.layers.RandomBrightness(aug.brightness, value_range=PIXEL_RANGE,
                                                    seed=seed + 5, name="brightness"))
    if not layers:
        layers.append(keras.layers.Identity(name="no_augmentation"))
    return keras.Sequential(layers, name="augmentation")


def preview(images: np.ndarray, aug: AugmentConfig, variants: int = 4,
            seed: int = 0) -> np.ndarray:
    """`variants` random augmentations of each image, uint8 (N, variants, H, W, 3).

    Fresh layers with a fixed seed make the preview repeatable for the same settings.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must have shape (N, H, W, 3), got {images.shape}")
    if variants < 1:
        raise ValueError(f"variants must be at least 1, got {variants}")
    layers = augmentation_layers(aug, seed)
    batch = images.astype("float32")
    outputs = [keras.ops.convert_to_numpy(layers(batch, training=True)) for _ in range(variants)]
    return np.clip(np.rint(np.stack(outputs, axis=1)), 0, 255).astype(np.uint8)
