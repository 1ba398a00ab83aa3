"""Augmentation layers: the right layers per toggle, identity when off or at inference."""

from __future__ import annotations

import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from cifarkit.augment import RandomShift, augmentation_layers, preview
from cifarkit.config import AugmentConfig


def augment_config(**fields: object) -> AugmentConfig:
    """Augmentation with the default recipe's shift off: each test names what it turns on."""
    return AugmentConfig(**{"shift": 0.0, **fields})  # type: ignore[arg-type]

ALL_OFF = augment_config(horizontal_flip=False, vertical_flip=False)


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
    layers = augmentation_layers(augment_config(horizontal_flip=horizontal, vertical_flip=vertical))
    assert [layer.name for layer in layers.layers] == ["flip"]
    assert layers.layers[0].mode == mode


def test_horizontal_flip_mirrors_or_keeps_each_image(images: np.ndarray) -> None:
    out = preview(images, augment_config(horizontal_flip=True), variants=4, seed=3)
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
    aug = augment_config(rotation=0.1, zoom=0.2, shift=0.1, contrast=0.5, brightness=0.5)
    out = preview(images, aug, variants=5)
    assert out.shape == (6, 5, 16, 16, 3)
    assert out.dtype == np.uint8
    assert not np.array_equal(out[:, 0], out[:, 1])  # variants differ


def test_preview_is_repeatable_per_seed(images: np.ndarray) -> None:
    aug = augment_config(rotation=0.2, shift=0.2)
    np.testing.assert_array_equal(preview(images, aug, seed=1), preview(images, aug, seed=1))
    assert not np.array_equal(preview(images, aug, seed=1), preview(images, aug, seed=2))


@pytest.mark.parametrize("toggle", ["rotation", "zoom", "shift", "contrast", "brightness"])
def test_each_toggle_adds_a_layer_that_changes_images(images: np.ndarray, toggle: str) -> None:
    aug = augment_config(horizontal_flip=False, **{toggle: 0.3})
    layers = augmentation_layers(aug, seed=0)
    assert [layer.name for layer in layers.layers] == [toggle]
    out = preview(images, aug, variants=2)
    changed = [not np.array_equal(out[i, v], images[i]) for i in range(6) for v in range(2)]
    assert sum(changed) >= 10


@pytest.mark.parametrize("toggle", ["rotation", "zoom", "shift", "contrast", "brightness"])
def test_inference_leaves_images_unchanged(images: np.ndarray, toggle: str) -> None:
    layers = augmentation_layers(augment_config(vertical_flip=True, **{toggle: 0.3}))
    np.testing.assert_allclose(_run(layers, images, training=False), images, atol=1e-4)


def test_strengths_come_from_the_config() -> None:
    aug = augment_config(horizontal_flip=False, rotation=0.1, zoom=0.2, shift=0.15, contrast=0.3,
                        brightness=0.25)
    layers = {layer.name: layer for layer in augmentation_layers(aug).layers}
    assert list(layers) == ["rotation", "zoom", "shift", "contrast", "brightness"]
    assert layers["rotation"].factor == (-0.1, 0.1)
    assert layers["zoom"].height_factor == 0.2
    assert isinstance(layers["shift"], RandomShift) and layers["shift"].factor == 0.15
    assert not layers["shift"].horizontal_flip
    assert layers["contrast"].factor == (0.3, 0.3)
    assert tuple(layers["contrast"].value_range) == (0, 255)
    assert tuple(layers["brightness"].value_range) == (0, 255)


def test_contrast_both_lowers_and_raises(images: np.ndarray) -> None:
    """A bare float would only ever raise contrast in Keras 3.15; the config means ±."""
    out = preview(images, augment_config(horizontal_flip=False, contrast=0.5), variants=4)
    spread_in = images.reshape(6, 1, -1).std(axis=-1)
    spread_out = out.reshape(6, 4, -1).std(axis=-1)
    assert (spread_out < spread_in - 1).any() and (spread_out > spread_in + 1).any()


def test_brightness_stays_in_pixel_range(images: np.ndarray) -> None:
    layers = augmentation_layers(augment_config(horizontal_flip=False, brightness=1.0,
                                                contrast=1.0))
    out = _run(layers, images, training=True)
    assert out.min() >= 0 and out.max() <= 255


@pytest.mark.parametrize(("shape", "variants"), [((4, 16, 16), 2), ((4, 16, 16, 1), 2),
                                                 ((4, 16, 16, 3), 0)])
def test_preview_rejects_bad_arguments(shape: tuple, variants: int) -> None:
    with pytest.raises(ValueError, match=r"images|variants"):
        preview(np.zeros(shape, np.uint8), augment_config(), variants=variants)


# ---------------------------------------------------------------------------------------------
# RandomShift: whole-pixel shifts as one gather, the horizontal flip folded in

TWO_PIXELS = 2 / 16  # of a 16-pixel side


def _moves(out: np.ndarray, images: np.ndarray, pixels: int) -> list[tuple[int, int, bool]]:
    """(top, left, mirrored) of each output image within its reflect-padded source.

    Fails when an output is no such crop: the content must be exactly the shifted image.
    """
    padded = np.pad(images, [(0, 0), (pixels, pixels), (pixels, pixels), (0, 0)],
                    mode="symmetric")
    side = images.shape[1]
    moves = []
    for i in range(len(images)):
        found = [(top, left, mirror)
                 for top in range(2 * pixels + 1) for left in range(2 * pixels + 1)
                 for mirror in (False, True)
                 if np.array_equal(out[i], _crop(padded[i], top, left, side, mirror))]
        assert len(found) == 1, f"image {i} is not one reflected-and-shifted crop"
        moves.append(found[0])
    return moves


