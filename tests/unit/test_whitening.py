"""Patch whitening: the frozen first conv decorrelates 2x2 patches of the training images."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from cifarkit import whitening
from cifarkit.config import ModelConfig, RunConfig
from cifarkit.models.builder import build_model


def correlated_images(count: int = 200, seed: int = 0) -> np.ndarray:
    """Smooth, colour-correlated images: neighbouring pixels and channels move together."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(count, 8, 8, 1))
    smooth = np.kron(base, np.ones((1, 4, 4, 1)))  # 32x32, constant 4x4 tiles
    colour = smooth * np.array([1.0, 0.8, 0.6]) + rng.normal(scale=0.1, size=(count, 32, 32, 3))
    return np.clip(128 + 40 * colour, 0, 255).astype(np.uint8)


def whitened(images: np.ndarray) -> np.ndarray:
    """The whitening conv applied to images scaled to 0..1, as the model applies it."""
    kernel, bias = whitening.whitening_weights(images)
    conv = whitening.whitening_conv()
    conv.build((None, *images.shape[1:]))
    conv.set_weights([kernel, bias])
    out = keras.ops.convert_to_numpy(conv(images.astype("float32") / 255.0))
    return out.reshape(-1, whitening.CHANNELS)


def test_outputs_have_zero_mean_and_identity_covariance() -> None:
    images = correlated_images()
    outputs = whitened(images)
    half = outputs[:, : whitening.CHANNELS // 2]  # the other half is its negative
    np.testing.assert_allclose(half.mean(axis=0), 0.0, atol=1e-3)
    covariance = np.cov(half, rowvar=False)
    # unit variance except where the epsilon damps near-zero directions; no correlations
    assert np.abs(covariance - np.diag(np.diag(covariance))).max() < 1e-3
    assert np.diag(covariance).max() == pytest.approx(1.0, abs=0.01)
    np.testing.assert_allclose(outputs[:, whitening.CHANNELS // 2:], -half, atol=1e-5)


def test_raw_patches_are_strongly_correlated_before_whitening() -> None:
    """The case above is a real test: the unwhitened patch values are far from identity."""
    patches = whitening._patches(correlated_images().astype(np.float64) / 255.0)
    correlation = np.corrcoef(patches, rowvar=False)
    assert correlation[0, 1] > 0.9  # red and green of the same pixel
    assert correlation[0, 3] > 0.6  # red of two neighbouring pixels


def test_init_fills_the_frozen_layer_of_the_default_architecture(tmp_path: Path) -> None:
    images = correlated_images(50)
    config = RunConfig(model=ModelConfig(architecture="airbench_cpu"))
    model = build_model(config, num_classes=10)
    assert whitening.init_whitening(model, images)
    layer = model.get_layer(whitening.WHITEN_LAYER)
    kernel, bias = whitening.whitening_weights(images)
    np.testing.assert_allclose(layer.get_weights()[0], kernel)
    np.testing.assert_allclose(layer.get_weights()[1], bias)
    assert not layer.trainable and not layer.trainable_weights
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.get_layer(whitening.WHITEN_LAYER).get_weights()[0], kernel)


def test_a_model_without_the_layer_is_left_alone() -> None:
    model = build_model(RunConfig(model=ModelConfig(architecture="simple_cnn")), num_classes=3)
    before = [weight.copy() for weight in model.get_weights()]
    assert not whitening.init_whitening(model, correlated_images(10))
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("shape", [(10, 32, 32), (10, 32, 32, 1), (10, 1, 1, 3)])
def test_images_of_the_wrong_shape_are_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="images must have shape"):
        whitening.whitening_weights(np.zeros(shape, np.uint8))
