"""The device queue on the pages (issue 9): a queued job shows its place in line on Train, Runs
and Tune, Cancel takes it out of the line ("cancelled"), Resume puts it back at the end.

Real waiting workers: with one slot held by the test itself, `python -m cifarkit train|tune`
waits in line without importing TensorFlow (a bare Python each), exactly as in a class.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pytest

from cifarkit import jobs, queue, rundir, runs, searches
from cifarkit.config import DataConfig, ModelConfig, RunConfig, TrainingConfig
from tests.app.conftest import open_page, page_path, page_person, rerun, tiny_tune
from tests.conftest import wait_for

TRAIN, RUNS, TUNE = (page_path(f"pages/{name}.py") for name in ("train", "runs", "tune"))
TINY = RunConfig(data=DataConfig(source="digits", max_train_images=100),
                 model=ModelConfig(architecture="simple_cnn"), training=TrainingConfig(epochs=1))


@pytest.fixture
def held_slot(monkeypatch: pytest.MonkeyPatch, run_factory) -> Iterator[runs.Run]:
    """One slot, held by a running run of this test process: every job launched waits in line.
    At the end every waiter still in line is cancelled and waited for, then the slot freed."""
    monkeypatch.setenv("CIFARKIT_SLOTS", "1")
    holder = run_factory("queued", name="holder")  # no epoch yet: its time left is unknown
    with ExitStack() as stack:
        stack.enter_context(queue.slot(holder.path))
        yield runs.load(holder.path)
        waiting = [(kind, job.path) for kind in (runs.KIND, searches.KIND)
                   for job in jobs.list_jobs(kind) if job.status == "queued"]
        for _kind, path in waiting:
            rundir.request_stop(path)
        wait_for(lambda: all(jobs.load(kind, path).status != "queued" for kind, path in waiting),
                 60, "every waiter to leave the line")


def launch_waiting(count: int) -> list[runs.Run]:
    """count real runs, each waiting in line behind the held slot (in launch order)."""
    launched = [runs.launch(TINY.with_updates(name=f"waiting {n}"), by=page_person())
                for n in range(1, count + 1)]
    wait_for(lambda: len(queue.entries()) == count + 1, 60, "every waiter in line")
    return [runs.load(run.path) for run in launched]


def progress_texts(at: object) -> list[str]:
    return [bar.proto.text for bar in at.get("progress")]  # type: ignore[attr-defined]


def test_a_queued_run_shows_its_place_in_line_on_train_and_runs(held_slot) -> None:
    first, second = launch_waiting(2)
    assert queue.wait_text(second.path) == "queued, 2nd in line"  # nothing finished: no estimate
    at = open_page(TRAIN, 120, selected_run=second.run_id)
    assert progress_texts(at)[:2] == ["Queued, 2nd in line", "Queued, 1st in line"]
    assert [item.value for item in at.markdown if item.value.startswith("####")][:2] == [
        "#### waiting 2", "#### waiting 1"]  # the run picked, then the other active ones
    assert at.button(key=f"train_stop_{second.run_id}").label == "Cancel"
    table = open_page(RUNS, 120).dataframe[0].value.set_index("run_id")
    assert table.loc[first.run_id, "queue"] == "queued, 1st in line"
    assert table.loc[second.run_id, "queue"] == "queued, 2nd in line"
    assert pd.isna(table.loc[held_slot.run_id, "queue"])  # holding the slot: not in line


def test_cancel_takes_a_queued_run_out_of_line_and_resume_puts_it_back(held_slot) -> None:
    first, second = launch_waiting(2)
    at = open_page(TRAIN, 120, selected_run=first.run_id)
    at.button(key=f"train_stop_{first.run_id}").click()
    rerun(at)
    assert rundir.stop_requested(first.path)
    wait_for(lambda: runs.load(first.path).status == "cancelled", 60, "the cancel")
    assert queue.wait_text(second.path) == "queued, 1st in line"  # it moved up
    rerun(at)
    assert "Cancelled while it waited in line" in at.info[0].value
    at.button(key=f"train_resume_{first.run_id}").click()
    rerun(at)
    assert runs.load(first.path).status == "queued"
    wait_for(lambda: queue.wait_text(first.path) == "queued, 2nd in line", 60,
             "the resumed run at the end of the line")


def test_the_runs_page_cancels_a_queued_run(held_slot) -> None:
    (waiting,) = launch_waiting(1)
    at = open_page(RUNS, 120)
    at.selectbox(key="runs_manage").select(waiting.run_id)
    rerun(at)
    assert "This run is queued, 1st in line." in [item.value for item in at.info]
    cancel = at.button(key="runs_stop")
    assert cancel.label == "Cancel"
    cancel.click()
    rerun(at)
    assert at.success[0].value == ("Cancelled **waiting 1**: it leaves the queue. Resume puts "
                                   "it back in line.")
    wait_for(lambda: runs.load(waiting.path).status == "cancelled", 60, "the cancel")
    assert queue.entries()[0].path == held_slot.path.resolve() and len(queue.entries()) == 1


def test_a_queued_search_shows_its_place_and_cancels(held_slot, tmp_path: Path) -> None:
    search = searches.launch_search(tiny_tune("in line"), by=page_person())
    wait_for(lambda: len(queue.entries()) == 2, 60, "the search in line")
    at = open_page(TUNE, 120, tune_tab="Searches")
    assert "Queued, 1st in line" in progress_texts(at)
    at.button(key=f"tune_stop_{search.search_id}").click()
    rerun(at)
    assert "Cancelled the search: it leaves the queue. Resume puts it back in line." in [
        toast.value for toast in at.toast]
    wait_for(lambda: searches.load_search(search.path).status == "cancelled", 60, "the cancel")
