"""Random augmentation as Keras preprocessing layers.

The layers sit inside the model, so augmentation runs wherever the model runs (GPU included) and
switches itself off at inference; `preview` shows the Data page exactly what training will see.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from cifarkit.config import AugmentConfig

PIXEL_RANGE = (0, 255)  # models take raw pixels as floats; scaling happens after augmentation
WHOLE_PIXEL_TOLERANCE = 1e-6  # a shift this close to a whole number of pixels is taken as whole

_FLIP_MODES = {
    (True, False): "horizontal",
    (False, True): "vertical",
    (True, True): "horizontal_and_vertical",
}


def augmentation_layers(aug: AugmentConfig, seed: int = 0) -> keras.Sequential:
    """One random layer per enabled toggle; a lone Identity layer when nothing is on.

    An empty Sequential cannot be called in Keras 3, hence the Identity. Each layer gets its own
    seed so that, e.g., flips and shifts are not drawn from the same stream. A horizontal flip
    with a shift is one RandomShift layer (about 4x faster than RandomFlip + RandomTranslation).
    """
    layers: list[keras.layers.Layer] = []
    flip_mode = _FLIP_MODES.get((aug.horizontal_flip, aug.vertical_flip))
    fuse_flip = flip_mode == "horizontal" and aug.shift > 0  # one gather mirrors and shifts
    if flip_mode and not fuse_flip:
        layers.append(keras.layers.RandomFlip(flip_mode, seed=seed, name="flip"))
    if aug.rotation > 0:
        layers.append(keras.layers.RandomRotation(aug.rotation, seed=seed + 1, name="rotation"))
    if aug.zoom > 0:
        layers.append(keras.layers.RandomZoom(aug.zoom, seed=seed + 2, name="zoom"))
    if aug.shift > 0:  # after rotation and zoom; flips commute with them (angles are ±)
        layers.append(RandomShift(aug.shift, horizontal_flip=fuse_flip, seed=seed + 3,
                                  name="flip_shift" if fuse_flip else "shift"))
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


@keras.saving.register_keras_serializable(package="cifarkit")
class RandomShift(keras.layers.Layer):
    """Move each image by its own random offset of up to `factor` of its side, filled by reflection
    (d c b a | a b c d | d c b a, as RandomTranslation fills); optionally mirror half of them.

    When factor × side is a whole number of pixels (±2 px at 32 is 0.0625), a shift is a crop of
    the reflect-padded batch: one gather, the mirror folded into the same indices, no
    interpolation. Keras' RandomFlip + RandomTranslation take about 4x as long on a 2-core CPU
    (benchmarks/bench_pipeline.py). Otherwise it translates by a bilinear affine transform, as
    RandomTranslation does. Only keras.ops, so it runs on any backend; identity at inference.
    """

    def __init__(self, factor: float, horizontal_flip: bool = False, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 <= factor < 1:
            raise ValueError(f"factor: the shift must be from 0 to below 1 of the side, got "
                             f"{factor!r}")
        self.factor = float(factor)
        self.horizontal_flip = bool(horizontal_flip)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape: tuple) -> None:
        # XLA can compile the gather, not TensorFlow's ImageProjectiveTransform. Keras turns
        # jit_compile off for a whole model when one layer says no (RandomTranslation always
        # does, on every backend), so a whole-pixel shift keeps XLA (and JAX's jit) on.
        self.supports_jit = None not in self._pixels(input_shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training:
            return inputs
        pixels = self._pixels(inputs.shape)
        if None in pixels:
            return self._translate(self._mirror(inputs))
        return self._crop(inputs, *pixels)

    def _pixels(self, shape: tuple) -> tuple[int | None, int | None]:
        """The (vertical, horizontal) shift in whole pixels, None where it is fractional."""
        return _whole_pixels(self.factor, shape[1]), _whole_pixels(self.factor, shape[2])

    def _crop(self, images: Any, pad_h: int, pad_w: int) -> Any:
        """Crop of the padded batch at per-image offsets, mirrored where drawn, as one gather."""
        _, height, width, channels = images.shape
        count = ops.shape(images)[0]
        padded = ops.pad(images, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]],
                         mode="symmetric")
        padded_h, padded_w = height + 2 * pad_h, width + 2 * pad_w
        top = keras.random.randint((count, 1), 0, 2 * pad_h + 1, seed=self.seed_generator)
        left = keras.random.randint((count, 1), 0, 2 * pad_w + 1, seed=self.seed_generator)
        rows = top + ops.arange(height, dtype="int32")[None]  # (N, H) rows of the padded image
        cols = left + ops.arange(width, dtype="int32")[None]  # (N, W)
        if self.horizontal_flip:  # reflection padding is symmetric, so mirror = reversed columns
            flip = keras.random.randint((count, 1), 0, 2, seed=self.seed_generator)
            cols = ops.where(flip == 1, padded_w - 1 - cols, cols)
        first = ops.arange(count, dtype="int32")[:, None, None] * (padded_h * padded_w)
        index = first + rows[:, :, None] * padded_w + cols[:, None, :]  # (N, H, W) flat pixels
        pixels = ops.take(ops.reshape(padded, (-1, channels)), ops.reshape(index, (-1,)), axis=0)
        return ops.reshape(pixels, (-1, height, width, channels))

    def _mirror(self, images: Any) -> Any:
        if not self.horizontal_flip:
            return images
        flip = keras.random.randint((ops.shape(images)[0], 1, 1, 1), 0, 2,
                                    seed=self.seed_generator)
        return ops.where(flip == 1, ops.flip(images, axis=2), images)

    def _translate(self, images: Any) -> Any:
        """A fractional shift: bilinear, reflection-filled, as keras.layers.RandomTranslation."""
        shape = ops.shape(images)
        count = shape[0]
        sides = ops.cast(ops.stack([shape[2], shape[1]]), "float32")  # (width, height)
        moves = keras.random.uniform((count, 2), -self.factor, self.factor,
                                     seed=self.seed_generator) * sides  # (dx, dy) pixels
        ones, zeros = ops.ones((count, 1)), ops.zeros((count, 1))
        transform = ops.concatenate([ones, zeros, -moves[:, :1], zeros, ones, -moves[:, 1:],
                                     zeros, zeros], axis=1)
        moved = ops.image.affine_transform(ops.cast(images, "float32"), transform,
                                           interpolation="bilinear", fill_mode="reflect")
        return ops.cast(moved, images.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor,
                "horizontal_flip": self.horizontal_flip, "seed": self.seed}


def _whole_pixels(factor: float, side: int | None) -> int | None:
    """factor × side as a whole number of pixels, or None when it is not one (or side unknown)."""
    if side is None:
        return None
    pixels = factor * side
    return round(pixels) if abs(pixels - round(pixels)) < WHOLE_PIXEL_TOLERANCE else None


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
