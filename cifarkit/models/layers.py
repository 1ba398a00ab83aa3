"""Custom layers that saved models need, registered so `load_model(..., safe_mode=True)` works.

Lambda layers would need unsafe deserialisation; these small named layers do the same job.
"""

from __future__ import annotations

from typing import Any

import keras
from keras.applications import imagenet_utils

from cifarkit import (
    augment,  # noqa: F401 - registers cifarkit>RandomShift for loading
    schedules,  # noqa: F401 - registers cifarkit>WarmupDecay for loading
)

PREPROCESS_MODES = ("scale", "caffe", "tf", "torch", "none")


@keras.saving.register_keras_serializable(package="cifarkit")
class ImagePreprocess(keras.layers.Layer):
    """Map raw 0..255 pixels to what a backbone expects, inside the model.

    Keeping it in the model means every caller (training, evaluation, the Predict page) feeds raw
    pixels. Modes: scale (x/255), caffe | tf | torch (Keras' ImageNet `preprocess_input`),
    none (the backbone rescales by itself, e.g. EfficientNet and ConvNeXt).
    """

    def __init__(self, mode: str = "scale", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in PREPROCESS_MODES:
            raise ValueError(f"preprocess mode must be one of {PREPROCESS_MODES}, got {mode!r}")
        self.mode = mode

    def call(self, inputs: Any) -> Any:
        if self.mode == "none":
            return inputs
        if self.mode == "scale":
            return inputs / 255.0
        return imagenet_utils.preprocess_input(inputs, data_format="channels_last", mode=self.mode)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}
