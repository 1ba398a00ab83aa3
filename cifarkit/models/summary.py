"""How big a configured model is, before any training: parameters and weight memory.

The Train page shows this while the user is still choosing, so the model is built with random
weights (no ImageNet download; same shapes) and the Keras session is cleared afterwards.
"""

from __future__ import annotations

from dataclasses import replace

import keras

from cifarkit.config import RunConfig
from cifarkit.models.builder import BACKBONE, ModelStats, build_model, model_stats
from cifarkit.models.catalog import model_info


def describe(config: RunConfig, num_classes: int, image_size: int) -> ModelStats:
    """Trainable / non-trainable parameters and weights size of the model `config` would train."""
    pretrained = (model_info(config.model.architecture).kind == "transfer"
                  and config.model.weights != "none")
    offline = config.with_updates(model=replace(config.model, weights="none"))
    try:
        model = build_model(offline, num_classes, image_size)
        if pretrained:
            _freeze_batch_norm(model)
        return model_stats(model)
    finally:
        keras.backend.clear_session()


def _freeze_batch_norm(model: keras.Model) -> None:
    """What build_model does for pretrained backbones: their BatchNormalization stays frozen."""
    for layer in model.get_layer(BACKBONE).layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
