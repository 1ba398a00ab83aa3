"""How statuses, runs, durations and shares read on every page."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from cifarkit import compare, runs

# status -> (badge colour, Material icon). Material icons ship with Streamlit's own font, so
# they draw on classroom machines that have no emoji font (emoji there are empty boxes).
STATUS_BADGES: dict[str, tuple[str, str]] = {
    "queued": ("gray", "schedule"), "running": ("blue", "directions_run"),
    "completed": ("green", "check_circle"), "failed": ("red", "cancel"),
    "stopped": ("orange", "stop_circle"), "interrupted": ("orange", "warning"),
    "cancelled": ("gray", "block"),  # left the device queue before training (cifarkit.queue)
    "damaged": ("red", "report"),
}
UNKNOWN_BADGE = ("gray", "help")


def status_label(status: str) -> str:
    """A status as a coloured badge for st.markdown/st.caption (":green-badge[...]")."""
    color, icon = STATUS_BADGES.get(status, UNKNOWN_BADGE)
    return f":{color}-badge[:material/{icon}: {status}]"


def status_column(label: str = "Status", help: str | None = None) -> Any:
    """A table column that shows status_cells as coloured pills (a cell cannot draw icons)."""
    names = list(STATUS_BADGES)
    return st.column_config.MultiselectColumn(
        label, options=names, color=[STATUS_BADGES[name][0] for name in names], help=help)


def status_cells(statuses: pd.Series) -> pd.Series:
    """The values status_column expects: each status as a one-item list."""
    return statuses.map(lambda status: [status])


def run_label(run: runs.Run) -> str:
    """How a run is named in pickers (plain text: options draw no icons): name, architecture
    (or "imported"), status, accuracy. ui.owners.picker_labels adds whose it is."""
    accuracy = run.info.get("test_accuracy")
    score = f" · acc {accuracy:.3f}" if isinstance(accuracy, float) else ""
    return f"{run.name} · {compare.model_label(run)} · {run.status}{score}"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def percent(value: float | None) -> str:
    """0.734 -> '73.4%'; anything that is not a number -> '–'."""
    return f"{value:.1%}" if isinstance(value, (int, float)) else "–"


def clock(seconds: float | None) -> str:
    """A duration as a clock reads: 118 -> '1:58', 3725 -> '1:02:05' (budgets and plans)."""
    minutes, secs = divmod(max(round(seconds or 0.0), 0), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def budget_text(budget_s: float, info: dict[str, Any], trained_s: float | None = None) -> str:
    """A budgeted run's line: 'Budget 2:00 · measuring speed…' until the run has measured its
    speed and fitted its epochs, then the fit ('… · 57 epochs fitted at 1,650 images/s ·
    planned 1:58'); `trained_s` (a run that has ended) adds the training time it took."""
    parts = [f"Budget {clock(budget_s)}"]
    epochs, speed = info.get("budget_epochs"), info.get("budget_images_per_second")
    if isinstance(epochs, int) and isinstance(speed, (int, float)):
        parts.append(f"{epochs} epoch{'s' if epochs != 1 else ''} fitted at {speed:,.0f} "
                     "images/s")
        planned = info.get("budget_planned_seconds")
        if isinstance(planned, (int, float)):
            parts.append(f"planned {clock(planned)}")
    elif trained_s is None:
        parts.append("measuring speed…")
    if trained_s is not None:
        parts.append(f"trained {clock(trained_s)}")
    return " · ".join(parts)
