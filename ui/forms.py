"""What the Train and Tune forms share: choice lists, validate-then-launch, the log tail."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import streamlit as st

from cifarkit import settings
from cifarkit.classroom import Person
from cifarkit.config import CallbacksConfig, ConfigError, TrainingConfig
from ui.identity import current_person

LEARNING_RATES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
LOG_LINES = 25  # lines of a failed job's log shown

# How long a run trains: a time budget (the first click gives a model worth looking at before a
# class's attention runs out) or a number of epochs.
QUICK_BUDGET_MINUTES = 2  # "Train for 2 minutes", the page's first choice
CUSTOM_BUDGET_MINUTES = 10  # where "Train for … minutes" starts
BUDGET_MINUTES_RANGE = (1, 600)  # minutes a typed budget may ask for
LENGTHS = {"quick": f"Train for {QUICK_BUDGET_MINUTES} minutes",
           "minutes": "Train for … minutes", "epochs": "A number of epochs"}


class Validating(Protocol):
    def validate(self) -> None: ...


def labelled(choices: Sequence[str], labels: Mapping[str, str]) -> dict[str, str]:
    """Widget labels for a config's choice list, in the config's order; a choice the config adds
    without a label here fails at import (KeyError), not as a blank option."""
    return {choice: labels[choice] for choice in choices}


def rate_text(value: float) -> str:
    return f"{value:g}"


def valid(config: Validating, labels: Mapping[str, str] | None = None) -> bool:
    """config.validate(); False with the field (and its widget's label) and reason shown."""
    try:
        config.validate()
    except ConfigError as error:
        label = (labels or {}).get(error.field)
        where = f"{label} (`{error.field}`)" if label else error.field
        st.error(f"**{where}**: {error.reason}", icon=":material/error:")
        return False
    return True


def launch(start: Callable[[Person], str], what: str, then: Callable[[str], None]) -> None:
    """Start a job as the person signed in (`start(by)` returns its id); `then(job_id)` and a
    redraw, or the reason it could not start (a class limit names itself: NotAllowed)."""
    try:
        job_id = start(current_person())
    except (ValueError, OSError) as error:  # ConfigError, JobError and NotAllowed are ValueErrors
        st.error(f"Could not start the {what}: {error}", icon=":material/error:")
        return
    then(job_id)
    st.rerun()


def show_failure(what: str, error: str | None, log: Path, log_name: str) -> None:
    """A failed job: its recorded error, then the last LOG_LINES lines of its log (if any)."""
    st.error(f"The {what} failed: {error or 'no error recorded'}", icon=":material/error:")
    if log.is_file():
        with st.expander(f"Last lines of the {log_name}"):
            st.code("\n".join(log.read_text(errors="replace").splitlines()[-LOG_LINES:]),
                    language=None)


def with_default(choices: Sequence[float], default: float) -> tuple[float, ...]:
    """A slider's choices with the config's default among them, in order: the default recipe
    may change to a value the list lacks (a select_slider refuses a value it does not offer)."""
    return tuple(sorted({*choices, default}))


def budget_seconds(length: str, minutes: float) -> float | None:
    """training.time_budget_s for a length choice (LENGTHS); None for a number of epochs."""
    if length not in LENGTHS:
        raise ValueError(f"length must be one of {tuple(LENGTHS)}, got {length!r}")
    if length == "epochs":
        return None
    return 60.0 * (QUICK_BUDGET_MINUTES if length == "quick" else minutes)


def fit_to_budget(training: TrainingConfig, callbacks: CallbacksConfig,
                  budget_s: float | None) -> tuple[TrainingConfig, CallbacksConfig]:
    """Training and callbacks for a length: with a budget, early stopping and reduce-on-plateau
    are off, since the run plans its epochs and schedule in advance and must finish that plan
    (config validation refuses early stopping with a budget)."""
    if budget_s is None:
        return training, callbacks
    return (replace(training, time_budget_s=budget_s),
            replace(callbacks, early_stopping=False, reduce_lr=False))


@st.cache_resource(show_spinner=False)
def gpu_count() -> int:
    """GPUs a worker may use, as the device queue counts them (no TensorFlow import); cached
    for the server's lifetime: hardware does not change while the app runs."""
    return len(settings.visible_gpus())


def distribute_refusal(gpus: int) -> str | None:
    """Why "spread each batch over all GPUs" cannot help here, or None with 2 GPUs or more."""
    if gpus >= 2:
        return None
    seen = "no GPU" if gpus == 0 else "one GPU"
    return f"Needs 2 GPUs or more; this computer has {seen}."
