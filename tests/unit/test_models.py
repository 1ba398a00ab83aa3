"""Model building: every catalog architecture trains, fine-tuning freezes the right layers,
saved models load in safe mode, preprocessing matches Keras Applications."""

from __future__ import annotations

import math
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import pytest

from cifarkit.config import AugmentConfig, ModelConfig, RunConfig
from cifarkit.models import catalog
from cifarkit.models.builder import (
    BACKBONE,
    WeightsUnavailable,
    build_model,
    model_stats,
    unfreeze_model,
)
from cifarkit.models.layers import ImagePreprocess

NUM_CLASSES = 5
NO_AUGMENT = AugmentConfig(horizontal_flip=False)
# Builds and one training step of these take the longest on a 2-core CPU.
HEAVY = {"resnet50_style", "ResNet50", "ResNet50V2", "InceptionResNetV2", "EfficientNetB5",
         "EfficientNetB6", "EfficientNetB7", "EfficientNetV2M", "EfficientNetV2L", "ConvNeXtBase",
         "ConvNeXtLarge", "ConvNeXtXLarge"}
# The first (smallest) member of each family, whose config also goes through safe-mode loading.
FAMILY_FIRSTS = {"resnet_fast", "simple_cnn", "conv4_bn", "vgg_style", "resnet50_style", "VGG16",
                 "ResNet50V2", "MobileNetV2", "DenseNet121", "Xception", "InceptionV3",
                 "InceptionResNetV2", "EfficientNetB0", "EfficientNetV2B0", "ConvNeXtTiny"}


@pytest.fixture(autouse=True)
def _fresh_session() -> Iterator[None]:
    """Layer names and memory do not pile up from one model to the next."""
    keras.backend.clear_session()
    yield
    keras.backend.clear_session()


def _config(architecture: str, *, weights: str = "none", fraction: float = 1.0,
            augment: AugmentConfig = NO_AUGMENT, dropout: float = 0.2, dense_units: int = 0,
            pooling: str = "avg", input_size: int | None = None) -> RunConfig:
    info = catalog.model_info(architecture)
    model = ModelConfig(architecture=architecture, input_size=input_size or max(32, info.min_input),
                        weights=weights, trainable_fraction=fraction, pooling=pooling,
                        dropout=dropout, dense_units=dense_units)
    return RunConfig(model=model, augment=augment, seed=0)


def _batch(n: int = 2, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, size, size, 3)).astype("float32")
    y = keras.utils.to_categorical(np.arange(n) % NUM_CLASSES, NUM_CLASSES)
    return x, y


def _all_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _param_count(weights: list) -> int:
    return int(sum(math.prod(w.shape) for w in weights))


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.slow) if name in HEAVY else name
    for name in catalog.names()
])
def test_every_catalog_model_builds_and_trains_one_step(name: str) -> None:
    model = build_model(_config(name), NUM_CLASSES, image_size=32)
    info = catalog.model_info(name)
    assert model.input_shape == (None, 32, 32, 3)
    assert ("resize" in {layer.name for layer in model.layers}) == (info.min_input > 32)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in _all_layers(model))
    stats = model_stats(model)
    assert stats.total_params == model.count_params()
    assert stats.trainable_params == _param_count(model.trainable_weights) > 0
    if name in FAMILY_FIRSTS:  # their own layer classes must load without unsafe deserialisation
        rebuilt = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(model), safe_mode=True)
        assert rebuilt.count_params() == model.count_params()

    x, y = _batch()
    # Training mode: an untrained deep net's BatchNorm statistics can overflow at inference.
    probs = keras.ops.convert_to_numpy(model(x, training=True))
    assert probs.shape == (2, NUM_CLASSES) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # Eager: tracing the big backbones' train step costs far more than running it once; the step
    # still proves gradients reach the weights. Graph mode is covered by the small models below.
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="categorical_crossentropy",
                  run_eagerly=True)
    head_before = keras.ops.convert_to_numpy(model.get_layer("predictions").kernel)
    loss = model.train_on_batch(x, y)
    assert np.isfinite(float(np.asarray(loss).ravel()[0]))
    assert not np.array_equal(head_before,
                              keras.ops.convert_to_numpy(model.get_layer("predictions").kernel))


