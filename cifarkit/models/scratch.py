"""Feature extractors trained from scratch: `(x) -> 4-D features`, the builder adds the head.

Each function takes the preprocessed image tensor (values scaled to 0..1) and returns a feature
map; layer names carry the block they belong to so summaries and Grad-CAM read naturally.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras
from keras import layers

from cifarkit.whitening import whitening_conv

if TYPE_CHECKING:
    from cifarkit.config import ModelConfig

# --- resnet_fast: hyperparameters in one place -------------------------------------------------
# A ResNet-9 / airbench-style net shrunk for CPU: a stem, then 3 stages of
# conv -> max-pool (halves the side) -> one residual block of two convs.
FAST_STEM_FILTERS = 24  # channels of the stem conv at full resolution (airbench's whitening width)
FAST_STAGE_FILTERS = (32, 64, 128)  # channels per stage; sides 32 -> 16 -> 8 -> 4 (~0.5M params)
BN_MOMENTUM = 0.6  # airbench-like fast statistics: 0.9 left short runs at chance (measured)

# --- airbench_cpu: hyperparameters in one place ----------------------------------------------
# airbench94 (Keller Jordan) sized for a CPU budget: a frozen patch-whitening conv, then three
# blocks of conv -> max-pool -> BN -> GELU -> conv -> BN -> GELU. Widths were chosen by measurement
# on the CIFAR-10 sample (README, Performance): at a fixed 2-minute budget the 64/128/256 net
# beat both a narrower one with twice the epochs and resnet_fast.
AIRBENCH_WIDTHS = (64, 128, 256)  # channels per block; sides 31 -> 15 -> 7 -> 3
AIRBENCH_BN_MOMENTUM = 0.6  # Keras convention (weight of the old statistic), as resnet_fast
AIRBENCH_BN_EPSILON = 1e-5

# --- seed architectures -----------------------------------------------------------------------
SIMPLE_CNN_FILTERS = (32, 64, 64)  # the seed reports' simple CNN (TensorFlow tutorial shape)
CONV4_BLOCKS = ((32, 2), (64, 2), (96, 1), (128, 1))  # (filters, convs) per block (~0.25M params)
CONV4_DROPOUT = 0.25  # dropout after each conv4_bn block (seed "second_32")
VGG_BLOCKS = (64, 128, 256)  # filters of the three VGG blocks, two 3x3 convs each (~1.2M params)


def conv_bn_relu(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """3x3 convolution, batch norm, ReLU: the unit every net here is made of."""
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _residual_block(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """Two conv-bn-relu units added back onto their input (identity shortcut)."""
    shortcut = x
    x = conv_bn_relu(x, filters, f"{name}a")
    x = conv_bn_relu(x, filters, f"{name}b")
    return layers.Add(name=f"{name}_add")([shortcut, x])


def resnet_fast(x: keras.KerasTensor) -> keras.KerasTensor:
    """Recommended default: a small residual net that trains in minutes on a CPU."""
    x = conv_bn_relu(x, FAST_STEM_FILTERS, "stem")
    for index, filters in enumerate(FAST_STAGE_FILTERS, start=1):
        x = conv_bn_relu(x, filters, f"stage{index}")
        x = layers.MaxPooling2D(2, name=f"stage{index}_pool")(x)
        x = _residual_block(x, filters, f"stage{index}_res")
    return x


def _airbench_unit(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    x = layers.BatchNormalization(momentum=AIRBENCH_BN_MOMENTUM, epsilon=AIRBENCH_BN_EPSILON,
                                  name=f"{name}_bn")(x)
    return layers.Activation("gelu", name=f"{name}_gelu")(x)


def airbench_cpu(x: keras.KerasTensor) -> keras.KerasTensor:
    """Recommended default: airbench's whitened conv net, small enough for minutes on a CPU.

    The whitening layer is filled from the training images by training (cifarkit.whitening).
    """
    x = whitening_conv()(x)
    x = layers.Activation("gelu", name="whiten_gelu")(x)
    for index, filters in enumerate(AIRBENCH_WIDTHS, start=1):
        name = f"block{index}"
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv1")(x)
        x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
        x = _airbench_unit(x, f"{name}_1")
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(x)
        x = _airbench_unit(x, f"{name}_2")
    return x


def simple_cnn(x: keras.KerasTensor) -> keras.KerasTensor:
    """The seed reports' baseline: Conv32-MaxPool-Conv64-MaxPool-Conv64, 3x3 ReLU, no padding."""
    first, second, third = SIMPLE_CNN_FILTERS
    x = layers.Conv2D(first, 3, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(second, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    return layers.Conv2D(third, 3, activation="relu", name="conv3")(x)


def conv4_bn(x: keras.KerasTensor) -> keras.KerasTensor:
    """Seed "second_32" style: 4 blocks of conv(s), batch norm, max-pool, dropout."""
    for index, (filters, convs) in enumerate(CONV4_BLOCKS, start=1):
        name = f"block{index}"
        for conv in range(1, convs + 1):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu",
                              name=f"{name}_conv{conv}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
        x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
        x = layers.Dropout(CONV4_DROPOUT, name=f"{name}_dropout")(x)
    return x


def vgg_style(x: keras.KerasTensor) -> keras.KerasTensor:
    """Seed "third" style: VGG blocks of two 3x3 conv-bn-relu units and a max-pool."""
    for index, filters in enumerate(VGG_BLOCKS, start=1):
        x = conv_bn_relu(x, filters, f"block{index}_1")
        x = conv_bn_relu(x, filters, f"block{index}_2")
        x = layers.MaxPooling2D(2, name=f"block{index}_pool")(x)
    return x


def resnet50_style(x: keras.KerasTensor) -> keras.KerasTensor:
    """The ResNet-50 architecture with random weights, as a nested model named "resnet50"."""
    backbone = keras.applications.ResNet50(include_top=False, weights=None,
                                           input_shape=tuple(x.shape[1:]), name="resnet50")
    return backbone(x)


def custom_cnn(x: keras.KerasTensor, model: ModelConfig) -> keras.KerasTensor:
    """The tunable net: `model.blocks` VGG blocks, filters doubling from `model.base_filters`.

    Width and depth come from the config (not constants) so a hyperparameter search can vary
    them and its best trial is still an ordinary RunConfig.
    """
    for index in range(1, model.blocks + 1):
        filters = model.base_filters * 2 ** (index - 1)
        x = conv_bn_relu(x, filters, f"block{index}_1")
        x = conv_bn_relu(x, filters, f"block{index}_2")
        x = layers.MaxPooling2D(2, name=f"block{index}_pool")(x)
    return x
