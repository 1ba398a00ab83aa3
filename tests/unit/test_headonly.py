"""Head-only transfer on cached features: the head alone learns, the full model is what is saved.

Tiny MobileNetV2 (random weights, 32 px) on a toy problem whose classes differ in colour, which a
random frozen backbone's pooled features still separate.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest

from cifarkit import datasets, headonly, pipeline, rundir, runs, training
from cifarkit.augment import augmentation_layers
from cifarkit.config import AugmentConfig, ModelConfig, RunConfig, TrainingConfig
from cifarkit.models.builder import build_model


def augment_config(**fields: object) -> AugmentConfig:
    """Augmentation with the default recipe's shift off: each test names what it turns on."""
    return AugmentConfig(**{"shift": 0.0, **fields})  # type: ignore[arg-type]

CLASSES = 3
NOISE = 40  # pixel noise (0..255 scale) on top of the class colour
TINY = ModelConfig(architecture="MobileNetV2", weights="none", input_size=32,
                   trainable_fraction=0.0, dropout=0.0)


def toy_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy images whose class is their dominant colour channel (left half brighter, so a
    mirror is a different image)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % CLASSES
    images = rng.integers(0, NOISE, (count, 32, 32, 3)).astype(np.int64)
    images[np.arange(count), :, :, labels] += 150
    images[:, :, :16] += 15
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)


def toy_data(config: RunConfig, train: int = 48, val: int = 24) -> training.PreparedData:
    x_train, y_train = toy_images(train, seed=1)
    x_val, y_val = toy_images(val, seed=2)
    batch = config.training.batch_size
    dataset = datasets.Dataset("toy colours", x_train, y_train, x_val, y_val,
                               ["red", "green", "blue"])
    return training.PreparedData(
        pipeline.make_dataset(x_train, y_train, CLASSES, batch, training=True, seed=config.seed),
        pipeline.make_dataset(x_val, y_val, CLASSES, batch, training=False),
        x_val, y_val, dataset, math.ceil(train / batch), x_train, y_train, x_val, y_val)


def toy_config(**augment: object) -> RunConfig:
    return RunConfig(model=TINY, augment=augment_config(**augment),
                     training=TrainingConfig(epochs=2, batch_size=16,
                                             steps_per_execution=1))  # stops per batch


def compiled(config: RunConfig, data: training.PreparedData,
             calibrate: bool = False) -> keras.Model:
    training.configure_keras(config)
    model = build_model(config, CLASSES, 32)
    if calibrate:
        calibrate_batch_norm(model, data.x_train)
    training.compile_model(model, config, CLASSES, data.steps_per_epoch)
    return model


