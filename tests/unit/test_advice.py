"""advice: the hint for a search stuck at chance, and Predict's note on unknown objects."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cifarkit.advice import chance_hint, outside_classes_note


def trials(*scores: float, epochs: int = 1, status: str = "completed") -> pd.DataFrame:
    return pd.DataFrame({"trial": range(1, len(scores) + 1), "status": [status] * len(scores),
                         "epochs": [epochs] * len(scores), "score": scores,
                         "val_accuracy": scores})


def test_all_trials_at_chance_say_they_were_too_short() -> None:
    assert chance_hint(trials(0.1, 0.12, 0.098), 10) == (
        "Every trial scored near chance (10%): trials of 1 epoch are too short to rank "
        "settings. Try 3 or more epochs per trial, or more training images.")


def test_longer_trials_get_a_longer_suggestion() -> None:
    hint = chance_hint(trials(0.011, 0.02, epochs=4), 100)
    assert hint is not None and "(1%): trials of 4 epochs are" in hint and "Try 8 or more" in hint


def test_one_trial_that_learned_means_no_hint() -> None:
    assert chance_hint(trials(0.1, 0.151), 10) is None
    assert chance_hint(trials(0.1, 0.15), 10) is not None  # the margin is inclusive


def test_failed_and_unscored_trials_do_not_count() -> None:
    table = pd.concat([trials(0.1), trials(0.9, status="failed")], ignore_index=True)
    assert chance_hint(table, 10) is not None
    assert chance_hint(trials(np.nan), 10) is None
    assert chance_hint(trials(), 10) is None
    assert chance_hint(trials(0.1), None) is None  # class count not recorded yet


def test_outside_classes_note_names_the_count() -> None:
    assert outside_classes_note(10).startswith("The model only knows these 10 classes: a photo")
    assert "can only get one of these labels" in outside_classes_note(2)
