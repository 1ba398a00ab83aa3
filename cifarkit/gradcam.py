"""Grad-CAM: where in the image a classifier looked for a class.

The heatmap weights a convolutional layer's feature maps by the gradient of the class score
(Selvaraju et al., 2017). Transfer models nest their backbone as a sub-model, which a plain
`keras.Model(model.inputs, [inner.output, model.output])` cannot reach; `_tapped_model` rebuilds
the forward pass with `keras.models.clone_model`, reusing the very same layers and weights.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from cifarkit.predict import to_input

SEPARATOR = "/"  # "backbone/conv_pw_13_relu": a layer inside a nested sub-model

_CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                 keras.layers.SeparableConv2D, keras.layers.Conv2DTranspose)
# Layers that keep a convolution's spatial grid and meaning: auto-pick may stop on them
# (not on pooling, dropout or padding, which coarsen or merely copy the grid).
_FEATURE_LAYERS = (*_CONVOLUTIONS, keras.layers.BatchNormalization,
                   keras.layers.LayerNormalization, keras.layers.Activation, keras.layers.ReLU,
                   keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.PReLU,
                   keras.layers.Add, keras.layers.Concatenate, keras.layers.Multiply)

# One tapped model per (model, layer): rebuilding adds nodes to the shared layers, so a page
# that reruns on every click must not rebuild each time. Weak keys: no model is kept alive.
_TAPS: weakref.WeakKeyDictionary[keras.Model, dict[str, keras.Model]] = (
    weakref.WeakKeyDictionary())


@dataclass(eq=False)
class GradCam:
    """A heatmap over the model's input for one class, from one layer."""

    heatmap: np.ndarray  # float32 (h, w) in [0, 1] at the layer's resolution; all 0 when
    # nothing in the image speaks for the class (every weighted map is negative)
    class_index: int
    layer_name: str  # qualified, e.g. "backbone/conv_pw_13_relu"
    probability: float  # the model's probability for class_index on this image


def conv_layer_names(model: keras.Model) -> list[str]:
    """Layers Grad-CAM can use, in model order: every 4-D output from the first convolution on.

    Nested sub-models are searched too; their layers are named "submodel/layer".
    """
    return [name for name, _ in _candidates(model)]


def default_layer_name(model: keras.Model) -> str:
    """The layer gradcam() uses when none is given: the last convolution-like feature map.

    A 1x1 map cannot localise anything (MobileNet at 32 pixels ends in one), so the last map
    larger than that wins when there is one.
    """
    features = [(name, layer) for name, layer in _candidates(model)
                if isinstance(layer, _FEATURE_LAYERS)]
    if not features:
        raise ValueError(f"model '{model.name}' has no convolutional layer: Grad-CAM needs one")
    spatial = [name for name, layer in features if _grid(layer) != (1, 1)]
    return (spatial or [features[-1][0]])[-1]


