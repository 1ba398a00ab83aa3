"""A run's predictions and model, loaded once per file version (ui.cache)."""

from __future__ import annotations

from typing import Any

from cifarkit import predict, rundir, runs
from cifarkit.evaluation import Predictions
from ui.cache import by_file


@by_file(max_entries=8, spinner="Reading test-set predictions…")
def predictions_file(path: str) -> Predictions:
    return Predictions.load(path)


@by_file(max_entries=6, spinner="Loading the model…")
def model_file(path: str) -> Any:
    return predict.load_model(path)


def load_predictions(run: runs.Run) -> Predictions:
    """A run's predictions.npz, cached until the file changes (a resumed run rewrites it)."""
    return predictions_file(run.path / rundir.PREDICTIONS)


def load_model(run: runs.Run) -> Any:
    """A run's best model (a keras.Model), loaded once per file version and shared by sessions."""
    return model_file(run.path / rundir.BEST_MODEL)
