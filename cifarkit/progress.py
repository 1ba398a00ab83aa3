"""How far a run has got and how long it still needs, from its metrics rows.

The Train page shows these every two seconds; keeping the arithmetic here lets it be tested
without a browser. `rows` are the epoch rows of metrics.jsonl, `batch` the latest batch line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class EpochProgress:
    done: int  # epochs finished
    total: int  # epochs planned
    current: Row | None  # the batch line of the epoch under way, if it is past the last row
    in_epoch: float  # share of the current epoch done, 0..1

    @property
    def fraction(self) -> float:
        """Share of the whole run done, counting the current epoch's batches."""
        return min((self.done + self.in_epoch) / self.total, 1.0) if self.total else 1.0

    def epoch_text(self, active: bool) -> str:
        """'Epoch 3 of 10': the epoch under way while active, else the epochs finished."""
        shown = min(self.done + 1, self.total) if active else self.done
        return f"Epoch {shown} of {self.total}"


def epoch_progress(total: int, rows: list[Row], batch: Row | None) -> EpochProgress:
    """Where a run of `total` epochs stands."""
    done = int(rows[-1]["epoch"]) if rows else 0
    current = batch if batch and batch.get("epoch", 0) > done else None
    in_epoch = current["step"] / current["steps"] if current and current.get("steps") else 0.0
    return EpochProgress(done, total, current, min(in_epoch, 1.0))


def time_left(total: int, rows: list[Row], batch: Row | None) -> float | None:
    """Seconds to the last of `total` epochs at the pace so far (early stopping may finish
    sooner); None before anything has been timed."""
    done = int(rows[-1]["epoch"]) if rows else 0
    current = batch if batch and batch.get("epoch", 0) > done and batch.get("step") else None
    per_epoch = sum(row.get("seconds", 0.0) for row in rows) / len(rows) if rows else None
    left = 0.0
    if current:
        per_step = current["seconds"] / current["step"]
        left = (current["steps"] - current["step"]) * per_step
        per_epoch = per_epoch or per_step * current["steps"]
    if per_epoch is None:
        return None
    later = total - done - (1 if current else 0)
    return left + max(later, 0) * per_epoch


def _seconds(value: Any) -> float | None:
    """A recorded time in seconds, or None for a missing or damaged value."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def elapsed_seconds(info: Row, rows: list[Row], batch: Row | None, now: float,
                    active: bool) -> float | None:
    """Training seconds of a run so far, earlier attempts (before a stop or a kill) included.

    `info` is status.json, `now` time.time(), `active` the run's live status (a dead worker
    leaves "running" on disk). While training, the clock runs from `training_started` on top of
    `elapsed_before`; otherwise the latest record wins (train_seconds, or the `elapsed` of the
    last epoch or batch line, which a killed worker leaves further on). None before any record.
    """
    recorded = [_seconds(value) for value in (
        info.get("train_seconds"), info.get("elapsed_before"),
        rows[-1].get("elapsed") if rows else None, batch.get("elapsed") if batch else None)]
    started = _seconds(info.get("training_started"))
    if active and started is not None:
        recorded.append((_seconds(info.get("elapsed_before")) or 0.0) + max(now - started, 0.0))
    known = [value for value in recorded if value is not None]
    return max(known) if known else None


def partial_epoch_text(info: Row) -> str | None:
    """'epoch 3 (40 % done)' for a run stopped during an epoch, which a resume trains again."""
    epoch, done, steps = (info.get(key) for key in
                          ("partial_epoch", "partial_batches", "steps_per_epoch"))
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        return None
    if not (isinstance(done, int) and isinstance(steps, int) and 0 < done <= steps):
        return f"epoch {epoch}"
    return f"epoch {epoch} ({round(100 * done / steps)} % done)"