def gradcam(model: keras.Model, image: np.ndarray, class_index: int | None = None,
            layer_name: str | None = None) -> GradCam:
    """Grad-CAM for one uint8 (H, W, 3) image; class_index None means the predicted class.

    Everything runs in inference mode, so augmentation and dropout cannot move the heatmap.
    """
    name, path = _resolve(model, layer_name or default_layer_name(model))
    tapped = _tapped(model, name, path)
    batch = tf.convert_to_tensor(_model_input(model, image)[None].astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(batch)  # records every op, even through frozen (non-trainable) layers
        features, head_input, probs = tapped(batch, training=False)
        index = _class_index(class_index, probs)
        score = _class_score(model, head_input, probs, index)
    grads = tape.gradient(score, features)
    heatmap = _weighted_maps(features[0].numpy(), grads[0].numpy())
    return GradCam(heatmap, index, name, float(probs[0, index]))


def ensemble_gradcam(models: Sequence[keras.Model], image: np.ndarray, class_index: int,
                     layer_names: Sequence[str | None] | None = None) -> GradCam:
    """Grad-CAM of an ensemble for the ensemble's class: the mean of its members' maps.

    The ensemble's answer averages the members' probabilities, so its evidence averages theirs;
    one member's map would explain a class that member may not even predict. layer_names gives
    each member's layer (None: its default); probability is the ensemble's (the mean).
    """
    names = list(layer_names) if layer_names is not None else [None] * len(models)
    if not models or len(names) != len(models):
        raise ValueError(f"an ensemble Grad-CAM needs one layer per model: got {len(models)} "
                         f"models and {len(names)} layers")
    cams = [gradcam(model, image, class_index, name)
            for model, name in zip(models, names, strict=True)]
    return GradCam(average_heatmaps([cam.heatmap for cam in cams]), int(class_index),
                   " + ".join(cam.layer_name for cam in cams),
                   float(np.mean([cam.probability for cam in cams])))


def average_heatmaps(heatmaps: Sequence[np.ndarray]) -> np.ndarray:
    """The mean of heatmaps, each resized to the finest grid among them first.

    Not rescaled: a spot only one of two members relies on stays half as hot as a shared one.
    """
    if not heatmaps:
        raise ValueError("no heatmaps to average")
    maps = [np.asarray(heatmap, dtype=np.float32) for heatmap in heatmaps]
    size = max((heatmap.shape for heatmap in maps), key=lambda shape: shape[0] * shape[1])
    same = [heatmap if heatmap.shape == size else resize_heatmap(heatmap, size) for heatmap in maps]
    return np.mean(same, axis=0).astype(np.float32)


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """The image with the heatmap upsampled onto it in jet colours (blue cold, red hot)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be from 0 to 1, got {alpha}")
    heat = resize_heatmap(heatmap, image.shape[:2])
    blended = (1 - alpha) * image.astype(np.float32) + alpha * jet(heat)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def resize_heatmap(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a [0, 1] heatmap to (height, width), for overlays and scoring."""
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.ndim != 2:
        raise ValueError(f"expected a 2-D heatmap, got shape {heatmap.shape}")
    height, width = size
    resized = Image.fromarray(heatmap, mode="F").resize((width, height),
                                                        Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized), 0.0, 1.0)


def jet(values: np.ndarray) -> np.ndarray:
    """The classic jet colormap as float RGB 0..255: matplotlib is no dependency of ours."""
    x = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)[..., None]
    centres = np.array([0.75, 0.5, 0.25], dtype=np.float32)  # where red, green, blue peak
    return 255.0 * np.clip(1.5 - np.abs(4.0 * (x - centres)), 0.0, 1.0)


# --- choosing the layer


def _walk(model: keras.Model, prefix: str = "") -> Iterator[tuple[str, keras.layers.Layer]]:
    """(qualified name, layer) for every layer in order, inside nested sub-models too."""
    for layer in model.layers:
        name = prefix + layer.name
        if isinstance(layer, keras.Model):
            yield from _walk(layer, name + SEPARATOR)
        else:
            yield name, layer


def _candidates(model: keras.Model) -> list[tuple[str, keras.layers.Layer]]:
    """4-D outputs from the first convolution on: before it, maps are still pixels."""
    layers = list(_walk(model))
    first = next((i for i, (_, layer) in enumerate(layers)
                  if isinstance(layer, _CONVOLUTIONS)), len(layers))
    return [(name, layer) for name, layer in layers[first:] if _grid(layer) is not None]


def _grid(layer: keras.layers.Layer) -> tuple[Any, Any] | None:
    """(height, width) of a layer's 4-D output, None for any other output."""
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):  # never called, or no single output tensor
        return None
    return (shape[1], shape[2]) if len(shape) == 4 else None


def _resolve(model: keras.Model, name: str) -> tuple[str, list[keras.layers.Layer]]:
    """The qualified name and path of layers to `name` (qualified, or a plain name found once)."""
    matches = [(qualified, path) for qualified, path in _paths(model)
               if name in (qualified, qualified.rsplit(SEPARATOR, 1)[-1])]
    choices = conv_layer_names(model)
    if len(matches) != 1 or matches[0][0] not in choices:
        problem = "is ambiguous" if len(matches) > 1 else "is not a usable layer"
        raise ValueError(f"layer {name!r} {problem} for Grad-CAM in model '{model.name}'; "
                         f"choose one of: {', '.join(choices)}")
    return matches[0]


