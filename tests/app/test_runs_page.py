"""Runs page: the table of all runs, its CSV export, charts, ensembles and per-run actions."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pytest
import streamlit
from streamlit.delta_generator import DeltaGenerator
from streamlit.testing.v1 import AppTest

from cifarkit import compare, rundir, runs
from cifarkit.evaluation import Predictions
from tests.app.conftest import STATUSES, assert_clean, chart_spec, page_path

PAGE = page_path("pages/runs.py")


def open_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert_clean(at)
    return at


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What each st.download_button on the page would hand the browser, by label."""
    captured: dict[str, Any] = {}
    method, function = DeltaGenerator.download_button, streamlit.download_button

    def spy_method(self: DeltaGenerator, label: str, data: Any, *args: Any, **kwargs: Any) -> bool:
        captured[label] = data
        return method(self, label, data, *args, **kwargs)

    def spy_function(label: str, data: Any, *args: Any, **kwargs: Any) -> bool:
        captured[label] = data
        return function(label, data, *args, **kwargs)

    # st.download_button is bound at import; buttons inside columns go through the class.
    monkeypatch.setattr(DeltaGenerator, "download_button", spy_method)
    monkeypatch.setattr(streamlit, "download_button", spy_function)
    return captured


def test_without_runs_the_page_points_to_train() -> None:
    at = open_page()
    assert "No runs yet" in at.info[0].value
    assert not at.dataframe


def test_table_lists_every_run_with_its_status(run_factory) -> None:
    made = [run_factory(status) for status in STATUSES]
    made.append(run_factory("completed", cifar100=True, num_classes=6, name="hundred"))
    at = open_page()
    table = at.dataframe[0].value
    assert sorted(table["run_id"]) == sorted(run.run_id for run in made)
    by_id = table.set_index("run_id")
    for run in made:
        assert run.status in by_id.loc[run.run_id, "status"]
    hundred = by_id.loc[made[-1].run_id]
    assert hundred["data"] == "CIFAR-100 fine" and hundred["classes"] == 6
    assert hundred["accuracy"] == pytest.approx(made[-1].info["test_accuracy"])
    failed = by_id.loc[made[STATUSES.index("failed")].run_id]
    assert "sky fell" in failed["error"] and pd.isna(failed["accuracy"])


def test_csv_export_holds_the_table(run_factory, downloads) -> None:
    made = [run_factory("completed"), run_factory("failed"), run_factory("stopped")]
    open_page()
    exported = pd.read_csv(io.StringIO(downloads["Download table (CSV)"]))
    assert list(exported.columns) == list(compare.TABLE_COLUMNS)
    exported = exported.set_index("run_id")
    for run in made:
        row = exported.loc[run.run_id]
        assert row["status"] == run.status and row["name"] == run.name
        assert row["epochs"] == run.info["epochs_run"]
        accuracy = run.info.get("test_accuracy")
        assert (pd.isna(row["accuracy"]) if accuracy is None
                else row["accuracy"] == pytest.approx(accuracy))


def test_cost_chart_and_curves_show_the_runs(run_factory) -> None:
    first, second = run_factory("completed"), run_factory("stopped")
    at = open_page()
    assert len(at.get("plotly_chart")) == 3  # cost scatter + validation accuracy and loss curves
    scatter = chart_spec(at, 0)
    names = {name for trace in scatter["data"] for name in trace["hovertext"]}
    assert names == {first.name, second.name}
    curves = chart_spec(at, 1)
    assert {trace["name"] for trace in curves["data"]} == {first.name, second.name}
    at.radio(key="runs_cost_axis").set_value("params").run()
    assert_clean(at)
    assert chart_spec(at, 0)["layout"]["xaxis"]["type"] == "log"


def test_ensemble_of_two_runs_is_scored_next_to_its_members(run_factory) -> None:
    first = run_factory("completed", accuracy=0.6)
    second = run_factory("completed", accuracy=0.8)
    at = open_page()
    at.multiselect(key="runs_ensemble").set_value([first.run_id, second.run_id]).run()
    assert_clean(at)
    scores = at.dataframe[-1].value
    assert list(scores["run"]) == [first.name, second.name, compare.ENSEMBLE_LABEL]
    expected, _ = compare.ensemble_scores({
        first.name: _predictions(first), second.name: _predictions(second)})
    assert scores["accuracy"].tolist() == pytest.approx(expected["accuracy"].tolist())
    assert scores["accuracy"].iloc[0] == pytest.approx(first.info["test_accuracy"])
    metric = at.metric[0]
    assert metric.label == "Ensemble accuracy"
    assert metric.value == f"{expected['accuracy'].iloc[-1]:.1%}"


def test_ensemble_of_runs_on_different_classes_is_refused(run_factory) -> None:
    first = run_factory("completed")
    other = run_factory("completed", cifar100=True, num_classes=6)
    at = open_page()
    at.multiselect(key="runs_ensemble").set_value([first.run_id, other.run_id]).run()
    assert_clean(at)
    assert "cannot be combined" in at.warning[0].value
    assert len(at.dataframe) == 1  # the runs table only: no ensemble scores


def test_resume_starts_a_worker_for_a_stopped_run(run_factory, fake_worker) -> None:
    stopped = run_factory("stopped")
    at = open_page()
    at.selectbox(key="runs_manage").set_value(stopped.run_id).run()
    at.button(key="runs_resume").click().run()
    assert_clean(at)
    assert fake_worker and fake_worker[0][-3:] == ["--run-dir", str(stopped.path.resolve()),
                                                    "--resume"]
    assert runs.load(stopped.path).status == "queued"
    assert "Resumed" in at.success[0].value


def test_resume_is_disabled_for_a_completed_run(run_factory) -> None:
    run_factory("completed")
    at = open_page()
    assert at.button(key="runs_resume").disabled
    assert at.button(key="runs_stop").disabled


def test_stop_asks_a_running_run_to_stop(run_factory) -> None:
    running = run_factory("running")
    at = open_page()
    assert not at.button(key="runs_stop").disabled
    at.button(key="runs_stop").click().run()
    assert_clean(at)
    assert rundir.stop_requested(running.path)
    assert at.checkbox(key=f"runs_confirm_{running.run_id}").disabled  # no deleting while active


def test_delete_needs_confirmation_then_removes_the_folder(run_factory) -> None:
    keep, doomed = run_factory("completed", name="keep"), run_factory("failed", name="doomed")
    at = open_page()
    at.selectbox(key="runs_manage").set_value(doomed.run_id).run()
    assert at.button(key="runs_delete").disabled
    at.checkbox(key=f"runs_confirm_{doomed.run_id}").check().run()
    at.button(key="runs_delete").click().run()
    assert_clean(at)
    assert not doomed.path.exists() and keep.path.exists()
    assert "Deleted **doomed**" in at.success[0].value
    assert list(at.dataframe[0].value["run_id"]) == [keep.run_id]


def test_model_download_offers_the_model_file(run_factory, downloads) -> None:
    completed = run_factory("completed")
    at = open_page()
    button = at.get("download_button")[1]
    assert "Model file" in button.proto.label and not button.proto.disabled
    data = downloads["Model file"]
    assert data() == (completed.path / rundir.BEST_MODEL).read_bytes()


def test_model_download_is_disabled_without_a_model(run_factory) -> None:
    run_factory("failed")
    at = open_page()
    assert at.get("download_button")[1].proto.disabled
    assert "sky fell" in at.error[0].value


def _predictions(run: runs.Run) -> Predictions:
    return Predictions.load(run.path / rundir.PREDICTIONS)
