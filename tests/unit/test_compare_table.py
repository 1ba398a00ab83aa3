"""cifarkit.compare on fabricated run directories: the runs table, curves and ensembles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cifarkit import compare, rundir, runs
from cifarkit.evaluation import Predictions, summary_metrics


def load_predictions(run: runs.Run) -> Predictions:
    return Predictions.load(run.path / rundir.PREDICTIONS)


def test_runs_table_has_one_typed_row_per_run(run_factory) -> None:
    completed = run_factory("completed", name="alpha")
    failed = run_factory("failed", name="beta")
    queued = run_factory("queued")
    table = compare.runs_table(runs.list_runs())
    assert list(table.columns) == list(compare.TABLE_COLUMNS)
    assert list(table["run_id"]) == [queued.run_id, failed.run_id, completed.run_id]
    row = table.set_index("run_id").loc[completed.run_id]
    assert row["accuracy"] == pytest.approx(completed.info["test_accuracy"])
    assert row["macro_f1"] == pytest.approx(completed.info["test_macro_f1"])
    assert row["params"] == completed.info["trainable_params"]
    assert row["data"] == "CIFAR-10" and row["classes"] == 4 and row["max_epochs"] == 3
    assert row["created"] == pd.Timestamp.fromtimestamp(completed.info["created"])
    assert pd.api.types.is_integer_dtype(table["trainable_params"])
    assert pd.isna(table.set_index("run_id").loc[queued.run_id, "epochs"])


def test_runs_table_has_the_calibration_error_of_runs_that_measured_it(run_factory) -> None:
    scored = run_factory("completed", name="new")
    old = run_factory("completed", name="old")
    info = {key: value for key, value in old.info.items() if key != "test_ece"}
    rundir.write_json_atomic(old.path / rundir.STATUS, info)
    metrics = rundir.read_json(old.path / rundir.EVAL)
    del metrics["ece"]  # scored before ECE was measured
    rundir.write_json_atomic(old.path / rundir.EVAL, metrics)
    table = compare.runs_table(runs.list_runs()).set_index("run_id")
    assert scored.info["test_ece"] > 0
    assert table.loc[scored.run_id, "ece"] == pytest.approx(scored.info["test_ece"])
    assert pd.isna(table.loc[old.run_id, "ece"]) and table["ece"].dtype == "float64"


def test_scores_fall_back_to_eval_json(run_factory) -> None:
    run = run_factory("completed")
    info = {key: value for key, value in run.info.items() if not key.startswith("test_")}
    rundir.write_json_atomic(run.path / rundir.STATUS, info)
    scores = compare.run_scores(runs.load(run.path))
    assert scores == summary_metrics(load_predictions(run))


def test_empty_table_keeps_its_columns() -> None:
    table = compare.runs_table([])
    assert table.empty and list(table.columns) == list(compare.TABLE_COLUMNS)


def test_epoch_curves_tell_runs_with_the_same_name_apart(run_factory) -> None:
    first = run_factory("completed", name="twin", epochs=3)
    second = run_factory("stopped", name="twin", epochs=4)
    curves = compare.epoch_curves([first, second])
    assert len(curves) == 3 + 3  # a stopped run is one epoch short of its plan
    assert set(curves["run"]) == {f"twin ({first.run_id})", f"twin ({second.run_id})"}
    assert curves["val_accuracy"].notna().all()


def test_ensemble_scores_list_members_then_the_average(run_factory) -> None:
    first, second = run_factory("completed", accuracy=0.5), run_factory("completed")
    members = {"a": load_predictions(first), "b": load_predictions(second)}
    scores, combined = compare.ensemble_scores(members)
    assert list(scores["run"]) == ["a", "b", compare.ENSEMBLE_LABEL]
    assert scores["accuracy"].iloc[0] == pytest.approx(first.info["test_accuracy"])
    np.testing.assert_allclose(combined.probs, (members["a"].probs + members["b"].probs) / 2,
                               rtol=1e-6)
    assert scores["accuracy"].iloc[-1] == pytest.approx(summary_metrics(combined)["accuracy"])


def test_ensemble_scores_refuse_one_run_or_mismatched_runs(run_factory) -> None:
    plain = load_predictions(run_factory("completed"))
    other = load_predictions(run_factory("completed", cifar100=True, num_classes=6))
    with pytest.raises(ValueError, match="at least two"):
        compare.ensemble_scores({"only": plain})
    with pytest.raises(ValueError, match="class_names differ"):
        compare.ensemble_scores({"a": plain, "b": other})
