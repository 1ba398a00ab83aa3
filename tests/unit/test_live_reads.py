"""What live pages read, shared by sessions: the run listing, file versions, Streamlit's
clean-up after each script run."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.runtime.scriptrunner import script_runner

from tests.app.conftest import fabricate_run
from ui import live, script_cleanup
from ui.cache import by_file


def test_a_file_that_grew_is_read_again_even_with_the_same_mtime(tmp_path: Path) -> None:
    calls: list[str] = []

    @by_file(max_entries=2)
    def read(path: str) -> bytes:
        calls.append(path)
        return Path(path).read_bytes()

    file = tmp_path / "metrics.jsonl"
    file.write_bytes(b"{}\n")
    before = file.stat()
    assert read(file) == b"{}\n" and read(file) == b"{}\n"
    with open(file, "ab") as handle:
        handle.write(b"{}\n")  # a worker appended a row within the clock's resolution
    os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert read(file) == b"{}\n{}\n"
    assert len(calls) == 2


def test_the_run_listing_is_read_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.2]
    monkeypatch.setattr(live, "monotonic", lambda: clock[0])
    first = fabricate_run(0, "failed", name="first")
    listing = live.run_listing()
    assert [run.run_id for run in listing] == [first.run_id]
    second = fabricate_run(1, "failed", name="second")
    clock[0] = 1000.9
    assert live.run_listing() is listing  # the same second: every session gets this one
    clock[0] = 1001.0
    assert [run.run_id for run in live.run_listing()] == [second.run_id, first.run_id]
    third = fabricate_run(2, "failed", name="third")
    live.forget_listing()  # as a Stop, Resume or launch does, within the second
    assert live.run_listing()[0].run_id == third.run_id


def test_metrics_of_a_run_without_a_metrics_file_are_empty() -> None:
    run = fabricate_run(0, "failed")
    (run.path / "metrics.jsonl").unlink()
    assert live.metrics(run) == ([], None)


def test_cleanup_resets_keras_without_a_full_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    keras = SimpleNamespace(backend=SimpleNamespace(
        clear_session=lambda free_memory=True: calls.append(free_memory)))
    monkeypatch.setitem(sys.modules, "keras", keras)
    monkeypatch.setattr(script_runner, "_clean_problem_modules",
                        script_runner._clean_problem_modules)  # restored after the test
    script_cleanup.install()
    script_runner._clean_problem_modules()
    assert script_runner._clean_problem_modules is script_cleanup.clean
    assert calls == [False]  # Keras' state is reset, gc.collect() is not run


def test_planned_epochs_are_the_configs_or_the_budgets_fit() -> None:
    from dataclasses import replace

    from cifarkit import rundir, runs

    run = fabricate_run(0, "running", epochs=3, sleepers=(sleepers := []))
    try:
        assert live.planned_epochs(run) == 3
        config = run.config
        replace(config, training=replace(config.training, time_budget_s=120.0),
                callbacks=replace(config.callbacks, early_stopping=False)).save(
                    run.path / rundir.CONFIG)
        assert live.planned_epochs(runs.load(run.run_id)) is None  # still measuring its speed
        rundir.update_status(run.path, budget_epochs=57)
        assert live.planned_epochs(runs.load(run.run_id)) == 57
    finally:
        for process in sleepers:
            process.kill()
            process.wait()