@pytest.mark.parametrize(("name", "low", "high"), [
    ("airbench_cpu", 1_100_000, 1_250_000), ("resnet_fast", 300_000, 600_000),
    ("simple_cnn", 50_000, 60_000),
    ("conv4_bn", 200_000, 260_000), ("vgg_style", 1_000_000, 1_300_000),
    ("resnet50_style", 23_000_000, 24_000_000),
])
def test_scratch_model_sizes(name: str, low: int, high: int) -> None:
    model = build_model(_config(name), 10)
    assert low <= model.count_params() <= high
    assert not model.non_trainable_weights or all(  # BatchNorm statistics, airbench's whitening
        "moving" in w.path or w.path.startswith("whiten/") for w in model.non_trainable_weights)


def test_small_model_trains_in_graph_mode_with_augmentation_and_dense_head() -> None:
    augment = AugmentConfig(horizontal_flip=True, vertical_flip=True, rotation=0.1, zoom=0.1,
                            shift=0.1, contrast=0.2, brightness=0.2)
    model = build_model(_config("resnet_fast", augment=augment, dense_units=32, dropout=0.3), 5)
    names = [layer.name for layer in model.layers]
    assert names[:3] == ["image", "augmentation", "preprocess"]
    assert names[-4:] == ["avg_pool", "head_dense", "head_dropout", "predictions"]
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x, y = _batch(8)
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert all(np.isfinite(history.history["loss"]))


@pytest.mark.parametrize(("pooling", "layer"), [("avg", "avg_pool"), ("max", "max_pool"),
                                                 ("flatten", "flatten")])
def test_head_pooling(pooling: str, layer: str) -> None:
    model = build_model(_config("simple_cnn", pooling=pooling, dropout=0.0), NUM_CLASSES)
    names = [each.name for each in model.layers]
    assert names[-2:] == [layer, "predictions"]
    features = 4 * 4 * 64 if pooling == "flatten" else 64
    assert model.get_layer("predictions").kernel.shape == (features, NUM_CLASSES)


def test_resizing_happens_inside_the_model() -> None:
    model = build_model(_config("simple_cnn", input_size=48), NUM_CLASSES, image_size=32)
    assert model.get_layer("resize").output.shape == (None, 48, 48, 3)
    assert model.predict(_batch()[0], verbose=0).shape == (2, NUM_CLASSES)


@pytest.mark.parametrize(("changes", "message"), [
    ({"architecture": "Xception", "input_size": 32}, "at least 71"),
    ({"architecture": "no_such_net"}, "unknown architecture"),
])
def test_build_rejects_impossible_models(changes: dict, message: str) -> None:
    config = RunConfig(model=ModelConfig(weights="none", **changes))
    with pytest.raises(ValueError, match=message):
        build_model(config, NUM_CLASSES)


def test_build_rejects_a_single_class() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        build_model(_config("simple_cnn"), 1)


# --- transfer learning: local weights, freezing, BatchNorm --------------------------------------


