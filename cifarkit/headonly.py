"""Head-only transfer on cached features: the frozen backbone runs once, not every epoch.

With `trainable_fraction` 0 nothing before the head learns, so the backbone's output for an image
is the same every epoch; computing it once and fitting only the head on those vectors trains the
same head at a fraction of the cost. The head's own layer objects are trained (shared with a small
head-only model), so the full model, raw pixels to probabilities, is what the callbacks
checkpoint and what is saved, scored, predicted and explained afterwards.

Augmentation runs before the backbone. A random flip is a fixed transform with two outcomes, so
both views are cached and each epoch picks one per image, as the flip layer would. Any other
random layer (rotation, zoom, shift, contrast, brightness) draws a new image every epoch; caching
K fixed draws of it would quietly swap the augmentation the run asked for for a weaker one (and
cost K backbone passes up front), so such a run keeps the ordinary path, with a status note.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from cifarkit import classroom, failures, rundir
from cifarkit.config import AugmentConfig, RunConfig
from cifarkit.models.builder import BACKBONE
from cifarkit.models.catalog import model_info

if TYPE_CHECKING:
    from cifarkit.training import PreparedData, ProgressWriter

FEATURE_CACHE_MAX_BYTES = 2**30  # bytes (1 GiB): all cached views, train + validation, float32;
#   below the 2 GB a TensorFlow graph constant may hold; the input pipeline holds a second copy
PROGRESS_SECONDS = 0.5  # extraction progress goes to status.json at most this often
RANDOM_LAYERS = ("rotation", "zoom", "shift", "contrast", "brightness")  # AugmentConfig fields
#   whose random layer draws a new image every epoch (a flip only ever picks one of two views)


@dataclass
class FeatureCache:
    """The backbone's pooled output, computed once: what the head trains and validates on."""

    train: np.ndarray  # (views, train images, *feature shape) float32; view 0 is the image itself
    y_train: np.ndarray  # integer labels
    val: np.ndarray | None  # (validation images, *feature shape), the image itself only
    y_val: np.ndarray | None
    seconds: float  # how long extraction took


def applies(config: RunConfig) -> bool:
    """Whether a run trains head only on a transfer backbone with feature caching asked for.

    fit_head then trains it: on cached features when it can, else the ordinary way with a note.
    """
    model = config.model
    return (model.cache_features and model.trainable_fraction == 0
            and model_info(model.architecture).kind == "transfer")


def augmentation_refusal(aug: AugmentConfig) -> str | None:
    """Why this augmentation rules caching out (a random layer other than flips), or None."""
    drawn = [name for name in RANDOM_LAYERS if getattr(aug, name) > 0]
    if not drawn:
        return None
    return (f"random {', '.join(drawn)} change each image every epoch, so the backbone's "
            "features change too; the frozen backbone runs every epoch")


def view_axes(aug: AugmentConfig) -> list[tuple[int, ...]]:
    """The image views the model's random flip chooses between, as axes of an NHWC batch.

    () is the image itself. Keras' RandomFlip draws one coin per image, in horizontal_and_vertical
    mode too (both axes flip together), so every flip setting has exactly two views.
    """
    axes = tuple(axis for axis, on in ((1, aug.vertical_flip), (2, aug.horizontal_flip)) if on)
    return [(), axes] if axes else [()]


def cache_bytes(views: int, train_images: int, val_images: int,
                feature_shape: tuple[int, ...]) -> int:
    """Bytes the float32 cache of every view of the training images and the validation images
    takes."""
    return (views * train_images + val_images) * math.prod(feature_shape) * 4


def fit_head(model: keras.Model, config: RunConfig, data: PreparedData,
             callbacks: list[keras.callbacks.Callback], *, epochs: int, initial_epoch: int,
             verbose: int) -> None:
    """Train `model` (compiled, head only) in place, on cached backbone features when possible.

    The callbacks see the full model (checkpoints save it, a stop sets its stop_training) and
    val_* metrics come from cached validation features. A stop during extraction ends the run
    before any epoch, as a stop in the first batch would. When caching does not apply (random
    augmentation besides flips, a cache over FEATURE_CACHE_MAX_BYTES, weights trainable outside
    the head) the run trains the ordinary way and status "feature_cache" says why.
    """
    progress = _progress_writer(callbacks)
    if initial_epoch >= epochs:  # nothing left to train: extraction would be wasted
        _ordinary_fit(model, data, callbacks, epochs, initial_epoch, verbose)
        return
    views = view_axes(config.augment)
    refusal = augmentation_refusal(config.augment)
    split = None if refusal else split_head(model)
    if split is not None:
        refusal = _head_refusal(model, split) or _memory_refusal(views, data, split)
    if refusal or split is None:
        _record(progress, feature_cache=f"not cached: {refusal}")
        _ordinary_fit(model, data, callbacks, epochs, initial_epoch, verbose)
        return
    cache = extract_features(split[0], data, views, config.training.batch_size, progress)
    if cache is None:
        _stopped_during_extraction(progress)
        return
    _record(progress, feature_cache=_describe(cache), feature_seconds=round(cache.seconds, 3))
    _fit_cached(model, split[1], config, data, cache, callbacks,
                epochs=epochs, initial_epoch=initial_epoch, verbose=verbose, progress=progress)


