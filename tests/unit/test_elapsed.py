"""progress.elapsed_seconds and partial_epoch_text: what the Train page shows from the records
a training worker leaves (issue 8 items 4 and 6)."""

from __future__ import annotations

import pytest

from cifarkit.progress import elapsed_seconds, partial_epoch_text

NOW = 1_800_000_000.0


def batch(epoch: int, step: int, elapsed: float) -> dict:
    return {"kind": "batch", "epoch": epoch, "step": step, "steps": 10, "seconds": 1.0,
            "elapsed": elapsed}


EPOCH_1 = [{"kind": "epoch", "epoch": 1, "seconds": 150.0, "elapsed": 150.0}]
CASES = {
    # case: (status.json, epoch rows, latest batch line, worker alive, seconds shown)
    "epoch 1, the clock runs from the start of training": (
        {"train_seconds": 0.0, "elapsed_before": 0.0, "training_started": NOW - 12.5},
        [], batch(1, 3, 4.0), True, 12.5),
    "epoch 1, batch lines alone (older worker, blanked status)": (
        {}, [], batch(1, 3, 4.0), True, 4.0),
    "resumed: the earlier attempt's 300 s included": (
        {"train_seconds": 300.0, "elapsed_before": 300.0, "training_started": NOW - 20.0},
        EPOCH_1, batch(2, 2, 305.0), True, 320.0),
    "resumed, still loading its data (the worker cleared training_started)": (
        {"train_seconds": 300.0}, [], batch(2, 4, 290.0), True, 300.0),
    "dead worker: its last record, not a clock running for ever": (
        {"train_seconds": 150.0, "elapsed_before": 0.0, "training_started": NOW - 3600.0},
        EPOCH_1, batch(2, 7, 171.5), False, 171.5),
}


@pytest.mark.parametrize("case", list(CASES))
def test_elapsed_seconds(case: str) -> None:
    info, rows, latest, active, expected = CASES[case]
    assert elapsed_seconds({"status": "running", **info}, rows, latest, NOW, active) == expected


def test_nothing_recorded_yet_and_damaged_values() -> None:
    assert elapsed_seconds({}, [], None, NOW, active=True) is None
    damaged = {"train_seconds": "ten", "elapsed_before": True, "training_started": float("nan")}
    assert elapsed_seconds(damaged, [{"epoch": 1}], None, NOW, active=True) is None
    assert elapsed_seconds({"training_started": NOW + 5}, [], None, NOW, active=True) == 0.0


def test_partial_epoch_text() -> None:
    info = {"partial_epoch": 3, "partial_batches": 40, "steps_per_epoch": 100}
    assert partial_epoch_text(info) == "epoch 3 (40 % done)"
    assert partial_epoch_text({"partial_epoch": 3}) == "epoch 3"
    assert partial_epoch_text({**info, "partial_batches": 140}) == "epoch 3"
    assert partial_epoch_text({"epochs_run": 3}) is None
    assert partial_epoch_text({"partial_epoch": True}) is None
