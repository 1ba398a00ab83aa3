"""What the Train and Tune forms share: choice lists, validate-then-launch, the log tail."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import streamlit as st

from cifarkit.classroom import Person
from cifarkit.config import ConfigError
from ui.identity import current_person

LEARNING_RATES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
LOG_LINES = 25  # lines of a failed job's log shown


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