def split_head(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(extractor, head): raw pixels → the layer after the backbone (pooling or flatten), and that
    layer's output → probabilities through the very head layer objects of `model`."""
    names = [layer.name for layer in model.layers]
    if BACKBONE not in names or names.index(BACKBONE) + 1 >= len(names):
        raise ValueError(f"fit_head needs a transfer model with a {BACKBONE!r} layer and a head")
    after = names.index(BACKBONE) + 1
    pooled = model.layers[after].output
    extractor = keras.Model(model.inputs, pooled, name="feature_extractor")
    inputs = keras.Input(tuple(pooled.shape[1:]), name="features")
    x = inputs
    for layer in model.layers[after + 1:]:
        x = layer(x)
    return extractor, keras.Model(inputs, x, name="head")


def extract_features(extractor: keras.Model, data: PreparedData, views: list[tuple[int, ...]],
                     batch_size: int, progress: ProgressWriter | None = None
                     ) -> FeatureCache | None:
    """Every view of the training images and the validation images through the frozen layers.

    Inference mode (random layers off, BatchNorm on its statistics). Progress goes to status
    (features_done / features_total); None when a stop or the class time limit interrupts.
    """
    start = time.perf_counter()
    shape = tuple(extractor.output.shape[1:])
    has_val = len(data.y_val) > 0
    ticker = _Ticker(progress, len(views) * len(data.x_train) + len(data.x_val))
    train = np.empty((len(views), len(data.x_train), *shape), np.float32)
    for index, axes in enumerate(views):
        if not _predict_into(extractor, data.x_train, axes, batch_size, train[index], ticker):
            return None
    val = np.empty((len(data.x_val), *shape), np.float32) if has_val else None
    if val is not None and not _predict_into(extractor, data.x_val, (), batch_size, val, ticker):
        return None
    ticker.finish()
    return FeatureCache(train, np.asarray(data.y_train), val,
                        np.asarray(data.y_val) if has_val else None,
                        time.perf_counter() - start)


def feature_batches(cache: FeatureCache, num_classes: int, batch_size: int, *, seed: int,
                    repeat: bool) -> tf.data.Dataset:
    """Training batches (features, one-hot labels): reshuffled every epoch (seeded), each image
    in one of its cached views drawn afresh every epoch, as the flip layer draws its coin."""
    views, count = cache.train.shape[:2]
    features = tf.constant(cache.train.reshape((views * count, *cache.train.shape[2:])))
    labels = tf.constant(cache.y_train.astype(np.int64))
    order = tf.data.Dataset.range(count).shuffle(count, seed=seed, reshuffle_each_iteration=True)
    coins = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)

    def gather(index: tf.Tensor, coin: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        rows = (coin % views) * count + index
        return tf.gather(features, rows), tf.one_hot(tf.gather(labels, index), num_classes)

    batches = tf.data.Dataset.zip(order, coins).batch(batch_size).map(gather)
    return (batches.repeat() if repeat else batches).prefetch(tf.data.AUTOTUNE)


def validation_batches(cache: FeatureCache, num_classes: int,
                       batch_size: int) -> tf.data.Dataset | None:
    """The cached validation features in order, batched, with one-hot labels."""
    if cache.val is None or cache.y_val is None:
        return None
    onehot = np.eye(num_classes, dtype=np.float32)[cache.y_val.astype(np.int64)]
    return tf.data.Dataset.from_tensor_slices((cache.val, onehot)).batch(batch_size)


class _FullModelStop(keras.callbacks.Callback):
    """Passes the full model's stop_training (set by a stop, early stopping, a budget) on to
    the head model that Keras' loop is fitting; its own `model` is the full model."""

    def __init__(self, head: keras.Model) -> None:
        super().__init__()
        self.head = head

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._pass_on()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._pass_on()

    def _pass_on(self) -> None:
        if self.model.stop_training:
            self.head.stop_training = True


class _Ticker:
    """Counts extracted images, writes the count to status now and then, and watches for a stop
    (the STOP file, the class time limit) as ProgressWriter does between batches."""

    def __init__(self, progress: ProgressWriter | None, total: int) -> None:
        self.progress = progress
        self.total = total
        self.done = 0
        self._last = 0.0
        _record(progress, features_done=0, features_total=total)

    def advance(self, count: int) -> bool:
        """Count `count` more images; False when the run should stop."""
        self.done += count
        if self.progress is None:
            return True
        now = time.perf_counter()
        if now - self._last >= PROGRESS_SECONDS:
            self._last = now
            _record(self.progress, features_done=self.done)
        return not _should_stop(self.progress)

    def finish(self) -> None:
        _record(self.progress, features_done=self.done)


def _predict_into(extractor: keras.Model, images: np.ndarray, axes: tuple[int, ...],
                  batch_size: int, out: np.ndarray, ticker: _Ticker) -> bool:
    """Fill `out` with the features of `images` flipped on `axes`; False if stopped midway.

    Flipping the raw image equals flipping after the model's resize (bilinear is symmetric)."""
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        if axes:
            chunk = np.flip(chunk, axis=axes)
        out[start:start + len(chunk)] = extractor.predict_on_batch(chunk.astype(np.float32))
        if not ticker.advance(len(chunk)):
            return False
    return True


def _fit_cached(model: keras.Model, head: keras.Model, config: RunConfig, data: PreparedData,
                cache: FeatureCache, callbacks: list[keras.callbacks.Callback], *, epochs: int,
                initial_epoch: int, verbose: int, progress: ProgressWriter | None) -> None:
    """Fit the head model on the cache, driving `callbacks` with the full model as theirs."""
    num_classes = len(data.dataset.class_names)
    batch = config.training.batch_size
    compile_args = keras.saving.deserialize_keras_object(model.get_compile_config())
    compile_args["optimizer"] = model.optimizer  # one optimizer: its state is saved with model
    head.compile(**compile_args)
    train = feature_batches(cache, num_classes, batch, seed=config.seed,
                            repeat=config.training.steps_per_epoch is not None)
    steps = data.steps_per_epoch
    every = keras.callbacks.CallbackList(
        [*callbacks, _FullModelStop(head)], add_history=True, add_progbar=verbose != 0,
        verbose=verbose, epochs=epochs, steps=steps, model=model)
    if progress is not None:  # extraction is training time: the clock keeps it
        progress.elapsed_before = progress.elapsed()
    model.stop_training = False
    head.history = None  # Keras returns head.history; History sets the full model's
    head.fit(train, validation_data=validation_batches(cache, num_classes, batch),
             epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
             shuffle=False, callbacks=every, verbose=verbose)  # feature_batches shuffles


def _ordinary_fit(model: keras.Model, data: PreparedData,
                  callbacks: list[keras.callbacks.Callback], epochs: int, initial_epoch: int,
                  verbose: int) -> None:
    """The run as training._train fits it: the whole model, every epoch through the backbone."""
    model.fit(data.train, validation_data=data.validation, epochs=epochs,
              initial_epoch=initial_epoch, steps_per_epoch=data.steps_per_epoch, shuffle=False,
              callbacks=callbacks, verbose=verbose)


def _head_refusal(model: keras.Model, split: tuple[keras.Model, keras.Model]) -> str | None:
    """A weight outside the head still trains (the backbone's output would then change)."""
    head_ids = {id(variable) for variable in split[1].trainable_variables}
    outside = [variable.path for variable in model.trainable_variables
               if id(variable) not in head_ids]
    if outside:
        return f"weights outside the head still train ({', '.join(outside[:3])})"
    return None


def _memory_refusal(views: list[tuple[int, ...]], data: PreparedData,
                    split: tuple[keras.Model, keras.Model]) -> str | None:
    shape = tuple(split[0].output.shape[1:])
    size = cache_bytes(len(views), len(data.x_train), len(data.x_val), shape)
    if size <= FEATURE_CACHE_MAX_BYTES:
        return None
    return (f"the cached features ({'x'.join(map(str, shape))} per image) would take "
            f"{size / 2**20:,.0f} MB, over the {FEATURE_CACHE_MAX_BYTES / 2**20:,.0f} MB cap; "
            "average or max pooling caches one vector per image")


def _describe(cache: FeatureCache) -> str:
    views, count = cache.train.shape[:2]
    shape = "x".join(map(str, cache.train.shape[2:]))
    val = 0 if cache.val is None else len(cache.val)
    size = (cache.train.nbytes + (0 if cache.val is None else cache.val.nbytes)) / 2**20
    seen = "the image and its flip" if views == 2 else "the image"
    return (f"cached: {seen} of {count:,} training images and {val:,} validation images, "
            f"{shape} features each ({size:,.1f} MB), extracted in {cache.seconds:.1f} s")


def _should_stop(progress: ProgressWriter) -> bool:
    """The STOP file, or the class time limit used up (recorded as the error, as ProgressWriter
    does), both on the run's training clock."""
    if rundir.stop_requested(progress.run_dir):
        return True
    limit = progress.limit_minutes
    if limit is None or progress.elapsed() < limit * 60:
        return False
    _record(progress, error=classroom.limit_message(limit))
    return True


def _stopped_during_extraction(progress: ProgressWriter | None) -> None:
    """No epoch ran: the run ends as stopped with the training time spent extracting."""
    if progress is None:
        return
    progress.stopped = True
    _record(progress, train_seconds=progress.elapsed(),
            feature_cache="not cached: stopped during feature extraction")


def _progress_writer(callbacks: list[keras.callbacks.Callback]) -> ProgressWriter | None:
    """The run's ProgressWriter among the callbacks (it knows the run folder), if any."""
    from cifarkit.training import ProgressWriter  # training imports this module

    return next((callback for callback in callbacks if isinstance(callback, ProgressWriter)),
                None)


def _record(progress: ProgressWriter | None, **fields: Any) -> None:
    if progress is not None:
        failures.save_status(progress.run_dir, **fields)