@pytest.fixture
def mobilenet_weights(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    """A MobileNet backbone weights file, as a user would bring one (counts as pretrained)."""
    model = build_model(_config("MobileNet"), NUM_CLASSES)
    backbone = model.get_layer(BACKBONE)
    path = tmp_path / "mobilenet.weights.h5"
    backbone.save_weights(path)
    return path, [keras.ops.convert_to_numpy(w) for w in backbone.weights]


def _backbone_counts(model: keras.Model) -> tuple[int, int, int]:
    """(weighted layers, BatchNorm layers, trainable weighted layers) of the backbone."""
    layers = [layer for layer in model.get_layer(BACKBONE).layers if layer.weights]
    batch_norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    return len(layers), len(batch_norms), sum(layer.trainable for layer in layers)


def test_local_weights_file_is_loaded(mobilenet_weights: tuple[Path, list[np.ndarray]]) -> None:
    path, saved = mobilenet_weights
    keras.backend.clear_session()
    model = build_model(_config("MobileNet", weights=str(path)), NUM_CLASSES)
    loaded = [keras.ops.convert_to_numpy(w) for w in model.get_layer(BACKBONE).weights]
    assert len(loaded) == len(saved)
    for before, after in zip(saved, loaded, strict=True):
        np.testing.assert_array_equal(before, after)


def test_unfreeze_fractions_with_pretrained_backbone(
        mobilenet_weights: tuple[Path, list[np.ndarray]]) -> None:
    path, _ = mobilenet_weights
    model = build_model(_config("MobileNet", weights=str(path), fraction=0.0), NUM_CLASSES)
    head_params = 1024 * NUM_CLASSES + NUM_CLASSES
    assert model_stats(model).trainable_params == head_params

    backbone = model.get_layer(BACKBONE)
    n_weighted, n_bn, _ = _backbone_counts(model)
    unfreeze_model(model, 1.0)
    bn_params = _param_count([w for layer in backbone.layers
                              if isinstance(layer, keras.layers.BatchNormalization)
                              for w in layer.weights])
    assert _backbone_counts(model)[2] == n_weighted - n_bn
    assert model_stats(model).trainable_params == model.count_params() - bn_params

    unfreeze_model(model, 0.5)
    weighted = [layer for layer in backbone.layers if layer.weights]
    top = weighted[-math.ceil(0.5 * n_weighted):]
    assert not any(layer.trainable for layer in weighted[:-len(top)])
    assert all(layer.trainable != isinstance(layer, keras.layers.BatchNormalization)
               for layer in top)
    assert head_params < model_stats(model).trainable_params < model.count_params() - bn_params


def test_random_backbone_trains_batchnorm_too() -> None:
    model = build_model(_config("MobileNet", fraction=1.0), NUM_CLASSES)
    n_weighted, _, trainable = _backbone_counts(model)
    assert trainable == n_weighted
    moving = _param_count([w for w in model.weights if "moving" in w.path])
    assert model_stats(model).non_trainable_params == moving
    unfreeze_model(model, 0.0)
    assert model_stats(model).trainable_params == 1024 * NUM_CLASSES + NUM_CLASSES


def test_pretrained_backbone_runs_in_inference_mode(
        mobilenet_weights: tuple[Path, list[np.ndarray]]) -> None:
    """BatchNorm uses its stored statistics even when the model trains (keras-io recipe)."""
    path, _ = mobilenet_weights
    x, _ = _batch(4)
    pretrained = build_model(_config("MobileNet", weights=str(path), dropout=0.0), NUM_CLASSES)
    np.testing.assert_allclose(pretrained(x, training=True), pretrained(x, training=False),
                               rtol=1e-5, atol=1e-6)
    scratch = build_model(_config("MobileNet", dropout=0.0), NUM_CLASSES)
    assert not np.allclose(scratch(x, training=True), scratch(x, training=False), atol=1e-6)


def test_unfreeze_of_scratch_model_keeps_everything_trainable() -> None:
    model = build_model(_config("resnet_fast", fraction=0.0), NUM_CLASSES)
    unfreeze_model(model, 0.0)
    assert model_stats(model).trainable_params == _param_count(
        [w for w in model.weights if "moving" not in w.path])


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_unfreeze_rejects_bad_fractions(fraction: float) -> None:
    model = build_model(_config("simple_cnn"), NUM_CLASSES)
    with pytest.raises(ValueError, match="trainable_fraction"):
        unfreeze_model(model, fraction)


def test_weights_file_of_another_architecture_is_refused(tmp_path: Path) -> None:
    other = build_model(_config("resnet_fast"), NUM_CLASSES)
    path = tmp_path / "resnet_fast.weights.h5"
    other.save_weights(path)
    keras.backend.clear_session()
    with pytest.raises(ValueError, match=r"cannot load .* into the MobileNet backbone"):
        build_model(_config("MobileNet", weights=str(path)), NUM_CLASSES)


def test_imagenet_weights_offline_give_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    # keras.utils.get_file reads its cache folder and downloader from these private names.
    from keras.src.backend import config as keras_config
    from keras.src.utils import file_utils

    def offline(*_args: object, **_kwargs: object) -> None:
        raise urllib.error.URLError("no internet")

    monkeypatch.setattr(keras_config, "keras_home", lambda: str(tmp_path))
    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    with pytest.raises(WeightsUnavailable, match=r"ImageNet weights for MobileNet.*~/.keras"):
        build_model(_config("MobileNet", weights="imagenet"), NUM_CLASSES)


# --- saving, preprocessing, mixed precision ----------------------------------------------------


@pytest.mark.parametrize(("name", "weights"), [("resnet_fast", "none"), ("MobileNet", "local"),
                                               ("EfficientNetB0", "none")])
def test_safe_mode_round_trip_keeps_predictions(name: str, weights: str, tmp_path: Path,
                                                request: pytest.FixtureRequest) -> None:
    if weights == "local":
        weights = str(request.getfixturevalue("mobilenet_weights")[0])
    augment = AugmentConfig(horizontal_flip=True, rotation=0.1, contrast=0.2)
    model = build_model(_config(name, weights=weights, fraction=0.5, augment=augment,
                                dense_units=16), NUM_CLASSES)
    model.compile(optimizer="adam", loss="categorical_crossentropy", run_eagerly=True)
    x, y = _batch(4)
    model.train_on_batch(x, y)  # move BatchNorm statistics and weights off their initial values
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False),
                               rtol=1e-5, atol=1e-6)
    assert model_stats(loaded) == model_stats(model)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_pretrained_flag_survives_saving(tmp_path: Path,
                                         mobilenet_weights: tuple[Path, list]) -> None:
    model = build_model(_config("MobileNet", weights=str(mobilenet_weights[0])), NUM_CLASSES)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    unfreeze_model(loaded, 1.0)
    n_weighted, n_bn, trainable = _backbone_counts(loaded)
    assert trainable == n_weighted - n_bn


