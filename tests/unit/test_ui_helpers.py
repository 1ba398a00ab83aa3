"""ui/ helpers that need no page: the by-file cache and the choice-label check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ui.cache import by_file
from ui.exports import EXPORTS, export_bytes
from ui.forms import labelled


def test_cache_reloads_only_when_the_file_changes(tmp_path: Path) -> None:
    calls: list[tuple[str, int]] = []

    @by_file(max_entries=4)
    def read(path: str, scale: int) -> int:
        calls.append((path, scale))
        return len(Path(path).read_bytes()) * scale

    file = tmp_path / "model.keras"
    file.write_bytes(b"abc")
    assert read(file, 2) == 6 and read(file, 2) == 6
    assert read(file, 3) == 9  # other arguments: their own entry
    assert calls == [(str(file), 2), (str(file), 3)]
    file.write_bytes(b"abcdef")
    stat = file.stat()
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a resumed run rewrote it
    assert read(file, 2) == 12
    assert len(calls) == 3


def test_missing_file_is_an_os_error_not_a_cached_value(tmp_path: Path) -> None:
    @by_file(max_entries=2)
    def read(path: str) -> bytes:
        return Path(path).read_bytes()

    with pytest.raises(FileNotFoundError):
        read(tmp_path / "gone.keras")


def test_labels_follow_the_config_order_and_a_missing_label_fails() -> None:
    assert list(labelled(("b", "a"), {"a": "A", "b": "B", "c": "C"})) == ["b", "a"]
    with pytest.raises(KeyError, match="'new'"):
        labelled(("a", "new"), {"a": "A"})


def test_unknown_export_kind_is_refused_before_any_file_is_read(tmp_path: Path) -> None:
    assert set(EXPORTS) == {"tflite", "saved_model"}

    class FakeRun:
        path = tmp_path

    expected = "export kind must be one of ('tflite', 'saved_model'), got 'onnx'"
    with pytest.raises(ValueError) as refused:
        export_bytes(FakeRun(), "onnx")  # type: ignore[arg-type]
    assert str(refused.value) == expected


def test_actions_run_from_their_table_and_an_unknown_one_deletes_nothing(tmp_path: Path) -> None:
    from cifarkit.classroom import Person
    from cifarkit.jobs import RunError
    from ui.actions import perform

    kept = tmp_path / "job"
    kept.mkdir()

    def delete(job_id: str, by: Person) -> str:
        kept.rmdir()
        return f"{by.name} deleted {job_id}."

    def stop(job_id: str, by: Person) -> str:
        raise RunError(f"{job_id} is not running")

    actions = {"delete": delete, "stop": stop}
    someone = Person("someone", "Sam")
    assert perform(actions, "frobnicate", "r1", by=someone) == (
        False, "unknown action 'frobnicate'")
    assert kept.is_dir()
    assert perform(actions, "stop", "r1", by=someone) == (False, "r1 is not running")
    assert perform(actions, "delete", "r1", by=someone) == (True, "Sam deleted r1.")
    assert not kept.exists()


def test_clock_reads_minutes_and_hours() -> None:
    from ui.format import clock

    assert [clock(s) for s in (0, 59.4, 118, 120, 3725, None)] == [
        "0:00", "0:59", "1:58", "2:00", "1:02:05", "0:00"]


def test_budget_line_before_and_after_the_fit_and_once_trained() -> None:
    from ui.format import budget_text

    fit = {"budget_epochs": 57, "budget_images_per_second": 1650.4,
           "budget_planned_seconds": 118.0}
    assert budget_text(120, {}) == "Budget 2:00 · measuring speed…"
    assert budget_text(120, {"budget_epochs": 57}) == "Budget 2:00 · measuring speed…"
    assert budget_text(120, fit) == (
        "Budget 2:00 · 57 epochs fitted at 1,650 images/s · planned 1:58")
    assert budget_text(600, {**fit, "budget_epochs": 1}).startswith("Budget 10:00 · 1 epoch fitted")
    assert budget_text(120, fit, trained_s=117.4).endswith("· planned 1:58 · trained 1:57")
    assert budget_text(120, {}, trained_s=5) == "Budget 2:00 · trained 0:05"  # stopped early


def test_length_choices_set_the_budget_and_turn_off_what_fights_it() -> None:
    from cifarkit.config import CallbacksConfig, RunConfig, TrainingConfig
    from ui.forms import budget_seconds, fit_to_budget

    assert budget_seconds("quick", 25) == 120.0  # the typed minutes are for "minutes" only
    assert budget_seconds("minutes", 7) == 420.0
    assert budget_seconds("epochs", 7) is None
    with pytest.raises(ValueError, match="length must be one of"):
        budget_seconds("hours", 1)
    training, callbacks = TrainingConfig(), CallbacksConfig()
    assert fit_to_budget(training, callbacks, None) == (training, callbacks)
    fitted, quiet = fit_to_budget(training, callbacks, 120.0)
    assert fitted.time_budget_s == 120.0 and not quiet.early_stopping and not quiet.reduce_lr
    RunConfig(training=fitted, callbacks=quiet).validate()  # what the page launches is valid
    assert quiet.checkpoint == callbacks.checkpoint


def test_a_default_joins_the_choices_and_distribute_needs_two_gpus() -> None:
    from ui.forms import distribute_refusal, with_default

    assert with_default((64, 128, 256), 384) == (64, 128, 256, 384)
    assert with_default((64, 128), 64) == (64, 128)
    assert distribute_refusal(0) == "Needs 2 GPUs or more; this computer has no GPU."
    assert distribute_refusal(1) == "Needs 2 GPUs or more; this computer has one GPU."
    assert distribute_refusal(2) is None and distribute_refusal(8) is None
