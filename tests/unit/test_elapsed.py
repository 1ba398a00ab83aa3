"""progress.elapsed_seconds and partial_epoch_text: what the Train page shows from the records
a training worker leaves (issue 8 items 4 and 6)."""

from __future__ import annotations

from cifarkit.progress import elapsed_seconds, partial_epoch_text

NOW = 1_800_000_000.0


def batch(epoch: int, step: int, elapsed: float) -> dict:
    return {"kind": "batch", "epoch": epoch, "step": step, "steps": 10, "seconds": 1.0,
            "elapsed": elapsed}


def test_during_epoch_1_the_clock_runs_from_the_start_of_training() -> None:
    info = {"status": "running", "train_seconds": 0.0, "elapsed_before": 0.0,
            "training_started": NOW - 12.5}
    assert elapsed_seconds(info, [], batch(1, 3, 4.0), NOW, active=True) == 12.5


def test_during_epoch_1_batch_lines_alone_give_the_time() -> None:
    """A status without the clock (an older worker, a blanked status.json) still shows > 0."""
    assert elapsed_seconds({}, [], batch(1, 3, 4.0), NOW, active=True) == 4.0


def test_after_a_resume_the_earlier_attempt_is_included() -> None:
    info = {"status": "running", "train_seconds": 300.0, "elapsed_before": 300.0,
            "training_started": NOW - 20.0}
    rows = [{"kind": "epoch", "epoch": 1, "seconds": 150.0, "elapsed": 150.0}]
    assert elapsed_seconds(info, rows, batch(2, 2, 305.0), NOW, active=True) == 320.0


def test_while_a_resumed_run_loads_its_data_the_earlier_time_is_shown() -> None:
    """The worker clears training_started at each attempt's start (the clock is not running)."""
    info = {"status": "running", "train_seconds": 300.0}
    assert elapsed_seconds(info, [], batch(2, 4, 290.0), NOW, active=True) == 300.0


def test_a_dead_worker_shows_its_last_record_not_a_clock_running_for_ever() -> None:
    info = {"status": "running", "train_seconds": 150.0, "elapsed_before": 0.0,
            "training_started": NOW - 3600.0}
    rows = [{"kind": "epoch", "epoch": 1, "seconds": 150.0, "elapsed": 150.0}]
    assert elapsed_seconds(info, rows, batch(2, 7, 171.5), NOW, active=False) == 171.5


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
