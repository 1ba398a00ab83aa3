"""A job folder's files: the only channel between a worker and everything else.

status.json, metrics.jsonl and STOP mean the same in every job folder (a search's running trial
writes metrics.jsonl too; cifarkit.searchdir adds a search's own files); the rest are a run's.
The worker writes, pages and the CLI read, concurrently; so status is replaced atomically and the
metrics log is append-only JSON lines whose reader tolerates a half-written last line.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from cifarkit import atomicfile

CONFIG = "config.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
HISTORY = "history.csv"
BEST_MODEL = "model.keras"
LAST_MODEL = "last.keras"
EVAL = "eval.json"
PREDICTIONS = "predictions.npz"
LOG = "train.log"
STOP = "STOP"

# status.json fields and the kind of value each holds (written by training, tuning, modelfiles).
STATUS_FIELDS = {
    "status": "text", "error": "text", "model_name": "text", "imported": "flag",
    "created": "number", "started": "number", "finished": "number", "pid": "count",
    "pid_started": "count", "epochs_run": "count", "checkpoint_epoch": "count",
    "train_seconds": "number", "peak_memory_mb": "number", "weights_mb": "number",
    "model_file_mb": "number", "trainable_params": "count", "non_trainable_params": "count",
    "num_classes": "count", "train_images": "count", "test_images": "count",
    "planned_trials": "count", "trial_epochs": "count", "best_trial": "count",
    "best_score": "number", "training_started": "number", "elapsed_before": "number",
    "steps_per_epoch": "count", "partial_epoch": "count", "partial_batches": "count",
    "owner": "text", "owner_name": "text", "time_limit_min": "number",  # cifarkit.classroom
    "note": "text", "slot": "count", "slot_taken": "number", "queued_seconds": "number",  # queue
    # cifarkit.training's time budget (cifarkit.budget), accelerator decision and EMA model
    "time_budget_s": "number", "budget_epochs": "count", "budget_images_per_second": "number",
    "budget_planned_seconds": "number", "budget_fitted_at": "number",
    "precision": "text", "replicas": "count", "ema_val_accuracy": "number", "ema_kept": "flag",
    "temperature": "number",  # cifarkit.scoring's calibration: the fitted softmax temperature
}
# metrics.jsonl row kinds and the whole-number fields a row of that kind must have.
ROW_KINDS = {"epoch": ("epoch",), "batch": ("epoch", "step", "steps")}


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from disk, or {} when the file is missing or mid-write."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_json_atomic(path: Path, value: dict[str, Any]) -> None:
    """Replace a JSON file in one step, so readers never see half of it.

    On any failure (a full disk) the temporary file is removed and the old file stays as it was.
    """
    atomicfile.write_atomic(path, lambda file: json.dump(value, file, indent=2))


def read_status(folder: Path) -> dict[str, Any]:
    """status.json; a field whose value has the wrong type (a hand edit, a damaged file) reads
    as missing, so every reader can trust the types in STATUS_FIELDS."""
    return {key: value for key, value in read_json(folder / STATUS).items()
            if _has_type(value, STATUS_FIELDS.get(key, _field_kind(key)))}


def _field_kind(key: str) -> str | None:
    """test_* fields are scores (numbers); other unknown fields are kept as they are."""
    return "number" if key.startswith("test_") else None


def _has_type(value: Any, kind: str | None) -> bool:
    """Whether value is of the kind: text, flag (true/false), count (whole number ≥ 0), number
    (finite); kind None accepts anything."""
    if kind is None:
        return True
    if kind == "text":
        return isinstance(value, str)
    if kind == "flag":
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if kind == "count":
        return isinstance(value, int) and value >= 0
    return math.isfinite(value)


def update_status(folder: Path, **changes: Any) -> dict[str, Any]:
    """Merge changes into status.json and return the new status."""
    status = {**read_status(folder), **changes}
    write_json_atomic(folder / STATUS, status)
    return status


def append_metrics(folder: Path, row: dict[str, Any]) -> None:
    with open(folder / METRICS, "a") as handle:
        handle.write(json.dumps(row) + "\n")


def reset_metrics(folder: Path) -> None:
    (folder / METRICS).unlink(missing_ok=True)


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    """Every sound row of metrics.jsonl: a line still being written, a line that is not a JSON
    object and undecodable bytes are skipped; values that are not numbers are dropped."""
    try:
        lines = (folder / METRICS).read_bytes().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("kind") in ROW_KINDS:
            clean = _clean_row(row)
            if all(_has_type(clean.get(key), "count") for key in ROW_KINDS[row["kind"]]):
                rows.append(clean)
    return rows


def _clean_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row's kind and its number (and true/false) values; anything else is damage."""
    return {key: value for key, value in row.items()
            if key == "kind" or isinstance(value, int | float)}


def epoch_rows(folder: Path) -> list[dict[str, Any]]:
    """One row per epoch; a resumed run may repeat an epoch, the latest record wins."""
    by_epoch = {row["epoch"]: row for row in read_metrics(folder) if row["kind"] == "epoch"}
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def latest_batch(folder: Path) -> dict[str, Any] | None:
    rows = [row for row in read_metrics(folder) if row["kind"] == "batch"]
    return rows[-1] if rows else None


def completed_epochs(run_dir: Path) -> int:
    rows = epoch_rows(run_dir)
    return int(rows[-1]["epoch"]) if rows else 0


def best_validation_accuracy(run_dir: Path) -> float | None:
    scores = [row["val_accuracy"] for row in epoch_rows(run_dir)
              if _has_type(row.get("val_accuracy"), "number")]
    return max(scores) if scores else None


def request_stop(folder: Path) -> None:
    (folder / STOP).touch()


def stop_requested(folder: Path) -> bool:
    return (folder / STOP).exists()


def clear_stop(folder: Path) -> None:
    (folder / STOP).unlink(missing_ok=True)


def resume_refusal(run_dir: Path) -> str | None:
    """Why a worker must not resume this run, or None.

    A scored run (eval.json) that trained epochs but whose checkpoint epoch is lost (status.json
    blanked) or whose last.keras is gone would retrain from epoch 1 and replace its best model.
    Checked by runs.resume and again by the worker (training.train) before it touches anything.
    """
    if not (run_dir / EVAL).is_file() or completed_epochs(run_dir) == 0:
        return None
    epoch = read_status(run_dir).get("checkpoint_epoch")
    if epoch and (run_dir / LAST_MODEL).is_file():
        return None
    return (f"run {run_dir.name} was already scored ({EVAL}) and has no resume "
            "checkpoint: resuming would retrain it from epoch 1 over its best model")
