"""Runs page: the table of all runs, its CSV export, charts, ensembles, per-run actions and
exports, and importing a .keras file as a run."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit
from streamlit.delta_generator import DeltaGenerator
from streamlit.testing.v1 import AppTest

from cifarkit import compare, rundir, runs
from cifarkit.evaluation import Predictions
from cifarkit.labels import DIGITS_LABELS
from tests.app.conftest import (
    STATUSES,
    assert_clean,
    chart_spec,
    open_page,
    open_with_runs,
    page_path,
    save_tiny_model,
)

PAGE = page_path("pages/runs.py")


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
    at = open_page(PAGE)
    assert "No runs yet" in at.info[0].value
    assert not at.dataframe


def test_table_lists_every_run_with_its_status(run_factory) -> None:
    made = [run_factory(status) for status in STATUSES]
    made.append(run_factory("completed", cifar100=True, num_classes=6, name="hundred"))
    at = open_page(PAGE)
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


def test_table_fits_the_page_with_a_column_picker(run_factory) -> None:
    run_factory("completed")
    at = open_page(PAGE)
    frame = at.dataframe[0].proto
    shown = ["name", "model", "data", "status", "queue", "accuracy", "top5_accuracy",
             "train_seconds", "epochs", "max_epochs", "error"]
    assert list(frame.column_order) == shown  # 11 of the 21 columns: no cut-off at the right
    config = json.loads(frame.columns)
    assert config["name"]["pinned"] is True
    status = config["status"]["type_config"]
    assert status["type"] == "multiselect"  # coloured pills, not emoji
    assert {option["value"]: option["color"] for option in status["options"]}["failed"] == "red"
    picker = at.multiselect(key="runs_columns")
    assert "Weights MB" in picker.options and "Run" not in picker.options  # the name stays
    assert "Calibration error" in picker.options
    picker.set_value([*picker.value, "weights_mb"]).run()
    assert_clean(at)
    assert list(at.dataframe[0].proto.column_order) == [*shown, "weights_mb"]


def test_csv_export_holds_the_table(run_factory, downloads) -> None:
    made = [run_factory("completed"), run_factory("failed"), run_factory("stopped")]
    open_page(PAGE)
    exported = pd.read_csv(io.StringIO(downloads["Download table (CSV)"]))
    assert list(exported.columns) == [*compare.TABLE_COLUMNS, "queue", "owner"]
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
    at = open_page(PAGE)
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
    at = open_with_runs(PAGE, "runs_ensemble", [first, second])
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
    at = open_with_runs(PAGE, "runs_ensemble", [first, other])
    assert "cannot be combined" in at.warning[0].value
    assert len(at.dataframe) == 1  # the runs table only: no ensemble scores


def test_resume_starts_a_worker_for_a_stopped_run(run_factory, fake_worker) -> None:
    stopped = run_factory("stopped")
    at = open_page(PAGE)
    at.selectbox(key="runs_manage").set_value(stopped.run_id).run()
    at.button(key="runs_resume").click().run()
    assert_clean(at)
    assert fake_worker and fake_worker[0][-3:] == ["--run-dir", str(stopped.path.resolve()),
                                                    "--resume"]
    assert runs.load(stopped.path).status == "queued"
    assert "Resumed" in at.success[0].value


def test_resume_is_disabled_for_a_completed_run(run_factory) -> None:
    run_factory("completed")
    at = open_page(PAGE)
    assert at.button(key="runs_resume").disabled
    assert at.button(key="runs_stop").disabled


def test_stop_asks_a_running_run_to_stop(run_factory) -> None:
    running = run_factory("running")
    at = open_page(PAGE)
    assert not at.button(key="runs_stop").disabled
    at.button(key="runs_stop").click().run()
    assert_clean(at)
    assert rundir.stop_requested(running.path)
    assert at.checkbox(key=f"runs_confirm_{running.run_id}").disabled  # no deleting while active


def test_delete_needs_confirmation_then_removes_the_folder(run_factory) -> None:
    keep, doomed = run_factory("completed", name="keep"), run_factory("failed", name="doomed")
    at = open_page(PAGE)
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
    at = open_page(PAGE)
    button = at.get("download_button")[1]
    assert "Model file" in button.proto.label and not button.proto.disabled
    data = downloads["Model file"]
    assert data() == (completed.path / rundir.BEST_MODEL).read_bytes()


def test_model_download_is_disabled_without_a_model(run_factory) -> None:
    run_factory("failed")
    at = open_page(PAGE)
    assert at.get("download_button")[1].proto.disabled
    assert "sky fell" in at.error[0].value


def _predictions(run: runs.Run) -> Predictions:
    return Predictions.load(run.path / rundir.PREDICTIONS)


# --- exports


def test_exports_produce_a_tflite_file_a_saved_model_and_a_bundle(run_factory,
                                                                   downloads) -> None:
    run = run_factory("completed", conv=True)
    at = open_page(PAGE)
    assert "TFLite file" not in downloads  # converting waits for the button
    at.button(key="runs_prepare_tflite").click().run()
    at.button(key="runs_prepare_saved_model").click().run()
    assert_clean(at)
    tflite = downloads["TFLite file"]
    assert len(tflite) > 1000 and tflite[4:8] == b"TFL3"  # the TFLite flatbuffer identifier
    with zipfile.ZipFile(io.BytesIO(downloads["SavedModel (.zip)"])) as archive:
        names = archive.namelist()
        assert "saved_model/saved_model.pb" in names
        assert any(name.startswith("saved_model/variables/") for name in names)
    with zipfile.ZipFile(io.BytesIO(downloads["Bundle (.zip)"]())) as archive:
        assert archive.read("model.keras") == (run.path / rundir.BEST_MODEL).read_bytes()
        labels = archive.read("labels.txt").decode().split()
        assert labels == _predictions(run).class_names


def test_exports_are_disabled_without_a_model(run_factory) -> None:
    run_factory("failed")
    at = open_page(PAGE)
    assert at.button(key="runs_prepare_tflite").disabled
    assert at.button(key="runs_prepare_saved_model").disabled


# --- import


def keras_file(path: Path, lambda_layer: bool = False) -> bytes:
    """A real 10-class .keras model; with a Lambda layer (arbitrary code) when asked."""
    if not lambda_layer:
        save_tiny_model(path, 10, conv=True)
        return path.read_bytes()
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(lambda t: t / 255.0)(inputs)
    x = keras.layers.Flatten()(x)
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)).save(path)
    return path.read_bytes()


def upload_model(at: AppTest, data: bytes, classes: str = "digits", name: str = "") -> AppTest:
    at.file_uploader(key="runs_import_file").upload("mine.keras", data,
                                                    "application/octet-stream").run()
    at.selectbox(key="runs_import_classes").set_value(classes).run()
    at.text_input(key="runs_import_name").input(name)
    at.button(key="runs_import").click().run()
    return at


def run_folders() -> list[Path]:
    """Every entry in the runs folder, hidden staging folders included."""
    folder = runs.root_dir()
    return sorted(folder.iterdir()) if folder.exists() else []


def test_importing_a_keras_file_adds_a_completed_run(tmp_path: Path) -> None:
    at = open_page(PAGE)  # no runs yet: the import section is still there
    assert "No runs yet" in at.info[0].value
    upload_model(at, keras_file(tmp_path / "mine.keras"), name="my digits")
    assert_clean(at)
    assert "Imported **my digits**" in at.success[0].value
    [run] = runs.list_runs()
    assert run.status == "completed" and run.info["imported"] is True
    assert _predictions(run).class_names == list(DIGITS_LABELS)
    row = at.dataframe[0].value.set_index("run_id").loc[run.run_id]
    assert row["model"] == "imported (tiny_cnn)" and pd.isna(row["max_epochs"])
    assert row["accuracy"] == pytest.approx(run.info["test_accuracy"])
    assert "imported (tiny_cnn)" in at.selectbox(key="runs_manage").format_func(run.run_id)
    predict_page = open_page(page_path("pages/predict.py"))
    assert predict_page.multiselect(key="predict_runs").value == [run.run_id]


def test_a_model_with_a_lambda_layer_is_refused(tmp_path: Path) -> None:
    at = upload_model(open_page(PAGE), keras_file(tmp_path / "evil.keras", lambda_layer=True))
    assert_clean(at)
    message = at.error[0].value
    assert "not imported" in message and "arbitrary code" in message and "Lambda" in message
    assert not run_folders() and not at.success


def test_garbage_bytes_are_refused_with_a_clear_message() -> None:
    at = upload_model(open_page(PAGE), b"this is not a model at all")
    assert_clean(at)
    assert "is not a .keras model file" in at.error[0].value
    assert not run_folders()


def test_typed_class_names_must_match_the_outputs(tmp_path: Path) -> None:
    at = open_page(PAGE)
    at.file_uploader(key="runs_import_file").upload(
        "mine.keras", keras_file(tmp_path / "mine.keras"), "application/octet-stream").run()
    at.selectbox(key="runs_import_classes").set_value("typed").run()
    at.text_area(key="runs_import_names").input("cat, dog, horse")
    at.button(key="runs_import").click().run()
    assert_clean(at)
    assert "3 class names given for a model with 10 classes" in at.error[0].value
    assert not run_folders()
