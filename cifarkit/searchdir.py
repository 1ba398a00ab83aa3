"""The search directory's files, and reading a search's trials back from them.

Like a run directory (cifarkit.rundir) it is the only channel between the search worker and
everything else. Trials are read from keras-tuner's own per-trial `trial.json` files (plain JSON),
so no Keras is needed to show progress; status.json, STOP and metrics.jsonl (the running trial's
batches, via training.ProgressWriter) work exactly as in a run directory.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from cifarkit import rundir

TUNE = "tune.json"  # the TuneConfig
STATUS = rundir.STATUS  # status.json: queued | running | completed | failed | stopped, pid, ...
LOG = "search.log"  # stdout/stderr of the worker
PROJECT = "keras_tuner"  # keras-tuner's project folder: oracle.json, trial_<id>/trial.json
TRIAL_FILE = "trial.json"

# keras-tuner trial status -> ours. RUNNING on disk while no worker runs means the trial was cut
# short (stop or crash); it is not scored, and a resume runs it again from the start.
TRIAL_STATUS = {"COMPLETED": "completed", "FAILED": "failed", "INVALID": "failed",
                "RUNNING": "running", "IDLE": "running", "STOPPED": "stopped"}


def project_dir(search_dir: Path) -> Path:
    return search_dir / PROJECT


def read_trials(search_dir: Path) -> list[dict[str, Any]]:
    """Every sound trial.json, in trial order; a file being rewritten right now, or one whose id
    or hyperparameters are damaged, is skipped."""
    trials = [rundir.read_json(path)
              for path in project_dir(search_dir).glob(f"trial_*/{TRIAL_FILE}")]
    trials = [trial for trial in trials if _sound(trial)]
    return sorted(trials, key=lambda trial: int(trial["trial_id"]))


def _sound(trial: dict[str, Any]) -> bool:
    """A trial id of digits and hyperparameter values in an object: what trial_row relies on."""
    values = trial.get("hyperparameters", {})
    return (str(trial.get("trial_id")).isdecimal() and isinstance(values, dict)
            and isinstance(values.get("values", {}), dict)
            and isinstance(trial.get("metrics", {}), dict))


def trial_row(trial: dict[str, Any], names: list[str], epochs: int) -> dict[str, Any]:
    """One table row of a trial: id, status, hyperparameters, epochs, score, metrics, error.

    "trial" is keras-tuner's id (0-based, folder trial_<id>); val_accuracy/val_loss are taken at
    the trial's best epoch; "error" is a failed trial's exception line. `epochs` is what a trial
    trains unless Hyperband gave it its own budget ("tuner/epochs").
    """
    values = trial.get("hyperparameters", {}).get("values", {})
    status = TRIAL_STATUS.get(trial.get("status", ""), "running")
    row: dict[str, Any] = {"trial": int(trial["trial_id"]), "status": status}
    row.update({name: values.get(name) for name in names})
    row["epochs"] = values.get("tuner/epochs", epochs)
    row["score"] = _finite(trial.get("score")) if status == "completed" else None
    for metric in ("val_accuracy", "val_loss"):
        row[metric] = _best_step_value(trial, metric) if status == "completed" else None
    row["error"] = _last_line(trial.get("message")) if status == "failed" else None
    return row


def _last_line(message: Any) -> str | None:
    """The exception line of a failed trial's traceback (keras-tuner keeps the whole text)."""
    lines = [line for line in str(message or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else None


def _finite(value: Any) -> float | None:
    """A number as float; NaN, infinities and non-numbers read as missing."""
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _best_step_value(trial: dict[str, Any], metric: str) -> float | None:
    """The metric at the trial's best epoch (keras-tuner records it at `best_step`)."""
    try:
        history = trial.get("metrics", {}).get("metrics", {}).get(metric, {})
        for observation in history.get("observations", []):
            if observation.get("step") == trial.get("best_step") and observation.get("value"):
                return _finite(observation["value"][0])
    except (AttributeError, TypeError, IndexError, KeyError):  # a damaged trial.json
        return None
    return None
