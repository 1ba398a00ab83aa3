"""The load test's arithmetic, apart from any server so that it can be unit-tested: latency
summaries, a run's training throughput from its metrics rows, and the drop under watchers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


def latency(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """Count, median and 95th percentile (numpy's linear interpolation) of rerun times."""
    if not seconds:
        return {"n": 0, "median": None, "p95": None}
    values = np.asarray(seconds, dtype=float)
    return {"n": len(values), "median": float(np.median(values)),
            "p95": float(np.percentile(values, 95))}


def steady_stretches(rows: Iterable[dict[str, Any]],
                     batch_size: int) -> list[tuple[float, float, int]]:
    """(start, end, images) of each stretch a run trained between consecutive batch rows of
    one epoch, start and end on the run's training clock (`elapsed`).

    Batch rows are written at most every 0.5 s with the step reached. Time before an epoch's
    first row (data pipeline start, graph tracing) and validation after its last are left out,
    and so is each stretch ending on the epoch's last step, whose batch may be partial: what
    remains is the steady training speed.
    """
    stretches = []
    previous: dict[str, Any] | None = None
    for row in rows:
        if row.get("kind") != "batch":
            continue
        same_epoch = previous is not None and previous["epoch"] == row["epoch"]
        if same_epoch and previous["step"] < row["step"] < row["steps"]:
            stretches.append((previous["elapsed"], row["elapsed"],
                              (row["step"] - previous["step"]) * batch_size))
        previous = row
    return stretches


def within(stretches: Iterable[tuple[float, float, int]], offset: float,
           window: tuple[float, float]) -> tuple[int, float]:
    """(images, seconds) of the stretches that lie wholly inside `window` (wall-clock times)
    once `offset` (the wall time of the run's clock zero) is added to them."""
    images, seconds = 0, 0.0
    for start, end, count in stretches:
        if window[0] <= start + offset and end + offset <= window[1]:
            images += count
            seconds += end - start
    return images, seconds


def throughput(measured: Iterable[tuple[int, float]]) -> float | None:
    """Images per second over several runs' (images, seconds): long runs weigh more."""
    pairs = list(measured)
    images = sum(pair[0] for pair in pairs)
    seconds = sum(pair[1] for pair in pairs)
    return images / seconds if seconds > 0 else None


def drop(quiet: float | None, watched: float | None) -> float | None:
    """How much slower training ran while watched, as a fraction of the quiet speed (negative:
    faster, which is noise)."""
    if not quiet or watched is None:
        return None
    return 1.0 - watched / quiet


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def _latency_cell(summary: dict[str, Any]) -> str:
    if not summary["n"]:
        return "– (none)"
    return f"{_seconds(summary['median'])} / {_seconds(summary['p95'])} (n={summary['n']:,})"


def _rate_cell(rate: float | None, detail: str) -> str:
    return "–" if rate is None else f"{rate:,.0f} ({detail})"


def table(result: dict[str, Any]) -> str:
    """The result as the Markdown table the README shows."""
    watched = result["sessions"]
    jobs = result["jobs"]
    change = result["throughput"]["drop"]
    change_cell = "–" if change is None else f"{change:.1%} (target < 10 %)"
    memory = result["memory"]
    cpu = result["cpu"]
    speed = result["throughput"]
    each = ", ".join("–" if rate is None else f"{rate:,.0f}" for rate in speed["quiet_each"])
    rows = [
        ("page load, median / p95", _latency_cell(result["latency"]["page"])),
        ("live update, median / p95", _latency_cell(result["latency"]["fragment"])),
        ("reruns that failed", f"{result['failed_reruns']} of {result['reruns']:,}"),
        ("training images/s, nobody watching",
         _rate_cell(speed["quiet"], f"runs before and after: {each}")),
        (f"training images/s, all {watched} tabs polling",
         _rate_cell(speed["watched"], f"{speed['watched_runs']} runs")),
        ("throughput drop", change_cell),
        ("student runs completed",
         f"{jobs['completed']} of {jobs['launched']} (at most {jobs['max_running']} running "
         f"and {jobs['max_queued']} queued at once)"),
        ("peak memory, whole machine",
         f"{memory['peak_used_mb']:,.0f} MB of {memory['total_mb']:,.0f} MB "
         f"({memory['peak_used_mb'] - memory['start_used_mb']:+,.0f} MB)"),
        ("peak memory, server + workers", f"{memory['peak_ours_mb']:,.0f} MB"),
        ("CPU while the class watched: server / the simulated tabs",
         f"{cpu['server']:.0%} / {cpu['clients']:.0%} of one core"),
        ("server CPU per live update", _seconds(cpu["server_seconds_per_rerun"])),
        ("wall time", f"{result['wall_seconds']:.0f} s"
         + (" (stopped at --max-seconds)" if result["capped"] else "")),
    ]
    lines = ["| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)
