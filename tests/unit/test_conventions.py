"""The input conventions table: choices, typed mean/std, and which convention is clearly best."""

from __future__ import annotations

import pytest

from cifarkit import conventions
from cifarkit.conventions import CONVENTIONS, MEAN_STD, RAW, compare


def _flags(right: int, count: int = 300, offset: int = 0) -> list[bool]:
    """`right` of `count` images right, starting at `offset` (so overlaps are chosen)."""
    return [offset <= index < offset + right for index in range(count)]


def test_the_table_covers_the_scales_and_keras_modes() -> None:
    assert list(CONVENTIONS) == ["0-255", "0-1", "-1-1", "torch", "caffe"]
    assert conventions.CHOICES == ("auto", "0-255", "0-1", "-1-1", "torch", "caffe", "mean_std")
    assert {c.mode for c in CONVENTIONS.values()} == {"none", "scale", "tf", "torch", "caffe"}
    assert [key for key, c in CONVENTIONS.items() if c.is_identity] == [RAW]


def test_the_issue_example_is_clear_and_worded_as_asked() -> None:
    result = compare({"0-255": _flags(51), "0-1": _flags(81), "-1-1": _flags(36)}, chance=0.1)
    assert result.best == result.pick == "0-1" and result.clear
    assert result.text() == "0…1: 27 %, 0…255: 17 %, −1…1: 12 %"
    assert result.scores == {"0-255": 0.17, "0-1": 0.27, "-1-1": 0.12}
    assert result.to_json()["images"] == 300


def test_a_tie_takes_the_first_in_table_order() -> None:
    """−1…1 and ImageNet mean/std are near-affine: a model scores alike under both."""
    result = compare({"0-255": _flags(45), "-1-1": _flags(114), "torch": _flags(117, offset=3)},
                     chance=0.1)
    assert result.best == "torch" and not result.clear
    assert result.pick == "-1-1"


def test_raw_pixels_are_kept_unless_a_rescaling_clearly_pays() -> None:
    """A model with its own Rescaling layer (or none needed): equal scores keep raw pixels."""
    result = compare({"0-255": _flags(120), "0-1": _flags(124, offset=10)}, chance=0.1)
    assert result.best == "0-1" and result.pick == RAW and not result.clear


def test_an_untrained_model_at_chance_keeps_raw_pixels() -> None:
    result = compare({"0-255": _flags(28), "0-1": _flags(40), "-1-1": _flags(27)}, chance=0.1)
    assert result.best == "0-1" and result.pick == RAW and not result.clear


def test_a_small_lead_over_many_disagreements_is_not_clear() -> None:
    """10 points ahead, but on images the two mostly disagree about: within McNemar's noise
    at 60 images; the same shares over 3000 images are clear."""
    few = compare({"0-255": _flags(12, 60), "0-1": _flags(18, 60, offset=12)}, chance=0.1)
    many = compare({"0-255": _flags(1200, 3000), "0-1": _flags(1800, 3000, offset=1200)},
                   chance=0.1)
    assert few.pick == RAW and not few.clear
    assert many.pick == "0-1" and many.clear


def test_compare_refuses_unequal_or_empty_scoring() -> None:
    with pytest.raises(ValueError, match="no conventions to compare"):
        compare({})
    with pytest.raises(ValueError, match="scored on the same, non-empty images"):
        compare({"0-1": [True], "0-255": [True, False]})


def test_a_typed_mean_std_round_trips_through_status_json() -> None:
    chosen = conventions.get(MEAN_STD, [0.4914, 0.4822, 0.4465], [0.247, 0.2435, 0.2616])
    assert chosen.label == "mean (0.4914, 0.4822, 0.4465), std (0.247, 0.2435, 0.2616) on 0…1"
    assert conventions.from_json(chosen.to_json()) == chosen
    assert conventions.from_json(CONVENTIONS["0-1"].to_json()) == CONVENTIONS["0-1"]
    assert conventions.from_json(None) == CONVENTIONS[RAW]  # a run of our own: raw pixels


@pytest.mark.parametrize(("call", "phrase"), [
    (lambda: conventions.get("0..1"), "unknown input convention '0..1': choose one of auto,"),
    (lambda: conventions.get(MEAN_STD), "the mean/std convention needs a mean and a std"),
    (lambda: conventions.mean_std([0.5, 0.5], [0.2, 0.2, 0.2]),
     "mean must be three finite numbers (R, G, B), got [0.5, 0.5]"),
    (lambda: conventions.mean_std([0.5] * 3, [0.2, 0.0, 0.2]),
     "std must be above 0 for every channel, got [0.2, 0.0, 0.2]"),
    (lambda: conventions.parse_numbers("0.5, half"), "expected numbers separated by commas"),
])
def test_bad_choices_are_refused_with_the_reason(call, phrase: str) -> None:
    with pytest.raises(ValueError) as refused:
        call()
    assert phrase in str(refused.value)


def test_typed_numbers_are_read_with_commas_or_spaces() -> None:
    assert conventions.parse_numbers("0.49, 0.48 0.45") == [0.49, 0.48, 0.45]
