"""How statuses, runs, durations and shares read on every page."""

from __future__ import annotations

from cifarkit import compare, runs

STATUS_ICONS = {
    "queued": "⏳", "running": "🏃", "completed": "✅", "failed": "❌",
    "stopped": "⏹️", "interrupted": "⚠️",
}


def status_label(status: str) -> str:
    return f"{STATUS_ICONS.get(status, '❔')} {status}"


def run_label(run: runs.Run) -> str:
    """How a run is named in pickers: name, architecture (or "imported"), status, accuracy."""
    accuracy = run.info.get("test_accuracy")
    score = f" · acc {accuracy:.3f}" if isinstance(accuracy, float) else ""
    return f"{run.name} · {compare.model_label(run)} · {status_label(run.status)}{score}"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def percent(value: float | None) -> str:
    """0.734 -> '73.4%'; anything that is not a number -> '–'."""
    return f"{value:.1%}" if isinstance(value, (int, float)) else "–"
