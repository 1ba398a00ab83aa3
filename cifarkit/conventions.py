"""Input conventions: the pixel scale an imported model expects, named, checked and compared.

Models trained elsewhere often scale images outside the model (x / 255 in the notebook), so fed
raw pixels they score far below what they are worth, silently. A convention names that scale
once; cifarkit.modelfiles builds it into the imported model as its first layer, so every later
use of the run (evaluation, Errors, Predict, Grad-CAM, ensembles, exports) feeds raw 0…255
pixels as it does for its own runs. No Keras here: pages import this table for their choices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

AUTO = "auto"  # the import choice "score every convention and take the clearly best"
RAW = "0-255"  # raw pixels: what a model gets when nothing is chosen (and the fallback)
MEAN_STD = "mean_std"  # a per-channel mean/std the user gives (0…1 units, as torchvision's)


@dataclass(frozen=True)
class Convention:
    """One input convention: how raw 0…255 RGB pixels become what the model was trained on.

    mode is cifarkit.models.layers.ImagePreprocess's mode (Keras' own preprocess_input for
    caffe, tf and torch); mean/std are set only for MEAN_STD, in 0…1 units.
    """

    key: str
    label: str
    mode: str | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    @property
    def is_identity(self) -> bool:
        """Raw pixels: the model file needs no extra layer (it rescales by itself, or not)."""
        return self.mode == "none"

    def to_json(self) -> dict[str, Any]:
        """What status.json records, read back by from_json."""
        fields = {"key": self.key, "label": self.label}
        if self.key == MEAN_STD:
            fields.update(mean=list(self.mean or ()), std=list(self.std or ()))
        return fields


# The table: key -> convention, in the order ties are settled (see compare).
CONVENTIONS: dict[str, Convention] = {c.key: c for c in (
    Convention("0-255", "0…255 (raw pixels; the model rescales itself, e.g. a Rescaling "
               "layer, EfficientNet, ConvNeXt)", mode="none"),
    Convention("0-1", "0…1 (pixels / 255)", mode="scale"),
    Convention("-1-1", "−1…1 (pixels / 127.5 − 1; Keras 'tf' mode: MobileNet, Inception, "
               "Xception, Teachable Machine)", mode="tf"),
    Convention("torch", "ImageNet mean/std on 0…1 (Keras 'torch' mode: DenseNet, PyTorch "
               "style)", mode="torch"),
    Convention("caffe", "ImageNet BGR minus mean (Keras 'caffe' mode: VGG, ResNet50)",
               mode="caffe"),
)}
# Short names for the comparison line: "0…1: 27 %, 0…255: 17 %, −1…1: 12 %".
SHORT = {"0-1": "0…1", "0-255": "0…255", "-1-1": "−1…1", "torch": "ImageNet mean/std",
         "caffe": "caffe (BGR)", MEAN_STD: "mean/std"}
CHOICES = (AUTO, *CONVENTIONS, MEAN_STD)  # what the page and the CLI offer
SAMPLE = 300  # test images each candidate is scored on: a few hundred tell 27 % from 17 %
MIN_MARGIN = 0.02  # a best convention must lead the next by at least 2 points of accuracy


def mean_std(mean: Sequence[float], std: Sequence[float]) -> Convention:
    """A per-channel (x / 255 − mean) / std convention, mean and std in 0…1 units."""
    mean, std = _three("mean", mean), _three("std", std)
    if min(std) <= 0:
        raise ValueError(f"std must be above 0 for every channel, got {list(std)}")
    text = ", ".join(f"{m:g}" for m in mean), ", ".join(f"{s:g}" for s in std)
    return Convention(MEAN_STD, f"mean ({text[0]}), std ({text[1]}) on 0…1",
                      mean=mean, std=std)


def _three(name: str, values: Sequence[float]) -> tuple[float, float, float]:
    try:
        numbers = tuple(float(value) for value in values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be three numbers (R, G, B), got {values!r}") from error
    if len(numbers) != 3 or not all(math.isfinite(n) for n in numbers):
        raise ValueError(f"{name} must be three finite numbers (R, G, B), got {list(values)}")
    return numbers  # type: ignore[return-value]  # length checked above


def get(key: str, mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None) -> Convention:
    """The convention a user chose by key (MEAN_STD needs mean and std)."""
    if key == MEAN_STD:
        if mean is None or std is None:
            raise ValueError("the mean/std convention needs a mean and a std (three numbers "
                             "each, in 0…1 units, e.g. 0.4914,0.4822,0.4465)")
        return mean_std(mean, std)
    if key not in CONVENTIONS:
        raise ValueError(f"unknown input convention {key!r}: choose one of "
                         f"{', '.join(CHOICES)}")
    return CONVENTIONS[key]


def parse_numbers(text: str) -> list[float]:
    """'0.49, 0.48 0.45' -> [0.49, 0.48, 0.45]: what a user types for a mean or a std."""
    try:
        return [float(part) for part in text.replace(",", " ").split()]
    except ValueError as error:
        raise ValueError(f"expected numbers separated by commas, got {text!r}") from error


def from_json(fields: Mapping[str, Any] | None) -> Convention:
    """A convention from status.json; none recorded (a run of our own) means raw pixels."""
    if not fields:
        return CONVENTIONS[RAW]
    return get(str(fields.get("key")), fields.get("mean"), fields.get("std"))


@dataclass(frozen=True)
class Comparison:
    """Accuracy of one model on the same images under each candidate convention."""

    scores: dict[str, float]  # key -> accuracy, in CONVENTIONS order
    images: int
    best: str  # the highest score (the first in table order on a tie)
    tied: tuple[str, ...]  # best and every other that best does not clearly beat, table order
    above_chance: bool  # best clearly beats a constant guess (an untrained model does not)

    @property
    def clear(self) -> bool:
        """Best beats every other (and chance) by more than noise would explain."""
        return self.above_chance and self.tied == (self.best,)

    @property
    def pick(self) -> str:
        """What AUTO uses: the first tied in table order; raw pixels for a model at chance."""
        return self.tied[0] if self.above_chance else RAW

    def text(self) -> str:
        """'0…1: 27 %, 0…255: 17 %, −1…1: 12 %', best first."""
        ranked = sorted(self.scores.items(), key=lambda item: -item[1])
        return ", ".join(f"{SHORT.get(key, key)}: {score:.0%}".replace("%", " %")
                         for key, score in ranked)

    def to_json(self) -> dict[str, Any]:
        return {"scores": self.scores, "images": self.images, "best": self.best,
                "tied": list(self.tied), "above_chance": self.above_chance,
                "clear": self.clear, "pick": self.pick, "text": self.text()}


def compare(correct: Mapping[str, Sequence[bool]], chance: float = 0.0) -> Comparison:
    """Which convention is best, how clearly, and which one to use, from per-image right/wrong
    under each (in table order).

    Clearly: a lead of MIN_MARGIN and of twice the noise of a paired comparison (McNemar:
    images right under exactly one of the two). Conventions the best does not clearly beat
    score the same for all a few hundred images can tell, so the first of them in table order
    is used: raw pixels before any rescaling (nothing changed unless it clearly pays), the
    common scales before the rarer ones. A best no clearly better than chance (an untrained
    model) leaves raw pixels too.
    """
    if not correct:
        raise ValueError("no conventions to compare")
    flags = {key: [bool(flag) for flag in values] for key, values in correct.items()}
    count = len(next(iter(flags.values())))
    if count == 0 or any(len(values) != count for values in flags.values()):
        raise ValueError("every convention must be scored on the same, non-empty images")
    scores = {key: sum(values) / count for key, values in flags.items()}
    best = max(scores, key=lambda key: scores[key])  # the first of equal scores

    def beaten(other: str) -> bool:  # does best clearly beat other?
        discordant = sum(a != b for a, b in zip(flags[best], flags[other], strict=True))
        lead = scores[best] - scores[other]
        return lead >= MIN_MARGIN and lead * count >= 2 * math.sqrt(discordant)

    chance = float(chance)
    above_chance = scores[best] - chance >= MIN_MARGIN + 2 * math.sqrt(
        chance * (1 - chance) / count)
    tied = tuple(key for key in scores if key == best or not beaten(key))
    return Comparison(scores, count, best, tied, above_chance)
