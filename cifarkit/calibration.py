"""Temperature scaling (Guo et al. 2017): one number that makes stated confidence match accuracy.

It works on probabilities, not logits: softmax(z / T) = p^(1/T) / sum(p^(1/T)), so a saved
model's outputs (or an average of several, as with flip test-time augmentation) can be scaled
exactly. T > 1 softens an over-confident model, T < 1 sharpens an under-confident one (label
smoothing makes models under-confident). Pure numpy/scipy: no Keras.
"""

from __future__ import annotations

import math

import numpy as np

# Probabilities are clipped here before the log, as Keras and evaluation.cross_entropy do; kept
# local so that cifarkit.predict (which applies temperatures) imports neither sklearn nor scipy.
EPSILON = 1e-7

# log T is searched in [ln 0.2, ln 5]: trained nets need 0.5..3; a fit at the edge says the
# validation set is degenerate (every image right: NLL keeps falling as T -> 0), and the bound
# keeps such a fit from turning every later answer into "100 %".
MIN_TEMPERATURE = 0.2
MAX_TEMPERATURE = 5.0
SEARCH_TOLERANCE = 1e-4  # on log T: T is found to about 0.01 %


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Rescale class probabilities (N, C) as softmax(logits / temperature) would, row by row."""
    _check_temperature(temperature)
    probs = _as_probabilities(probs)
    if temperature == 1.0:
        return probs.astype(np.float32)
    scaled = _scaled_log_probs(np.log(np.clip(probs, EPSILON, 1.0)), temperature)
    return np.exp(scaled).astype(np.float32)


def fit_temperature(probs: np.ndarray, y_true: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of the true labels.

    A bounded 1-D search on log T (NLL is smooth in it; T itself spans orders of magnitude).
    """
    from scipy.optimize import minimize_scalar  # only the end of a run fits: import it there

    probs = _as_probabilities(probs)
    y_true = np.asarray(y_true).astype(np.int64)
    if y_true.shape != (len(probs),) or len(probs) == 0:
        raise ValueError(f"fit_temperature needs one label per probability row, got "
                         f"{y_true.shape} labels for {probs.shape[0]} rows")
    if y_true.min() < 0 or y_true.max() >= probs.shape[1]:
        raise ValueError(f"labels must lie in 0..{probs.shape[1] - 1}")
    log_probs = np.log(np.clip(probs, EPSILON, 1.0))
    rows = np.arange(len(y_true))

    def nll(log_temperature: float) -> float:
        scaled = _scaled_log_probs(log_probs, math.exp(log_temperature))
        return float(-scaled[rows, y_true].mean())

    found = minimize_scalar(nll, bounds=(math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE)),
                            method="bounded", options={"xatol": SEARCH_TOLERANCE})
    return float(math.exp(found.x))


def _scaled_log_probs(log_probs: np.ndarray, temperature: float) -> np.ndarray:
    """log softmax(log p / T), with the row maximum taken out so nothing overflows."""
    scaled = log_probs / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    return scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))


def _as_probabilities(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 1:
        raise ValueError(f"probabilities must be (N, C), got shape {probs.shape}")
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError("probabilities must be finite and not negative")
    return probs


def _check_temperature(temperature: float) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) \
            or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
