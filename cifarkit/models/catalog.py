"""The one table of every architecture cifarkit can build.

Pure data, no Keras import, so configs validate and pages list models instantly. Builders are
named as "module:attribute" and resolved only when a model is actually built.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInfo:
    """What the UI, config validation and the builder need to know about one architecture."""

    name: str
    kind: str  # "scratch" | "transfer"
    builder: str  # "module:attribute" of the builder function or Keras Applications class
    min_input: int = 32  # smallest input side the architecture accepts (pixels)
    default_input: int = 32  # input side that gives a good result for the cost
    preprocess: str = "scale"  # scale (to [0,1]) | caffe | tf | torch | none (backbone does it)
    description: str = ""


def _scratch(name: str, default_input: int, description: str) -> ModelInfo:
    return ModelInfo(name, "scratch", f"cifarkit.models.scratch:{name}", 32, default_input,
                     "scale", description)


def _app(name: str, preprocess: str, min_input: int = 32, default_input: int = 96,
         description: str = "") -> ModelInfo:
    return ModelInfo(name, "transfer", f"keras.applications:{name}", min_input, default_input,
                     preprocess, description or f"Keras Applications {name} backbone")


_EFFICIENTNET = [_app(f"EfficientNetB{i}", "none", default_input=96) for i in range(8)]
_EFFICIENTNET_V2 = [_app(f"EfficientNetV2{v}", "none", default_input=96)
                    for v in ("B0", "B1", "B2", "B3", "S", "M", "L")]
_CONVNEXT = [_app(f"ConvNeXt{v}", "none", default_input=96)
             for v in ("Tiny", "Small", "Base", "Large", "XLarge")]

MODELS: dict[str, ModelInfo] = {info.name: info for info in [
    _scratch("airbench_cpu", 32, "airbench-style whitened conv net sized for a CPU budget "
             "(recommended default, ~1.2M params)"),
    _scratch("resnet_fast", 32, "Small fast residual network (~0.5M params)"),
    _scratch("simple_cnn", 32, "Seed reports' simple CNN: 3 conv layers and 2 dense layers"),
    _scratch("conv4_bn", 32, "Seed reports' 4-block conv / batch-norm / pooling CNN, dense head"),
    _scratch("vgg_style", 32, "VGG-style stacks of 3x3 convolutions (seed 'third' model)"),
    _scratch("resnet50_style", 32, "ResNet-50 architecture trained from scratch (slow on CPU)"),
    _scratch("custom_cnn", 32, "Conv blocks of tunable width (base_filters) and depth (blocks)"),
    _app("VGG16", "caffe"),
    _app("VGG19", "caffe"),
    _app("ResNet50", "caffe"),
    _app("ResNet50V2", "tf"),
    _app("MobileNet", "tf"),
    _app("MobileNetV2", "tf"),
    _app("DenseNet121", "torch"),
    _app("Xception", "tf", min_input=71, default_input=96),
    _app("InceptionV3", "tf", min_input=75, default_input=96),
    _app("InceptionResNetV2", "tf", min_input=75, default_input=96),
    *_EFFICIENTNET,
    *_EFFICIENTNET_V2,
    *_CONVNEXT,
]}

DEFAULT_MODEL = "airbench_cpu"  # chosen by measurement (README, Performance)


def model_info(name: str) -> ModelInfo:
    """Look up an architecture, with a message listing the choices when the name is unknown."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of {sorted(MODELS)}") from None


def names(kind: str | None = None) -> list[str]:
    """Architecture names, optionally only 'scratch' or 'transfer' ones, in table order."""
    return [name for name, info in MODELS.items() if kind in (None, info.kind)]
