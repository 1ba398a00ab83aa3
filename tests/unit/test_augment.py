"""Augmentation layers: the right layers per toggle, identity when off or at inference."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cifarkit.augment import augmentation_layers, preview
from cifarkit.config import AugmentConfig

ALL_OFF = AugmentConfig(horizontal_flip=False, vertical_flip=False)


@pytest.fixture
def images() -> np.ndarray:
    """Random, non-symmetric uint8 images, so any transformation shows."""
    return np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)


def _run(layers: keras.Sequential, images: np.ndarray, training: bool) -> np.ndarray:
    return keras.ops.convert_to_numpy(layers(images.astype("float32"), training=training))


def test_all_off_is_identity(images: np.ndarray) -> None:
    layers = augmentation_layers(ALL_OFF)
    assert layers.name == "augmentation"
    assert [type(layer).__name__ for layer in layers.layers] == ["Identity"]
    np.testing.assert_array_equal(_run(layers, images, training=True), images)
    out = preview(images, ALL_OFF, variants=3)
    np.testing.assert_array_equal(out, np.repeat(images[:, None], 3, axis=1))


@pytest.mark.parametrize(("horizontal", "vertical", "mode"), [
    (True, False, "horizontal"), (False, True, "vertical"), (True, True, "horizontal_and_vertical"),
])
def test_flip_modes(horizontal: bool, vertical: bool, mode: str) -> None:
    layers = augmentation_layers(AugmentConfig(horizontal_flip=horizontal, vertical_flip=vertical))
    assert [layer.name for layer in layers.layers] == ["flip"]
    assert layers.layers[0].mode == mode


def test_horizontal_flip_mirrors_or_keeps_each_image(images: np.ndarray) -> None:
    out = preview(images, AugmentConfig(horizontal_flip=True), variants=4, seed=3)
    mirrored = images[:, :, ::-1]
    kinds = set()
    for i in range(len(images)):
        for v in range(4):
            same = np.array_equal(out[i, v], images[i])
            mirror = np.array_equal(out[i, v], mirrored[i])
            assert same or mirror
            kinds.add(mirror)
    assert kinds == {True, False}  # both outcomes occur over 24 draws


def test_preview_shape_dtype_and_range(images: np.ndarray) -> None:
    aug = AugmentConfig(rotation=0.1, zoom=0.2, shift=0.1, contrast=0.5, brightness=0.5)
    out = preview(images, aug, variants=5)
    assert out.shape == (6, 5, 16, 16, 3)
    assert out.dtype == np.uint8
    assert not np.array_equal(out[:, 0], out[:, 1])  # variants differ


def test_preview_is_repeatable_per_seed(images: np.ndarray) -> None:
    aug = AugmentConfig(rotation=0.2, shift=0.2)
    np.testing.assert_array_equal(preview(images, aug, seed=1), preview(images, aug, seed=1))
    assert not np.array_equal(preview(images, aug, seed=1), preview(images, aug, seed=2))


@pytest.mark.parametrize("toggle", ["rotation", "zoom", "shift", "contrast", "brightness"])
def test_each_toggle_adds_a_layer_that_changes_images(images: np.ndarray, toggle: str) -> None:
    aug = AugmentConfig(horizontal_flip=False, **{toggle: 0.3})
    layers = augmentation_layers(aug, seed=0)
    assert [layer.name for layer in layers.layers] == [toggle]
    out = preview(images, aug, variants=2)
    changed = [not np.array_equal(out[i, v], images[i]) for i in range(6) for v in range(2)]
    assert sum(changed) >= 10


@pytest.mark.parametrize("toggle", ["rotation", "zoom", "shift", "contrast", "brightness"])
def test_inference_leaves_images_unchanged(images: np.ndarray, toggle: str) -> None:
    layers = augmentation_layers(AugmentConfig(vertical_flip=True, **{toggle: 0.3}))
    np.testing.assert_allclose(_run(layers, images, training=False), images, atol=1e-4)


def test_strengths_come_from_the_config() -> None:
    aug = AugmentConfig(horizontal_flip=False, rotation=0.1, zoom=0.2, shift=0.15, contrast=0.3,
                        brightness=0.25)
    layers = {layer.name: layer for layer in augmentation_layers(aug).layers}
    assert list(layers) == ["rotation", "zoom", "shift", "contrast", "brightness"]
    assert layers["rotation"].factor == (-0.1, 0.1)
    assert layers["zoom"].height_factor == 0.2
    assert layers["shift"].height_factor == 0.15 and layers["shift"].width_factor == 0.15
    assert layers["contrast"].factor == (0.3, 0.3)
    assert tuple(layers["contrast"].value_range) == (0, 255)
    assert tuple(layers["brightness"].value_range) == (0, 255)


def test_contrast_both_lowers_and_raises(images: np.ndarray) -> None:
    """A bare float would only ever raise contrast in Keras 3.15; the config means ±."""
    out = preview(images, AugmentConfig(horizontal_flip=False, contrast=0.5), variants=4)
    spread_in = images.reshape(6, 1, -1).std(axis=-1)
    spread_out = out.reshape(6, 4, -1).std(axis=-1)
    assert (spread_out < spread_in - 1).any() and (spread_out > spread_in + 1).any()


def test_brightness_stays_in_pixel_range(images: np.ndarray) -> None:
    layers = augmentation_layers(AugmentConfig(horizontal_flip=False, brightness=1.0, contrast=1.0))
    out = _run(layers, images, training=True)
    assert out.min() >= 0 and out.max() <= 255


@pytest.mark.parametrize(("shape", "variants"), [((4, 16, 16), 2), ((4, 16, 16, 1), 2),
                                                 ((4, 16, 16, 3), 0)])
def test_preview_rejects_bad_arguments(shape: tuple, variants: int) -> None:
    with pytest.raises(ValueError, match=r"images|variants"):
        preview(np.zeros(shape, np.uint8), AugmentConfig(), variants=variants)
