"""What a live panel reads from disk, shared by every session of the server.

Thirty tabs each polling Train every 2 s would otherwise read every run's config and status,
parse every metrics file and rebuild every curves figure per tab per poll, on the CPUs the
training runs on. Here the run listing is read at most once a second per runs folder, and a
run's metrics and figure once per version of its metrics file. The values are shared, so
callers only read them.
"""

from __future__ import annotations

from pathlib import Path
from time import monotonic
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from cifarkit import charts, rundir, runs
from ui.cache import by_file

LISTING_SECONDS = 1  # fresh enough for a 2 s poll; a session's own action clears it at once


@st.cache_resource(max_entries=8, show_spinner=False)  # older ticks drop out as new ones come
def _listing(folder: str, tick: int) -> list[runs.Run]:
    return runs.list_runs(folder)


def run_listing() -> list[runs.Run]:
    """runs.list_runs() of the configured runs folder, read once per LISTING_SECONDS tick."""
    return _listing(str(runs.root_dir()), int(monotonic() // LISTING_SECONDS))


def forget_listing() -> None:
    """Drop the shared listing: after a stop, resume or launch, the next read sees it."""
    _listing.clear()


@by_file(max_entries=256)
def _metrics(metrics_file: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    folder = Path(metrics_file).parent
    return rundir.epoch_rows(folder), rundir.latest_batch(folder)


@by_file(max_entries=128)
def _curves(metrics_file: str) -> go.Figure:
    # The rows _metrics already parsed for this version: the file is read once, not twice.
    return charts.training_curves(_metrics(Path(metrics_file))[0])


def metrics(run: runs.Run) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The run's epoch rows and its latest batch row, parsed once per metrics-file version."""
    path = run.path / rundir.METRICS
    return _metrics(path) if path.is_file() else ([], None)


def curves(run: runs.Run) -> go.Figure:
    """charts.training_curves of the run, built once per metrics-file version (building the
    figure costs about 40 ms; handing a built one to st.plotly_chart about 1 ms)."""
    return _curves(run.path / rundir.METRICS)


def planned_epochs(run: runs.Run) -> int | None:
    """The epochs the run will train: its config's, or for a time budget the count fitted to
    the measured speed (status budget_epochs); None while a budgeted run still measures."""
    if run.config.training.time_budget_s is None:
        return run.config.training.epochs
    fitted = run.info.get("budget_epochs")
    return fitted if isinstance(fitted, int) and not isinstance(fitted, bool) and fitted else None
