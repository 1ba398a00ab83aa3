"""Grad-CAM: layer choice for flat and nested models, heatmap range, and that it finds a pattern
planted by construction (a toy model whose classes are a red and a green detector)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cifarkit import gradcam
from cifarkit.config import ModelConfig, RunConfig
from cifarkit.models.builder import build_model

SIDE = 16
HALF = SIDE // 2


def _detector_model(nested: bool = False) -> keras.Model:
    """Class 0 = "red is present", class 1 = "green is present", wherever it is.

    A 1x1 conv with hand-set weights makes channel 0 fire on red pixels and channel 1 on green
    ones; a random horizontal flip would move the heatmap if it ran at inference.
    """
    inputs = keras.Input((SIDE, SIDE, 3))
    x = keras.layers.RandomFlip("horizontal", seed=1, name="flip")(inputs)
    x = keras.layers.Rescaling(1 / 255, name="scale")(x)
    detect = keras.layers.Conv2D(2, 1, activation="relu", name="detect")
    if nested:
        inner_in = keras.Input((SIDE, SIDE, 3))
        x = keras.Model(inner_in, detect(inner_in), name="backbone")(x)
    else:
        x = detect(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    head = keras.layers.Dense(2, activation="softmax", name="predictions")
    model = keras.Model(inputs, head(x), name="detector")
    detect.set_weights([np.array([[[[1, -1], [-1, 1], [-1, -1]]]], dtype="float32"),
                        np.zeros(2, dtype="float32")])
    head.set_weights([np.eye(2, dtype="float32") * 40, np.zeros(2, dtype="float32")])
    return model


def _planted_image() -> np.ndarray:
    """Black, a large red square in the top-right quadrant, a small green one bottom-left."""
    image = np.zeros((SIDE, SIDE, 3), dtype=np.uint8)
    image[1:7, SIDE - 7:SIDE - 1, 0] = 255
    image[HALF + 2:HALF + 5, 2:5, 1] = 255
    return image


def _quadrant_share(heatmap: np.ndarray) -> dict[str, float]:
    heat = gradcam.resize_heatmap(heatmap, (SIDE, SIDE)).astype(np.float64)
    total = heat.sum()
    return {"top_right": heat[:HALF, HALF:].sum() / total,
            "top_left": heat[:HALF, :HALF].sum() / total,
            "bottom_left": heat[HALF:, :HALF].sum() / total}


@pytest.fixture(scope="module")
def mobilenet() -> keras.Model:
    config = RunConfig(model=ModelConfig(architecture="MobileNet", weights="none", input_size=32))
    return build_model(config, num_classes=3)


def test_predicted_class_heatmap_sits_on_the_planted_square() -> None:
    model = _detector_model()
    result = gradcam.gradcam(model, _planted_image())
    assert result.class_index == 0  # the larger red square wins
    assert result.layer_name == "detect"
    assert _quadrant_share(result.heatmap)["top_right"] > 0.9


def test_a_picked_class_moves_the_heatmap_to_its_pattern() -> None:
    result = gradcam.gradcam(_detector_model(), _planted_image(), class_index=1)
    assert result.class_index == 1
    assert result.probability < 0.5
    assert _quadrant_share(result.heatmap)["bottom_left"] > 0.9


def test_augmentation_stays_off_so_repeated_calls_agree() -> None:
    """A flip in training mode would put the heatmap top-left on about half of the calls."""
    model = _detector_model()
    first = gradcam.gradcam(model, _planted_image()).heatmap
    for _ in range(5):
        np.testing.assert_array_equal(gradcam.gradcam(model, _planted_image()).heatmap, first)


def test_nested_sub_model_gives_the_same_heatmap_as_the_flat_model() -> None:
    nested = _detector_model(nested=True)
    result = gradcam.gradcam(nested, _planted_image())
    assert result.layer_name == "backbone/detect"
    flat = gradcam.gradcam(_detector_model(), _planted_image())
    np.testing.assert_allclose(result.heatmap, flat.heatmap, atol=1e-6)
    assert result.probability == pytest.approx(flat.probability, abs=1e-6)


def test_heatmap_shape_and_range_for_a_scratch_model() -> None:
    keras.utils.set_random_seed(0)
    model = build_model(RunConfig(model=ModelConfig(architecture="simple_cnn")), num_classes=10)
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    result = gradcam.gradcam(model, image)
    assert result.layer_name == "conv3"  # last conv; the pooling head follows it
    assert result.heatmap.shape == (4, 4) and result.heatmap.dtype == np.float32
    assert result.heatmap.min() >= 0.0 and result.heatmap.max() == pytest.approx(1.0)
    probs = model.predict(image[None].astype("float32"), verbose=0)[0]
    assert result.class_index == int(probs.argmax())
    assert result.probability == pytest.approx(float(probs.max()), abs=1e-5)


def test_residual_scratch_model_picks_its_final_add() -> None:
    model = build_model(RunConfig(model=ModelConfig(architecture="resnet_fast")), num_classes=10)
    assert gradcam.default_layer_name(model) == "stage3_res_add"
    assert "stem_conv" in gradcam.conv_layer_names(model)
    assert "preprocess" not in gradcam.conv_layer_names(model)  # pixels, not features


def test_transfer_backbone_is_searched_and_a_1x1_map_is_skipped(mobilenet: keras.Model) -> None:
    names = gradcam.conv_layer_names(mobilenet)
    assert names[-1] == "backbone/conv_pw_13_relu"  # 1x1 at 32 pixels: cannot localise
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    result = gradcam.gradcam(mobilenet, image)
    assert result.layer_name == "backbone/conv_pw_11_relu"
    assert result.heatmap.shape == (2, 2)
    assert 0.0 <= result.heatmap.min() <= result.heatmap.max() <= 1.0
    probs = mobilenet.predict(image[None].astype("float32"), verbose=0)[0]
    assert result.class_index == int(probs.argmax())
    assert result.probability == pytest.approx(float(probs.max()), abs=1e-5)


def test_layer_override_by_qualified_or_plain_name(mobilenet: keras.Model) -> None:
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    plain = gradcam.gradcam(mobilenet, image, layer_name="conv_pw_5_relu")
    qualified = gradcam.gradcam(mobilenet, image, layer_name="backbone/conv_pw_5_relu")
    assert plain.layer_name == qualified.layer_name == "backbone/conv_pw_5_relu"
    assert plain.heatmap.shape == (4, 4)
    np.testing.assert_allclose(plain.heatmap, qualified.heatmap, atol=1e-6)


def test_unknown_or_unusable_layer_is_refused_with_the_choices() -> None:
    model = _detector_model()
    with pytest.raises(ValueError, match=r"'nope' is not a usable layer.*choose one of: detect"):
        gradcam.gradcam(model, _planted_image(), layer_name="nope")
    with pytest.raises(ValueError, match="'pool' is not a usable layer"):
        gradcam.gradcam(model, _planted_image(), layer_name="pool")  # 2-D output
    with pytest.raises(ValueError, match="class_index must be from 0 to 1"):
        gradcam.gradcam(model, _planted_image(), class_index=2)


def test_model_without_convolution_is_refused() -> None:
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(
        keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="no convolutional layer"):
        gradcam.gradcam(model, np.zeros((8, 8, 3), dtype=np.uint8))


def test_sequential_model_works_and_other_image_sizes_are_resized() -> None:
    model = keras.Sequential([keras.Input((SIDE, SIDE, 3)), *_detector_model().layers[1:]])
    big = np.kron(_planted_image(), np.ones((3, 3, 1), dtype=np.uint8))  # 48x48, same layout
    result = gradcam.gradcam(model, big)
    assert result.layer_name == "detect" and result.heatmap.shape == (SIDE, SIDE)
    assert _quadrant_share(result.heatmap)["top_right"] > 0.9


def test_overlay_colours_hot_cells_red_and_cold_cells_blue() -> None:
    image = np.full((32, 32, 3), 128, dtype=np.uint8)
    heatmap = np.array([[1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    coloured = gradcam.overlay(image, heatmap, alpha=1.0)
    assert coloured.shape == (32, 32, 3) and coloured.dtype == np.uint8
    red, green, blue = coloured[0, 0].astype(int)
    assert red > 100 and green == 0 and blue == 0
    red, green, blue = coloured[-1, -1].astype(int)
    assert blue > 100 and red == 0
    np.testing.assert_array_equal(gradcam.overlay(image, heatmap, alpha=0.0), image)
    with pytest.raises(ValueError, match="alpha"):
        gradcam.overlay(image, heatmap, alpha=1.5)


def _pooled_detector() -> keras.Model:
    """The detector on a half-size grid (pooling first): an ensemble member with coarser maps."""
    inputs = keras.Input((SIDE, SIDE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    detect = keras.layers.Conv2D(2, 1, activation="relu", name="detect")
    x = keras.layers.GlobalAveragePooling2D()(detect(x))
    head = keras.layers.Dense(2, activation="softmax")
    model = keras.Model(inputs, head(x), name="pooled")
    detect.set_weights([np.array([[[[1, -1], [-1, 1], [-1, -1]]]], dtype="float32"),
                        np.zeros(2, dtype="float32")])
    head.set_weights([np.eye(2, dtype="float32") * 5, np.zeros(2, dtype="float32")])
    return model


def test_ensemble_map_is_the_mean_of_its_members_maps() -> None:
    image, members = _planted_image(), [_detector_model(), _pooled_detector()]
    singles = [gradcam.gradcam(model, image, 1) for model in members]
    assert singles[0].heatmap.shape == (SIDE, SIDE) and singles[1].heatmap.shape == (HALF, HALF)
    assert [cam.heatmap.max() for cam in singles] == pytest.approx([1.0, 1.0])  # both see green
    combined = gradcam.ensemble_gradcam(members, image, 1)
    expected = (singles[0].heatmap
                + gradcam.resize_heatmap(singles[1].heatmap, (SIDE, SIDE))) / 2
    np.testing.assert_allclose(combined.heatmap, expected, atol=1e-6)
    assert combined.class_index == 1 and combined.layer_name == "detect + detect"
    assert combined.probability == pytest.approx(np.mean([cam.probability for cam in singles]))
    same = gradcam.ensemble_gradcam([members[0], members[0]], image, 0)
    np.testing.assert_allclose(same.heatmap, gradcam.gradcam(members[0], image, 0).heatmap,
                               atol=1e-6)  # two equal members: that member's own map


def test_average_heatmaps_keeps_a_one_member_spot_half_as_hot() -> None:
    hot = np.zeros((2, 2), dtype=np.float32)
    hot[0, 0] = 1.0
    np.testing.assert_allclose(gradcam.average_heatmaps([hot, np.zeros((2, 2))]), hot / 2)
    with pytest.raises(ValueError, match="one layer per model: got 1 models and 2 layers"):
        gradcam.ensemble_gradcam([_detector_model()], _planted_image(), 0, ["detect", "detect"])
    with pytest.raises(ValueError, match="no heatmaps"):
        gradcam.average_heatmaps([])