def _crop(padded: np.ndarray, top: int, left: int, side: int, mirror: bool) -> np.ndarray:
    source = padded[:, ::-1] if mirror else padded
    return source[top:top + side, left:left + side]


def test_flip_with_whole_pixel_shift_is_one_layer() -> None:
    layers = augmentation_layers(augment_config(horizontal_flip=True, shift=0.0625), seed=4)
    assert [layer.name for layer in layers.layers] == ["flip_shift"]
    layer = layers.layers[0]
    assert isinstance(layer, RandomShift) and layer.horizontal_flip and layer.seed == 7


@pytest.mark.parametrize("flip", [False, True])
def test_whole_pixel_shift_is_a_reflected_crop_per_image(flip: bool) -> None:
    images = np.random.default_rng(1).integers(0, 256, (24, 16, 16, 3), dtype=np.uint8)
    layer = RandomShift(TWO_PIXELS, horizontal_flip=flip, seed=5)
    out = keras.ops.convert_to_numpy(layer(images.astype("float32"), training=True))
    assert out.shape == images.shape and out.dtype == np.float32
    moves = _moves(out, images, pixels=2)
    assert len({(top, left) for top, left, _ in moves}) >= 8  # each image its own shift
    assert {top for top, _, _ in moves} == set(range(5))  # the whole ±2 range is drawn
    assert {mirror for _, _, mirror in moves} == ({False, True} if flip else {False})


def test_shift_is_identity_at_inference(images: np.ndarray) -> None:
    layer = RandomShift(TWO_PIXELS, horizontal_flip=True, seed=0)
    batch = images.astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(batch, training=False)), batch)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(batch)), batch)


def test_shift_is_repeatable_per_seed(images: np.ndarray) -> None:
    def draw(seed: int) -> np.ndarray:
        layer = RandomShift(TWO_PIXELS, horizontal_flip=True, seed=seed)
        return keras.ops.convert_to_numpy(layer(images.astype("float32"), training=True))

    np.testing.assert_array_equal(draw(3), draw(3))
    assert not np.array_equal(draw(3), draw(4))


def test_fractional_shift_translates_smoothly(images: np.ndarray) -> None:
    """0.1 of 16 px is 1.6 px: no whole-pixel crop, a bilinear move as RandomTranslation's."""
    layer = RandomShift(0.1, seed=0)
    out = keras.ops.convert_to_numpy(layer(images.astype("float32"), training=True))
    assert out.shape == images.shape
    assert out.min() >= 0 and out.max() <= 255
    assert not np.array_equal(out, images)
    assert not np.allclose(out, np.rint(out))  # interpolated, so some pixels are in between


def test_shift_under_bfloat16_keeps_pixels_exact() -> None:
    images = np.random.default_rng(2).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    layer = RandomShift(TWO_PIXELS, horizontal_flip=True, seed=1, dtype="mixed_bfloat16")
    out = keras.ops.convert_to_numpy(
        keras.ops.cast(layer(images.astype("float32"), training=True), "float32"))
    _moves(out, images, pixels=2)  # integers 0..255 are exact in bfloat16


@pytest.mark.parametrize("factor", [-0.1, 1.0, True, "0.1"])
def test_shift_rejects_bad_factors(factor: object) -> None:
    with pytest.raises(ValueError, match="factor"):
        RandomShift(factor)


def test_model_with_shift_saves_and_loads(images: np.ndarray, tmp_path: Path) -> None:
    inputs = keras.Input((16, 16, 3))
    x = augmentation_layers(augment_config(horizontal_flip=True, shift=TWO_PIXELS), seed=2)(inputs)
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    shift = loaded.get_layer("augmentation").get_layer("flip_shift")
    assert isinstance(shift, RandomShift)
    assert (shift.factor, shift.horizontal_flip, shift.seed) == (TWO_PIXELS, True, 5)
    batch = images.astype("float32")
    np.testing.assert_allclose(loaded.predict(batch, verbose=0), model.predict(batch, verbose=0),
                               rtol=1e-5, atol=1e-5)
    out = keras.ops.convert_to_numpy(shift(batch, training=True))
    _moves(out, images, pixels=2)


def test_preview_shows_the_fused_flip_and_shift(images: np.ndarray) -> None:
    out = preview(images, augment_config(horizontal_flip=True, shift=TWO_PIXELS), variants=3)
    assert out.shape == (6, 3, 16, 16, 3) and out.dtype == np.uint8
    for variant in range(3):
        _moves(out[:, variant].astype("float32"), images, pixels=2)
    assert not np.array_equal(out[:, 0], out[:, 1])


@pytest.mark.parametrize(("factor", "jit"), [(TWO_PIXELS, True), (0.1, False)])
def test_whole_pixel_shift_keeps_xla_on(images: np.ndarray, factor: float, jit: bool) -> None:
    """Keras drops jit_compile for the whole model when a layer cannot be XLA-compiled."""
    inputs = keras.Input((16, 16, 3))
    x = augmentation_layers(augment_config(horizontal_flip=True, shift=factor))(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Model doesn't support jit_compile=True"
        model.compile("sgd", "mse", jit_compile=True)
    assert model.jit_compile is jit
    loss = model.train_on_batch(images.astype("float32"), np.zeros((6, 2), "float32"))
    assert np.isfinite(loss)
