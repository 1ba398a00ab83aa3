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
