"""The end of a run: the best model scored on the test set, and every result file written.

Shared by training (cifarkit.training) and model import (cifarkit.modelfiles), so a trained and an
imported run carry the same artifacts and later pages never recompute them. Test predictions go
through the run's Inference (flip TTA, then a temperature fitted on the validation split), the
same one Predict and the CLI read back with predict.run_inference.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras

from cifarkit import calibration, failures, rundir
from cifarkit.evaluation import Predictions, expected_calibration_error, summary_metrics
from cifarkit.predict import Inference, predict_probs
from cifarkit.system import peak_memory_mb

if TYPE_CHECKING:
    from cifarkit.config import RunConfig
    from cifarkit.training import PreparedData


def finish_run(run_dir: Path, config: RunConfig, model: keras.Model, data: PreparedData,
               stopped: bool) -> dict[str, Any]:
    """Score the best model on the test set, write every result file, and end the status.

    status.json gets the temperature (1 when not calibrated), eval.json the test ECE before
    calibration as "ece_uncalibrated" beside the calibrated "ece", so the gain is visible.
    """
    best = _best_model(run_dir, model)
    batch = config.training.batch_size
    flip = Inference(flip_tta=config.augment.flip_tta)
    test = _predict_test(best, data, flip, batch)
    uncalibrated = expected_calibration_error(test)
    temperature = 1.0
    if config.training.calibrate and len(data.x_val):
        temperature = fit_validation_temperature(best, data, flip, batch)
        test = replace(test, probs=calibration.apply_temperature(test.probs, temperature))
    results = save_test_results(run_dir, test, ece_uncalibrated=uncalibrated)
    write_history_csv(run_dir)
    status = "stopped" if stopped else "completed"
    return failures.save_status(run_dir, status=status, finished=time.time(),
                                peak_memory_mb=peak_memory_mb(), temperature=temperature,
                                **results)


def fit_validation_temperature(model: keras.Model, data: PreparedData, flip: Inference,
                               batch_size: int) -> float:
    """The softmax temperature that best fits the validation split's (TTA'd) probabilities:
    fitted on images the test score never sees, so the test ECE stays an honest measure."""
    probs = predict_probs([model], data.x_val, batch_size=batch_size, inference=[flip])
    return round(calibration.fit_temperature(probs, data.y_val), 4)


def save_test_results(run_dir: Path, predictions: Predictions,
                      **extra_metrics: float) -> dict[str, Any]:
    """Write predictions.npz and eval.json (summary_metrics plus extra_metrics); return the
    status fields they imply.

    Shared with model import (cifarkit.modelfiles), so a trained and an imported run carry the
    same artifacts. Needs run_dir/model.keras in place (its size is reported).
    """
    with failures.saving("the test predictions", run_dir / rundir.PREDICTIONS):
        predictions.save(run_dir / rundir.PREDICTIONS)
    metrics = {**summary_metrics(predictions), **extra_metrics}
    failures.save_atomic(run_dir / rundir.EVAL, "the test metrics",
                         lambda path: path.write_text(json.dumps(metrics, indent=2)))
    return {"model_file_mb": round((run_dir / rundir.BEST_MODEL).stat().st_size / 2**20, 3),
            **{f"test_{key}": value for key, value in metrics.items()}}


def _best_model(run_dir: Path, model: keras.Model) -> keras.Model:
    """The checkpointed best model, or the in-memory one if no epoch finished validation."""
    best_path = run_dir / rundir.BEST_MODEL
    if not best_path.is_file():
        failures.save_atomic(best_path, "the best model", model.save)
        return model
    import cifarkit.models.layers  # noqa: F401 - registers custom layers for loading

    return keras.saving.load_model(best_path, safe_mode=True)


def _predict_test(model: keras.Model, data: PreparedData, inference: Inference,
                  batch_size: int) -> Predictions:
    probs = predict_probs([model], data.x_test, batch_size=batch_size, inference=[inference])
    dataset = data.dataset
    return Predictions(y_true=data.y_test, probs=probs,
                       class_names=list(dataset.class_names), images=data.x_test,
                       coarse_names=dataset.coarse_names, fine_to_coarse=dataset.fine_to_coarse)


def write_history_csv(run_dir: Path) -> None:
    """history.csv: one row per epoch across all sessions of the run (resumes included)."""
    rows = rundir.epoch_rows(run_dir)
    if not rows:
        return
    columns = list(dict.fromkeys(key for row in rows for key in row if key != "kind"))

    def write(path: Path) -> None:
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows({key: row.get(key) for key in columns} for row in rows)

    failures.save_atomic(run_dir / rundir.HISTORY, "the history table", write)
