"""Layers as older Keras (TF 2 / Keras 2) wrote them in .h5 files, read by Keras 3.

Teachable Machine's "Keras" export is such a file: its DepthwiseConv2D layers carry
`groups: 1`, a keyword Keras 3's DepthwiseConv2D no longer takes, and the whole file fails to
load over it. These registered stand-ins accept and drop what Keras 3 lacks; they are plain
Keras layers otherwise (safe-mode loadable, and a .keras file saved from them reloads).
"""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="cifarkit")
class LegacyDepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """DepthwiseConv2D that accepts Keras 2's `groups` (always 1 for a depthwise layer)."""

    def __init__(self, *args: Any, groups: int = 1, **kwargs: Any) -> None:
        if groups != 1:
            raise ValueError(f"a depthwise convolution with groups={groups} is not one Keras "
                             "3 can rebuild")
        super().__init__(*args, **kwargs)


def custom_objects() -> dict[str, type]:
    """What Keras' legacy .h5 loader should build for these class names instead."""
    return {"DepthwiseConv2D": LegacyDepthwiseConv2D}
