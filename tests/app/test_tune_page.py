"""Tune page: the search form and its validation, searches of every status, stop/resume/delete,
"train the best", and one real two-trial search launched from the form.

`search_factory` writes what a search worker leaves behind (tune.json, status.json, search.log,
metrics.jsonl and keras-tuner's keras_tuner/trial_<n>/trial.json, in the format keras-tuner 1.4
writes), so every status renders without TensorFlow running.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cifarkit import advice, rundir, runs, searchdir, searches
from cifarkit.config import DataConfig
from tests.app.conftest import (
    SCORES,
    STATUSES,
    chart_spec,
    open_page,
    page_path,
    page_person,
    rerun,
    trial_json,
)

PAGE = page_path("pages/tune.py")
SETUP, LIVE = "Set up a search", "Searches"


@pytest.fixture(autouse=True)
def _own_searches_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CIFARKIT_SEARCHES_DIR", str(tmp_path / "searches"))


def open_tune(**session: object) -> AppTest:
    return open_page(PAGE, 120, **session)


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def bars(at: AppTest) -> list[str]:
    return [bar.proto.text for bar in at.get("progress")]


def keys(at: AppTest) -> set[str]:
    return {button.key for button in at.button}


def pick(at: AppTest, search: searches.Search) -> AppTest:
    at.selectbox(key="tune_pick").select(search.search_id)
    return rerun(at)


def test_no_searches_opens_the_form_with_cpu_defaults() -> None:
    at = open_tune()
    assert at.session_state["tune_tab"] == SETUP
    assert "**Data:** Digits" in texts(at.markdown)
    assert at.multiselect(key="tune_filters").value == [16, 32]
    assert at.slider(key="tune_blocks").value == (2, 3)
    assert at.number_input(key="tune_cap").value == 5000
    assert all(widget.help for widget in (*at.multiselect, *at.slider, *at.number_input,
                                          *at.selectbox, *at.select_slider))
    at.session_state["tune_tab"] = LIVE
    rerun(at)
    assert "No searches yet" in at.info[0].value


def test_form_errors_name_the_field_and_launch_nothing(fake_worker) -> None:
    at = open_tune(data_config=DataConfig(source="digits", max_train_images=400))
    assert at.number_input(key="tune_cap").value == 400  # the Data page's cap is the default
    at.multiselect(key="tune_filters").set_value([])
    at.button(key="tune_start").click()
    rerun(at)
    assert "space.base_filters" in at.error[0].value and "Width" in at.error[0].value
    assert searches.list_searches() == [] and fake_worker == []
    at.multiselect(key="tune_filters").set_value([8])
    at.selectbox(key="tune_algorithm").select("hyperband")
    at.number_input(key="tune_max_trials").set_value(4)
    at.number_input(key="tune_epochs_per_trial").set_value(1)
    at.selectbox(key="tune_objective").select("val_loss")
    at.text_input(key="tune_name").input("my search")
    at.button(key="tune_start").click()
    rerun(at)
    (search,) = searches.list_searches()
    tune = search.config
    assert (tune.name, tune.algorithm, tune.max_trials, tune.epochs_per_trial, tune.objective) \
        == ("my search", "hyperband", 4, 1, "val_loss")
    assert tune.space.base_filters == (8,) and tune.space.batch_sizes == (32, 64)
    assert tune.base.data.max_train_images == 400 and tune.base.model.architecture == "custom_cnn"
    assert not tune.base.augment.horizontal_flip  # digits: the Data page's recommendation
    assert len(fake_worker) == 1 and str(search.path.resolve()) in fake_worker[0]
    assert at.session_state["tune_tab"] == LIVE
    assert "#### my search" in texts(at.markdown)
    assert bars(at)[-1] == "Queued, 1st in line, starting"  # in the device queue, slot free
    assert search.info["owner"] == page_person().key  # launched as the person on the page


def test_searches_of_every_status_are_shown(search_factory) -> None:
    made = {status: search_factory(status) for status in STATUSES}
    at = open_tune()
    assert at.session_state["tune_tab"] == LIVE  # a search is active: the page opens on it
    assert "#### search-running" in texts(at.markdown)  # the newest active one
    checks = {
        "queued": lambda: bars(at) == ["0 of 3 trials finished",
                                     "Queued: waiting for a free slot"],  # no ticket: no place
        "running": lambda: bars(at) == ["1 of 3 trials finished · trial 1 running",
                                      "Epoch 1 of 2 · batch 3 of 10"],
        "completed": lambda: bars(at) == ["3 of 3 trials finished"],
        "failed": lambda: "the sky fell" in at.error[0].value
        and "RuntimeError: the sky fell" in at.code[0].value
        and "ValueError: bad trial" in at.dataframe[0].value["error"].tolist(),
        "stopped": lambda: "was stopped" in at.info[0].value
        and "Cut short, not scored: trial 1" in texts(at.caption),
        "interrupted": lambda: "ended without finishing" in at.warning[0].value,
        "cancelled": lambda: "Cancelled while it waited in line: no trial ran." in at.info[
            0].value,
    }
    for status, check in checks.items():
        search = made[status]
        pick(at, search)
        assert f"#### search-{status}" in texts(at.markdown), status
        assert check(), status
        sid = search.search_id
        assert (f"tune_stop_{sid}" in keys(at)) == search.is_active, status
        assert (f"tune_resume_{sid}" in keys(at)) == search.can_resume, status
        assert (f"tune_delete_{sid}" in keys(at)) == (not search.is_active), status
    pick(at, made["completed"])
    assert len(at.dataframe[0].value) == 3
    assert at.metric[0].value == "72.0%"  # the best trial's validation accuracy
    scores = chart_spec(at, 0)["data"][0]
    assert scores["x"] == [0, 1, 2] and scores["y"] == pytest.approx(SCORES)


def set_scores(search: searches.Search, scores: tuple[float, ...], num_classes: int) -> None:
    """Rewrite a completed search's trials with these scores, as a worker that saw
    num_classes classes leaves them."""
    for trial, score in enumerate(scores):
        path = searchdir.project_dir(search.path) / f"trial_{trial}" / searchdir.TRIAL_FILE
        rundir.write_json_atomic(path, trial_json(trial, "COMPLETED", score))
    info = json.loads((search.path / searchdir.STATUS).read_text())
    rundir.write_json_atomic(search.path / searchdir.STATUS, {**info, "num_classes": num_classes})


def test_a_search_whose_trials_sit_at_chance_says_they_were_too_short(search_factory) -> None:
    search = search_factory("completed")
    set_scores(search, (0.10, 0.12, 0.09), num_classes=10)  # 10 classes: chance is 10 %
    at = open_tune(tune_tab=LIVE)
    hints = [box.value for box in at.info if "chance" in box.value]
    assert len(hints) == 1 and "trials of 2 epochs are" in hints[0]
    assert hints == [advice.chance_hint(searches.search_progress(search)["table"], 10)]


def test_a_search_above_chance_gives_no_chance_hint(search_factory) -> None:
    search = search_factory("completed")
    set_scores(search, SCORES, num_classes=10)
    at = open_tune(tune_tab=LIVE)
    assert at.metric[0].value == "72.0%"
    assert not [box.value for box in at.info if "chance" in box.value]


def test_stop_and_resume_act_on_disk(search_factory, fake_worker) -> None:
    running = search_factory("running")
    stopped = search_factory("stopped")
    at = open_tune()
    at.button(key=f"tune_stop_{running.search_id}").click()
    rerun(at)
    assert rundir.stop_requested(running.path)
    assert at.button(key=f"tune_stop_{running.search_id}").disabled  # now "Stopping…"
    pick(at, stopped)
    at.button(key=f"tune_resume_{stopped.search_id}").click()
    rerun(at)
    assert not rundir.stop_requested(stopped.path)
    assert searches.load_search(stopped.path).status == "queued"
    assert fake_worker[-1][-3:] == ["--search-dir", str(stopped.path.resolve()), "--resume"]
    assert f"tune_stop_{stopped.search_id}" in keys(at)


def test_delete_removes_a_finished_search(search_factory) -> None:
    search = search_factory("completed")
    at = open_tune(tune_tab=LIVE)
    at.button(key=f"tune_delete_{search.search_id}").click()
    rerun(at)
    assert not search.path.exists()
    assert "No searches yet" in at.info[0].value


def test_train_the_best_launches_a_run_and_points_train_at_it(search_factory,
                                                              fake_worker) -> None:
    search = search_factory("completed")
    at = open_tune(tune_tab=LIVE)
    sid = search.search_id
    assert at.selectbox(key=f"tune_best_trial_{sid}").value == 1
    summary = texts(at.markdown)
    assert "**search-completed trial 1**" in summary and "32 filters × 3 blocks" in summary
    at.selectbox(key=f"tune_best_trial_{sid}").select(0)
    rerun(at)
    assert "16 filters × 2 blocks" in texts(at.markdown)
    at.selectbox(key=f"tune_best_trial_{sid}").select(1)
    at.number_input(key=f"tune_best_epochs_{sid}").set_value(6)
    rerun(at)
    at.button(key=f"tune_train_{sid}").click()
    rerun(at)
    (run,) = runs.list_runs()
    expected = searches.best_run_config(search)
    assert run.config.training.epochs == 6
    assert run.config.with_updates(training=expected.training) == expected
    assert at.session_state["train_run"] == run.run_id
    assert at.session_state["selected_run"] == run.run_id
    assert at.session_state["train_goto_live"] is True
    assert "Started the run **search-completed trial 1**" in at.success[0].value
    assert len(fake_worker) == 1 and fake_worker[0][3] == "train"


@pytest.mark.slow
def test_form_launches_a_real_two_trial_search() -> None:
    at = open_tune()
    at.multiselect(key="tune_filters").set_value([8])
    at.slider(key="tune_blocks").set_value((1, 2))
    at.number_input(key="tune_max_trials").set_value(2)
    at.number_input(key="tune_epochs_per_trial").set_value(1)
    at.number_input(key="tune_cap").set_value(150)
    at.button(key="tune_start").click()
    rerun(at)
    (search,) = searches.list_searches()
    finished = searches.wait_search(search.search_id, timeout=300)
    log = (search.path / searchdir.LOG).read_text()[-2000:]
    assert finished.status == "completed", log
    rerun(at)
    assert bars(at) == ["2 of 2 trials finished"]
    table = at.dataframe[0].value
    assert [list(cell) for cell in table["status"]] == [["completed"], ["completed"]]
    assert len(chart_spec(at, 0)["data"][0]["x"]) == 2
    assert f"tune_train_{search.search_id}" in keys(at)
    json.loads(at.code[0].value)  # the whole run config of the best trial, as JSON
