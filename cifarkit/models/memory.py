"""Memory a model needs to train, from its parameter counts (no Keras import).

Adam-style optimizers keep two slots per trainable weight and training keeps one gradient per
trainable weight: about three extra copies of the trainable part, before activations.
"""

from __future__ import annotations

EXTRA_COPIES = 3  # gradient + two optimizer slots per trainable weight


def training_mb(weights_mb: float, trainable_params: float, total_params: float) -> float:
    """Weights plus gradients and optimizer state, in MB (activations not included)."""
    trainable_share = trainable_params / max(total_params, 1)
    return weights_mb + EXTRA_COPIES * weights_mb * trainable_share
