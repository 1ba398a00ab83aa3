"""Runs side by side: the comparison table, overlaid learning curves and ensemble scores.

Plain pandas from the run directories (no Keras, no Streamlit), so the Runs page and its CSV
export show exactly what the tests check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from cifarkit import rundir
from cifarkit.evaluation import Predictions, ensemble, summary_metrics
from cifarkit.labels import builtin_label_names
from cifarkit.runs import Run
from cifarkit.sources import source_title

# Columns of runs_table, in display order; the page labels and formats them.
TABLE_COLUMNS = (
    "name", "model", "data", "classes", "status", "accuracy", "top5_accuracy", "macro_f1",
    "ece", "trainable_params", "non_trainable_params", "params", "weights_mb", "model_file_mb",
    "train_seconds", "epochs", "max_epochs", "created", "run_id", "error",
)
CURVE_METRICS = ("val_accuracy", "val_loss", "accuracy", "loss")
ENSEMBLE_LABEL = "Ensemble (average)"


def data_label(run: Run) -> str:
    """'CIFAR-100 fine', 'CIFAR-10', 'My own images (flowers)': what the model learned from."""
    data = run.config.data
    label = source_title(data.source)
    if data.source == "cifar100":
        label += f" {data.label_mode}"
    if data.source == "folder" and data.path:
        label += f" ({data.path.rstrip('/').rsplit('/', 1)[-1]})"
    return label


def is_imported(run: Run) -> bool:
    """A run made by importing a model file: no epochs, planned or run (see modelfiles)."""
    return bool(run.info.get("imported"))


def model_label(run: Run) -> str:
    """The architecture trained, or "imported (name)" for a model file brought in from outside,
    whose config only holds a placeholder architecture."""
    if is_imported(run):
        return f"imported ({run.info.get('model_name') or 'model'})"
    return run.config.model.architecture


def class_count(run: Run) -> int | None:
    """Number of classes the run trains on: recorded by the worker, else read off the config."""
    recorded = run.info.get("num_classes")
    if isinstance(recorded, int):
        return recorded
    data = run.config.data
    if data.classes:
        return len(data.classes)
    if data.num_classes:
        return data.num_classes
    names = builtin_label_names(data.source, data.label_mode)
    return len(names) if names is not None else None


def run_scores(run: Run) -> dict[str, float]:
    """Test-set scores from status.json, or eval.json for runs written before they were copied."""
    from_status = {key[len("test_"):]: value for key, value in run.info.items()
                   if key.startswith("test_") and isinstance(value, int | float)}
    return from_status or rundir.read_json(run.path / rundir.EVAL)


def runs_table(run_list: Sequence[Run]) -> pd.DataFrame:
    """One row per run with everything worth comparing; missing values are NaN/None."""
    rows = [_table_row(run) for run in run_list]
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    for column in ("classes", "trainable_params", "non_trainable_params", "epochs", "max_epochs"):
        table[column] = table[column].astype("Int64")
    table["params"] = table["trainable_params"] + table["non_trainable_params"]
    for column in ("accuracy", "top5_accuracy", "macro_f1", "ece", "weights_mb",
                   "model_file_mb", "train_seconds"):
        table[column] = table[column].astype("float64")
    table["created"] = pd.to_datetime(table["created"])
    return table


def _table_row(run: Run) -> dict[str, object]:
    info, metrics = run.info, run_scores(run)
    created = info.get("created")
    return {
        "name": run.name, "model": model_label(run), "data": data_label(run),
        "classes": class_count(run), "status": run.status,
        "accuracy": metrics.get("accuracy"), "top5_accuracy": metrics.get("top5_accuracy"),
        "macro_f1": metrics.get("macro_f1"),
        "ece": metrics.get("ece"),  # runs scored before calibration was measured: NaN
        "trainable_params": info.get("trainable_params"),
        "non_trainable_params": info.get("non_trainable_params"),
        "weights_mb": info.get("weights_mb"), "model_file_mb": info.get("model_file_mb"),
        "train_seconds": info.get("train_seconds"), "epochs": info.get("epochs_run"),
        "max_epochs": None if is_imported(run) else run.config.training.epochs,
        "created": datetime.fromtimestamp(created) if isinstance(created, int | float) else None,
        "run_id": run.run_id, "error": info.get("error"),
    }


def best_run(run_list: Sequence[Run]) -> Run | None:
    """The run Predict should open with: the best completed run by test accuracy among runs
    that have a model, the newest on a tie.

    The newest run is often a 1-epoch trial from a search; a student should meet the best model
    first. Without any scored completed run, the newest run with a model; None without models.
    """
    with_model = [run for run in run_list if run.has_model]
    scored = [(accuracy, run) for run in with_model if run.status == "completed"
              and isinstance(accuracy := run_scores(run).get("accuracy"), int | float)]
    if scored:
        return max(scored, key=lambda pair: (pair[0], _created(pair[1])))[1]
    return max(with_model, key=_created, default=None)


def _created(run: Run) -> float:
    created = run.info.get("created")
    return float(created) if isinstance(created, int | float) else float("-inf")


def unique_names(run_list: Sequence[Run]) -> dict[str, str]:
    """run_id -> a name that tells runs apart in legends (two runs may share a name)."""
    counts = pd.Series([run.name for run in run_list]).value_counts()
    return {run.run_id: run.name if counts[run.name] == 1 else f"{run.name} ({run.run_id})"
            for run in run_list}


def epoch_curves(run_list: Sequence[Run]) -> pd.DataFrame:
    """Long table run, epoch, val_accuracy, val_loss, accuracy, loss: one row per run-epoch."""
    names = unique_names(run_list)
    rows = [{"run": names[run.run_id], "epoch": row["epoch"],
             **{metric: row.get(metric, np.nan) for metric in CURVE_METRICS}}
            for run in run_list for row in rundir.epoch_rows(run.path)]
    return pd.DataFrame(rows, columns=["run", "epoch", *CURVE_METRICS])


def ensemble_scores(members: Mapping[str, Predictions]) -> tuple[pd.DataFrame, Predictions]:
    """Each member's test scores and the averaged ensemble's, one row each (ensemble last).

    Raises ValueError (from evaluation.ensemble) when the members were not made on the same
    classes and test images, and when fewer than two are given.
    """
    if len(members) < 2:
        raise ValueError("an ensemble needs at least two runs")
    combined = ensemble(list(members.values()))
    rows = [{"run": name, **summary_metrics(pred)} for name, pred in members.items()]
    rows.append({"run": ENSEMBLE_LABEL, **summary_metrics(combined)})
    return pd.DataFrame(rows), combined