@pytest.mark.parametrize(("mode", "reference"), [
    ("caffe", keras.applications.vgg16.preprocess_input),
    ("tf", keras.applications.mobilenet_v2.preprocess_input),
    ("torch", keras.applications.densenet.preprocess_input),
    ("scale", lambda x: x / 255.0),
    ("none", lambda x: x),
])
def test_image_preprocess_matches_keras_applications(mode: str, reference) -> None:
    x = np.random.default_rng(1).integers(0, 256, (3, 8, 8, 3)).astype("float32")
    expected = reference(x.copy())
    layer = ImagePreprocess(mode)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-4)
    inputs = keras.Input((8, 8, 3))  # also inside a functional model (symbolic tensors)
    model = keras.Model(inputs, ImagePreprocess(mode)(inputs))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-4)
    assert ImagePreprocess.from_config(layer.get_config()).mode == mode


def test_image_preprocess_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="preprocess mode"):
        ImagePreprocess("imagenet")


@pytest.mark.parametrize("name", ["resnet_fast", "MobileNet"])
def test_mixed_precision_outputs_float32(name: str) -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        augment = AugmentConfig(horizontal_flip=True, rotation=0.1, contrast=0.2, brightness=0.2)
        model = build_model(_config(name, augment=augment), NUM_CLASSES)
        assert model.get_layer("preprocess").compute_dtype == "float16"
        assert model.output.dtype == "float32"
        # Graph mode for the small net (what training runs); eager keeps MobileNet quick.
        model.compile(optimizer="adam", loss="categorical_crossentropy",
                      run_eagerly=name == "MobileNet")
        x, y = _batch(4)
        assert np.isfinite(model.train_on_batch(x, y))
        assert model.predict(x, verbose=0).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_model_stats_size_counts_bytes() -> None:
    model = build_model(_config("simple_cnn"), NUM_CLASSES)
    stats = model_stats(model)
    assert stats.non_trainable_params == 0
    assert stats.weights_mb == pytest.approx(model.count_params() * 4 / 2**20)
