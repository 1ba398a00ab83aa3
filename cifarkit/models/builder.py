"""Turn a RunConfig into a Keras model: resize, augment, preprocess, backbone, head.

Everything from raw pixels to class probabilities lives in the one model, so a saved `.keras` file
is all the Predict page needs. Fine-tuning follows the keras-io recipe: a pretrained backbone runs
in inference mode and its BatchNormalization layers stay frozen.
"""

from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from cifarkit.augment import augmentation_layers
from cifarkit.config import ModelConfig, RunConfig
from cifarkit.models.catalog import ModelInfo, model_info
from cifarkit.models.layers import ImagePreprocess

BACKBONE = "backbone"  # layer name of the Keras Applications sub-model in transfer models
_POOLINGS = {  # config.model.pooling -> (layer class, layer name)
    "avg": (keras.layers.GlobalAveragePooling2D, "avg_pool"),
    "max": (keras.layers.GlobalMaxPooling2D, "max_pool"),
    "flatten": (keras.layers.Flatten, "flatten"),
}


class WeightsUnavailable(RuntimeError):
    """ImageNet weights could not be fetched (typically: no internet and nothing cached)."""


@dataclass(frozen=True)
class ModelStats:
    """Parameter counts and in-memory size of the weights, for run status and comparisons."""

    trainable_params: int
    non_trainable_params: int
    weights_mb: float  # bytes of all weights / 2**20

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.non_trainable_params


def build_model(config: RunConfig, num_classes: int, image_size: int = 32) -> keras.Model:
    """The full classifier for `config`, taking uint8-valued (image_size, image_size, 3) input.

    The trainable part is already set from `config.model.trainable_fraction` (see unfreeze_model).
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    info = model_info(config.model.architecture)
    size = config.model.input_size
    if size < info.min_input:
        raise ValueError(f"model.input_size: {info.name} needs at least {info.min_input} pixels, "
                         f"got {size}")
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = inputs
    if image_size != size:
        x = keras.layers.Resizing(size, size, name="resize")(x)
    x = augmentation_layers(config.augment, config.seed)(x)
    x = ImagePreprocess(info.preprocess, name="preprocess")(x)
    x = _backbone_features(info, config.model, x)
    outputs = _head(x, config.model, num_classes)
    model = keras.Model(inputs, outputs, name=info.name.lower())
    unfreeze_model(model, config.model.trainable_fraction)
    return model


def unfreeze_model(model: keras.Model, trainable_fraction: float) -> None:
    """Make the top `trainable_fraction` of the backbone's weight-holding layers trainable.

    1 = the whole backbone, 0 = head only. The head and all scratch models always train.
    BatchNormalization stays frozen in a pretrained backbone (keras-io fine-tuning recipe).
    """
    if not 0.0 <= trainable_fraction <= 1.0:
        raise ValueError(f"trainable_fraction must be from 0 to 1, got {trainable_fraction}")
    model.trainable = True
    if BACKBONE not in {layer.name for layer in model.layers}:
        return
    pretrained = _runs_in_inference_mode(model, BACKBONE)
    weighted = [layer for layer in model.get_layer(BACKBONE).layers if layer.weights]
    first_trainable = len(weighted) - math.ceil(trainable_fraction * len(weighted))
    for index, layer in enumerate(weighted):
        is_frozen_bn = pretrained and isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = index >= first_trainable and not is_frozen_bn


def model_stats(model: keras.Model) -> ModelStats:
    """Trainable / non-trainable parameter counts and the weights' size in MiB."""
    weights_bytes = sum(
        math.prod(w.shape) * np.dtype(keras.backend.standardize_dtype(w.dtype)).itemsize
        for w in model.weights)
    return ModelStats(trainable_params=_count(model.trainable_weights),
                      non_trainable_params=_count(model.non_trainable_weights),
                      weights_mb=weights_bytes / 2**20)


def _count(weights: list[Any]) -> int:
    return int(sum(math.prod(w.shape) for w in weights))


def _resolve(builder: str) -> Any:
    """Import "module:attribute" from the catalog only when a model is built."""
    module_name, _, attribute = builder.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _backbone_features(info: ModelInfo, model: ModelConfig,
                       x: keras.KerasTensor) -> keras.KerasTensor:
    if info.kind == "scratch":
        return _scratch_features(_resolve(info.builder), model, x)
    backbone = _transfer_backbone(info, model)
    if model.weights == "none":
        return backbone(x)
    return backbone(x, training=False)  # pretrained: BatchNorm keeps its ImageNet statistics


def _scratch_features(builder: Any, model: ModelConfig, x: keras.KerasTensor) -> keras.KerasTensor:
    """Call a scratch builder; one with a `model` parameter (custom_cnn) reads its size from it."""
    if "model" in inspect.signature(builder).parameters:
        return builder(x, model=model)
    return builder(x)


def _transfer_backbone(info: ModelInfo, model: ModelConfig) -> keras.Model:
    """The Keras Applications model without its top, with ImageNet, random or file weights.

    It keeps its own layer names (EfficientNetV2 even looks up its blocks by model name) and is
    re-wrapped under the name "backbone", so weights files of the plain application fit too.
    """
    application = _resolve(info.builder)
    shape = (model.input_size, model.input_size, 3)
    if model.weights == "imagenet":
        try:
            network = application(include_top=False, weights="imagenet", input_shape=shape)
        except Exception as error:  # keras.utils.get_file raises a bare Exception offline
            raise WeightsUnavailable(
                f"could not get the ImageNet weights for {info.name} ({error}). Without "
                "internet, copy the file named in that URL into ~/.keras/models/, or choose "
                "weights 'none' or a local .weights.h5 file.") from error
    else:
        network = application(include_top=False, weights=None, input_shape=shape)
    backbone = keras.Model(network.input, network.output, name=BACKBONE)
    if model.weights not in ("imagenet", "none"):
        _load_backbone_weights(backbone, model.weights, info.name)
    return backbone


def _load_backbone_weights(backbone: keras.Model, path: str, name: str) -> None:
    try:
        backbone.load_weights(path)
    except (ValueError, KeyError, OSError) as error:
        raise ValueError(f"model.weights: cannot load {path!r} into the {name} backbone; it "
                         f"must be a .weights.h5 file saved from one ({error})") from error


def _head(x: keras.KerasTensor, model: ModelConfig, num_classes: int) -> keras.KerasTensor:
    """Pooling, optional dense layer, dropout and a float32 softmax (safe under mixed precision)."""
    if model.pooling not in _POOLINGS:
        raise ValueError(f"model.pooling must be one of {sorted(_POOLINGS)}, got {model.pooling!r}")
    pooling, name = _POOLINGS[model.pooling]
    x = pooling(name=name)(x)
    if model.dense_units:
        x = keras.layers.Dense(model.dense_units, activation="relu", name="head_dense")(x)
    if model.dropout:
        x = keras.layers.Dropout(model.dropout, name="head_dropout")(x)
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                              name="predictions")(x)


def _runs_in_inference_mode(model: keras.Model, layer_name: str) -> bool:
    """Whether `layer_name` is called with training=False: how build_model marks pretrained.

    Read from the functional config so it also holds for a model loaded from a .keras file.
    """
    for layer in model.get_config()["layers"]:
        if layer["name"] == layer_name:
            return any(node.get("kwargs", {}).get("training") is False
                       for node in layer["inbound_nodes"])
    return False