def calibrate_batch_norm(model: keras.Model, images: np.ndarray) -> None:
    """Set the frozen backbone's BatchNorm statistics from `images` (one pass, momentum 0).

    A randomly initialised MobileNetV2 in inference mode shrinks its input to ~1e-13 by the
    last layer, too small for a head to learn from; with batch statistics in place its pooled
    features are of order 1, as a pretrained backbone's are.
    """
    backbone = model.get_layer("backbone")
    norms = [layer for layer in backbone.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.trainable, layer.momentum = True, 0.0
    backbone(model.get_layer("preprocess")(images.astype("float32")), training=True)
    for layer in norms:
        layer.trainable, layer.momentum = False, 0.99


class Recorder(keras.callbacks.Callback):
    """Which model the callbacks are given, and the epoch logs they see."""

    def __init__(self) -> None:
        super().__init__()
        self.models: set[str] = set()
        self.logs: list[dict] = []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.models.add(self.model.name)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.models.add(self.model.name)
        self.logs.append(dict(logs or {}))


def weights_bytes(layer: keras.layers.Layer) -> bytes:
    return b"".join(np.asarray(w).tobytes() for w in layer.get_weights())


def test_applies_only_to_head_only_transfer_with_caching_on() -> None:
    base = RunConfig(model=TINY)
    assert headonly.applies(base)
    assert not headonly.applies(replace(base, model=replace(TINY, cache_features=False)))
    assert not headonly.applies(replace(base, model=replace(TINY, trainable_fraction=0.2)))
    assert not headonly.applies(replace(base, model=replace(TINY, trainable_fraction=1.0)))
    assert not headonly.applies(RunConfig(model=ModelConfig(architecture="resnet_fast",
                                                            trainable_fraction=0.0)))


def test_flips_are_cached_as_views_and_other_random_layers_refuse() -> None:
    assert headonly.augmentation_refusal(augment_config(horizontal_flip=True,
                                                       vertical_flip=True)) is None
    refusal = headonly.augmentation_refusal(augment_config(zoom=0.1, shift=0.1))
    assert refusal is not None and "zoom, shift" in refusal
    assert headonly.view_axes(augment_config(horizontal_flip=False)) == [()]
    assert headonly.view_axes(augment_config()) == [(), (2,)]
    assert headonly.view_axes(augment_config(horizontal_flip=True, vertical_flip=True)) == [
        (), (1, 2)]


@pytest.mark.parametrize("horizontal, vertical", [(True, False), (False, True), (True, True)])
def test_every_output_of_the_flip_layer_is_one_of_the_cached_views(horizontal: bool,
                                                                   vertical: bool) -> None:
    aug = augment_config(horizontal_flip=horizontal, vertical_flip=vertical)
    images, _ = toy_images(64, seed=3)
    flipped = keras.ops.convert_to_numpy(
        augmentation_layers(aug, seed=0)(images.astype("float32"), training=True))
    views = [np.flip(images, axis=axes) if axes else images for axes in headonly.view_axes(aug)]
    matches = [[np.array_equal(out, view[i]) for view in views] for i, out in enumerate(flipped)]
    assert all(any(row) for row in matches)  # never a view the cache lacks
    assert {row.index(True) for row in matches} == {0, 1}  # both views really occur


def test_cache_over_the_cap_trains_the_ordinary_way(monkeypatch: pytest.MonkeyPatch) -> None:
    config = toy_config()
    data = toy_data(config)
    model = compiled(config, data)
    assert headonly.cache_bytes(2, 48, 24, (1280,)) == (2 * 48 + 24) * 1280 * 4
    monkeypatch.setattr(headonly, "FEATURE_CACHE_MAX_BYTES", 1000)
    run_dir = runs.create(config)
    progress = training.ProgressWriter(run_dir, data.steps_per_epoch)
    recorder = Recorder()
    headonly.fit_head(model, config, data, [progress, recorder], epochs=1, initial_epoch=0,
                      verbose=0)
    note = rundir.read_status(run_dir)["feature_cache"]
    assert note.startswith("not cached:") and "cap" in note
    assert recorder.models == {model.name} and "val_accuracy" in recorder.logs[0]


def test_fit_head_trains_only_the_head_and_the_saved_model_is_the_full_model() -> None:
    config = toy_config()
    data = toy_data(config)
    model = compiled(config, data)
    backbone_before = weights_bytes(model.get_layer("backbone"))
    head_before = weights_bytes(model.get_layer("predictions"))
    run_dir = runs.create(config)
    progress = training.ProgressWriter(run_dir, data.steps_per_epoch)
    recorder = Recorder()
    callbacks = [training.ResumeCheckpoint(run_dir, progress), progress, recorder,
                 training.BestCheckpoint(run_dir, False, None, progress)]

    headonly.fit_head(model, config, data, callbacks, epochs=2, initial_epoch=0, verbose=0)

    assert weights_bytes(model.get_layer("backbone")) == backbone_before
    assert weights_bytes(model.get_layer("predictions")) != head_before
    assert recorder.models == {model.name}  # callbacks saw the full model, never the head's
    assert len(recorder.logs) == 2 and {"loss", "accuracy", "val_accuracy"} <= set(
        recorder.logs[-1])
    status = rundir.read_status(run_dir)
    assert status["feature_cache"].startswith("cached: the image and its flip of 48 training")
    assert status["features_done"] == status["features_total"] == 2 * 48 + 24
    assert status["checkpoint_epoch"] == 2 and status["epochs_run"] == 2
    assert len(rundir.epoch_rows(run_dir)) == 2
    saved = keras.saving.load_model(run_dir / rundir.BEST_MODEL)
    assert [layer.name for layer in saved.layers] == [layer.name for layer in model.layers]
    probe = data.x_val[:8].astype("float32")
    np.testing.assert_allclose(saved.predict(probe, verbose=0), model.predict(probe, verbose=0),
                               atol=1e-6)
    # val_accuracy from cached features is the full model's accuracy on the validation images
    full_val = np.mean(model.predict(data.x_val.astype("float32"), verbose=0).argmax(1)
                       == data.y_val)
    assert recorder.logs[-1]["val_accuracy"] == pytest.approx(full_val, abs=1e-6)


def test_accuracy_rises_on_a_learnable_problem() -> None:
    config = replace(toy_config(), training=TrainingConfig(epochs=8, batch_size=16))
    config = replace(config, optimizer=replace(config.optimizer, learning_rate=0.003))
    data = toy_data(config, train=60)
    model = compiled(config, data, calibrate=True)
    recorder = Recorder()
    headonly.fit_head(model, config, data, [recorder], epochs=8, initial_epoch=0, verbose=0)
    train = [logs["accuracy"] for logs in recorder.logs]
    val = [logs["val_accuracy"] for logs in recorder.logs]
    assert train[-1] >= 0.85 and train[-1] > train[0] + 0.3, train  # 3 classes: chance 0.33
    assert val[-1] >= 0.6, val  # random frozen features, 60 images: it generalises, roughly


class StopAfter(keras.callbacks.Callback):
    """Writes the STOP file after `batches` training batches, as the Stop button does."""

    def __init__(self, run_dir: Path, batches: int) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.batches = batches
        self.seen = 0

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.seen += 1
        if self.seen > self.batches:
            (self.run_dir / rundir.STOP).touch()


def test_a_stop_in_training_cuts_the_epoch_short_and_is_not_checkpointed() -> None:
    config = toy_config()
    data = toy_data(config)
    model = compiled(config, data)
    run_dir = runs.create(config)
    progress = training.ProgressWriter(run_dir, data.steps_per_epoch)
    stopper = StopAfter(run_dir, data.steps_per_epoch + 1)  # stop in epoch 2's second batch
    callbacks = [stopper, training.ResumeCheckpoint(run_dir, progress), progress]
    headonly.fit_head(model, config, data, callbacks, epochs=2, initial_epoch=0, verbose=0)
    assert progress.stopped and progress.cut_short
    assert stopper.seen == data.steps_per_epoch + 2  # no batch ran after the stop
    status = rundir.read_status(run_dir)
    assert status["checkpoint_epoch"] == 1 and status["partial_epoch"] == 2
    assert len(rundir.epoch_rows(run_dir)) == 1


def test_a_stop_during_extraction_trains_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    config = toy_config()
    data = toy_data(config)
    model = compiled(config, data)
    head_before = weights_bytes(model.get_layer("predictions"))
    run_dir = runs.create(config)
    progress = training.ProgressWriter(run_dir, data.steps_per_epoch)
    monkeypatch.setattr(headonly, "PROGRESS_SECONDS", 0.0)
    real_advance = headonly._Ticker.advance

    def stop_after_first_batch(ticker: headonly._Ticker, count: int) -> bool:
        (run_dir / rundir.STOP).touch()
        return real_advance(ticker, count)

    monkeypatch.setattr(headonly._Ticker, "advance", stop_after_first_batch)
    headonly.fit_head(model, config, data, [progress], epochs=2, initial_epoch=0, verbose=0)
    assert progress.stopped
    status = rundir.read_status(run_dir)
    assert status["features_done"] == config.training.batch_size < status["features_total"]
    assert "stopped during feature extraction" in status["feature_cache"]
    assert weights_bytes(model.get_layer("predictions")) == head_before
    assert rundir.epoch_rows(run_dir) == []


def test_other_random_augmentation_trains_the_ordinary_way_with_a_note() -> None:
    config = replace(toy_config(zoom=0.1), training=TrainingConfig(epochs=1, batch_size=16))
    data = toy_data(config)
    model = compiled(config, data)
    run_dir = runs.create(config)
    progress = training.ProgressWriter(run_dir, data.steps_per_epoch)
    headonly.fit_head(model, config, data, [progress], epochs=1, initial_epoch=0, verbose=0)
    status = rundir.read_status(run_dir)
    assert status["feature_cache"].startswith("not cached: random zoom")
    assert "features_total" not in status and status["epochs_run"] == 1


def test_a_resumed_run_continues_from_last_keras_with_its_optimizer_state() -> None:
    config = toy_config()
    data = toy_data(config)
    model = compiled(config, data)
    run_dir = runs.create(config)
    progress = training.ProgressWriter(run_dir, data.steps_per_epoch)
    headonly.fit_head(model, config, data, [training.ResumeCheckpoint(run_dir, progress),
                                            progress], epochs=1, initial_epoch=0, verbose=0)
    resumed = keras.saving.load_model(run_dir / rundir.LAST_MODEL, safe_mode=True)
    assert int(resumed.optimizer.iterations) == data.steps_per_epoch
    backbone = weights_bytes(resumed.get_layer("backbone"))
    progress = training.ProgressWriter(run_dir, data.steps_per_epoch)
    headonly.fit_head(resumed, config, data, [training.ResumeCheckpoint(run_dir, progress),
                                              progress], epochs=2, initial_epoch=1, verbose=0)
    assert int(resumed.optimizer.iterations) == 2 * data.steps_per_epoch
    assert weights_bytes(resumed.get_layer("backbone")) == backbone
    assert [row["epoch"] for row in rundir.epoch_rows(run_dir)] == [1, 2]
    assert rundir.read_status(run_dir)["checkpoint_epoch"] == 2