def _paths(model: keras.Model) -> Iterator[tuple[str, list[keras.layers.Layer]]]:
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            for name, path in _paths(layer):
                yield layer.name + SEPARATOR + name, [layer, *path]
        else:
            yield layer.name, [layer]


# --- the tapped forward pass


def _tapped(model: keras.Model, name: str, path: list[keras.layers.Layer]) -> keras.Model:
    """Cached: model inputs -> [the layer's feature maps, the head's input, probabilities]."""
    per_model = _TAPS.setdefault(model, {})
    if name not in per_model:
        per_model[name] = _tapped_model(model, path, tap_head=True)
    return per_model[name]


def _tapped_model(model: keras.Model, path: list[keras.layers.Layer],
                  tap_head: bool = False) -> keras.Model:
    """The same layers re-wired to also output path[-1]'s activations (and the head's input).

    Recursion handles nesting: the sub-model on the path is swapped for its own tapped copy.
    """
    taps: dict[str, Any] = {}
    head = model.layers[-1] if tap_head else None

    def call(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
        if layer is head:
            taps["head"] = args[0]
        if layer is not path[0]:
            return layer(*args, **kwargs)
        if len(path) == 1:
            taps["features"] = layer(*args, **kwargs)
            return taps["features"]
        taps["features"], outputs = _tapped_model(layer, path[1:])(*args, **kwargs)
        return outputs

    rebuilt = _replay(model, call)
    extra = [taps["head"]] if tap_head else []
    return keras.Model(rebuilt.inputs, [taps["features"], *extra, rebuilt.outputs[0]])


def _replay(model: keras.Model, call: Any) -> keras.Model:
    """Run the model's graph again through `call`, sharing its layers (weights are not copied)."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"Grad-CAM needs a model with one input and one output; "
                         f"'{model.name}' has {len(model.inputs)} and {len(model.outputs)}")
    if not isinstance(model, keras.Sequential):
        return keras.models.clone_model(model, clone_function=lambda layer: layer,
                                        call_function=call)
    # clone_model ignores call_function for Sequential models: a chain is easy to replay by hand.
    inputs = keras.Input(model.inputs[0].shape[1:], dtype=model.inputs[0].dtype)
    x = inputs
    for layer in model.layers:
        x = call(layer, x)
    return keras.Model(inputs, x)


# --- the heatmap itself


def _model_input(model: keras.Model, image: np.ndarray) -> np.ndarray:
    """The image at the model's input size (centre crop + resize when they differ)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    height, width = model.inputs[0].shape[1:3]
    if height is None or (height, width) == image.shape[:2]:
        return image
    return to_input(image, height)


def _class_index(class_index: int | None, probs: tf.Tensor) -> int:
    count = int(probs.shape[-1])
    if class_index is None:
        return int(tf.argmax(probs[0]))
    if not 0 <= class_index < count:
        raise ValueError(f"class_index must be from 0 to {count - 1}, got {class_index}")
    return int(class_index)


def _class_score(model: keras.Model, head_input: tf.Tensor, probs: tf.Tensor,
                 index: int) -> tf.Tensor:
    """The pre-softmax logit when the head is a softmax Dense, else the log-probability.

    A confident softmax saturates (p = 1.0 in float32 has zero gradient); the logit does not.
    """
    head = model.layers[-1]
    if isinstance(head, keras.layers.Dense) and head.activation is keras.activations.softmax:
        hidden = tf.cast(head_input, head.kernel.dtype)
        logits = tf.matmul(hidden, head.kernel) + (head.bias if head.use_bias else 0.0)
        return logits[0, index]
    return tf.math.log(tf.cast(probs[0, index], tf.float32) + 1e-12)


def _weighted_maps(features: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """ReLU of the feature maps weighted by their mean gradient, scaled to [0, 1]."""
    weights = grads.astype(np.float64).mean(axis=(0, 1))
    cam = np.maximum(features.astype(np.float64) @ weights, 0.0)
    peak = cam.max()
    return (cam / peak if peak > 0 else cam).astype(np.float32)
