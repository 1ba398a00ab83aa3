"""Hints a page shows when results need explaining (plain text: no streamlit, no keras)."""

from __future__ import annotations

import pandas as pd

from cifarkit.formatting import plural

# A trial whose validation accuracy is at most chance plus this (absolute) learned nothing
# that can rank it: 15 % on 10 classes, 6 % on 100, 55 % on 2.
CHANCE_MARGIN = 0.05
MIN_USEFUL_EPOCHS = 3  # the fewest epochs per trial worth suggesting


def chance_hint(trials: pd.DataFrame, num_classes: int | None,
                margin: float = CHANCE_MARGIN) -> str | None:
    """Why a search found nothing, when every finished trial scored near chance; else None.

    `trials` is searches.search_progress()["table"] (columns status, epochs, val_accuracy);
    num_classes is the search's status.json "num_classes" (None until the worker wrote it).
    Such a search ranks noise: the useful advice is longer trials or more data, not more trials.
    """
    if not isinstance(num_classes, int) or num_classes < 2:
        return None
    done = trials[trials["status"] == "completed"].dropna(subset=["val_accuracy"])
    if done.empty:
        return None
    chance = 1.0 / num_classes
    if (done["val_accuracy"] > chance + margin).any():
        return None
    epochs = pd.to_numeric(done["epochs"], errors="coerce").max() if "epochs" in done else None
    if epochs is None or pd.isna(epochs):
        length, suggested = "these trials are", MIN_USEFUL_EPOCHS
    else:
        length = f"trials of {plural(int(epochs), 'epoch')} are"
        suggested = max(MIN_USEFUL_EPOCHS, 2 * int(epochs))
    return (f"Every trial scored near chance ({chance:.0%}): {length} too short to rank "
            f"settings. Try {suggested} or more epochs per trial, or more training images.")


def outside_classes_note(class_count: int) -> str:
    """What Predict must say before a student uploads a photo of anything at all."""
    return (f"The model only knows these {plural(class_count, 'class', 'classes')}: a photo of "
            "something outside them can only get one of these labels (there is no “none of "
            "these”).")
