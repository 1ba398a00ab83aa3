"""Epoch progress and time left, as the Train page shows them, from metrics rows."""

from __future__ import annotations

import pytest

from cifarkit.progress import epoch_progress, time_left


def rows(*seconds: float) -> list[dict]:
    return [{"epoch": index + 1, "seconds": value} for index, value in enumerate(seconds)]


def test_nothing_timed_yet_has_no_time_left() -> None:
    assert time_left(10, [], None) is None
    assert time_left(10, [], {"epoch": 1, "step": 0, "steps": 50, "seconds": 0.0}) is None


def test_first_epoch_is_estimated_from_its_batches() -> None:
    batch = {"epoch": 1, "step": 10, "steps": 50, "seconds": 5.0}  # 0.5 s per step
    assert time_left(3, [], batch) == pytest.approx(40 * 0.5 + 2 * 25.0)


def test_later_epochs_use_the_mean_epoch_time() -> None:
    batch = {"epoch": 3, "step": 20, "steps": 40, "seconds": 10.0}
    assert time_left(5, rows(30.0, 50.0), batch) == pytest.approx(20 * 0.5 + 2 * 40.0)


def test_a_stale_batch_line_of_a_finished_epoch_is_ignored() -> None:
    batch = {"epoch": 2, "step": 40, "steps": 40, "seconds": 20.0}
    assert time_left(4, rows(10.0, 20.0), batch) == pytest.approx(2 * 15.0)
    assert epoch_progress(4, rows(10.0, 20.0), batch).current is None


def test_finished_run_has_nothing_left() -> None:
    assert time_left(2, rows(10.0, 10.0), None) == 0.0


def test_progress_counts_the_current_epochs_batches() -> None:
    where = epoch_progress(4, rows(10.0), {"epoch": 2, "step": 25, "steps": 100})
    assert (where.done, where.in_epoch, where.fraction) == (1, 0.25, pytest.approx(1.25 / 4))
    assert where.epoch_text(active=True) == "Epoch 2 of 4"
    assert where.epoch_text(active=False) == "Epoch 1 of 4"


def test_progress_never_passes_the_end() -> None:
    where = epoch_progress(2, rows(1.0, 1.0, 1.0), None)  # early rows beyond the plan
    assert where.fraction == 1.0
    assert where.epoch_text(active=True) == "Epoch 2 of 2"
