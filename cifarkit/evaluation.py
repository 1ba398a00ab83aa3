"""Test-set predictions -> metrics, confusion matrices, per-class tables and error picks.

Pure numpy/pandas/scikit-learn so the Runs and Errors pages never need Keras to show results.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

# Keras clips probabilities to [EPSILON, 1 - EPSILON] before the log: same value here, so the
# loss in eval.json matches the one Keras printed during training.
EPSILON = 1e-7
CALIBRATION_BINS = 15  # equal-width confidence bins of the expected calibration error (Guo 2017)
EDGE_SLACK = 1e-6  # in units of a bin's width: float32 confidences on a bin edge stay below it
_REQUIRED_KEYS = ("y_true", "probs", "class_names")
_FIELDS = (*_REQUIRED_KEYS, "images", "coarse_names", "fine_to_coarse")


@dataclass(eq=False)  # arrays have no single truth value: compare fields explicitly
class Predictions:
    """One model's (or an ensemble's) class probabilities on a labelled image set."""

    y_true: np.ndarray                      # int64 (N,) in 0..C-1
    probs: np.ndarray                       # float32 (N, C)
    class_names: list[str]                  # C names
    images: np.ndarray | None = None        # uint8 (N, H, W, 3), for galleries
    coarse_names: list[str] | None = None   # CIFAR-100 fine runs: the 20 superclass names
    fine_to_coarse: np.ndarray | None = None  # (C,) class index -> coarse index

    def __post_init__(self) -> None:
        self.y_true = np.asarray(self.y_true).astype(np.int64)
        self.probs = np.asarray(self.probs, dtype=np.float32)
        self.class_names = [str(name) for name in self.class_names]
        if self.coarse_names is not None:
            self.coarse_names = [str(name) for name in self.coarse_names]
        if self.fine_to_coarse is not None:
            self.fine_to_coarse = np.asarray(self.fine_to_coarse).astype(np.int64)
        self._validate()

    def _validate(self) -> None:
        """Fail at construction, not deep inside a chart, when the arrays disagree."""
        if self.probs.ndim != 2 or self.y_true.shape != (len(self.probs),):
            raise ValueError(f"probs must be (N, C) and y_true (N,); got {self.probs.shape} "
                             f"and {self.y_true.shape}")
        if len(self.y_true) == 0:
            raise ValueError("predictions hold no samples: nothing to evaluate")
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} "
                             "probability columns")
        if self.y_true.min() < 0 or self.y_true.max() >= self.num_classes:
            raise ValueError(f"y_true must lie in 0..{self.num_classes - 1}")
        if self.images is not None and len(self.images) != len(self.y_true):
            raise ValueError(f"{len(self.images)} images for {len(self.y_true)} labels")
        self._validate_coarse()

    def _validate_coarse(self) -> None:
        if self.fine_to_coarse is None:
            return
        if self.coarse_names is None or self.fine_to_coarse.shape != (self.num_classes,):
            raise ValueError("fine_to_coarse needs coarse_names and one entry per class")
        if self.fine_to_coarse.min() < 0 or self.fine_to_coarse.max() >= len(self.coarse_names):
            raise ValueError(f"fine_to_coarse must lie in 0..{len(self.coarse_names) - 1}")

    @property
    def num_classes(self) -> int:
        return self.probs.shape[1]

    @property
    def y_pred(self) -> np.ndarray:
        """Predicted class index per sample (argmax; ties go to the lower index)."""
        return self.probs.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class per sample."""
        return self.probs.max(axis=1)

    def save(self, path: str | Path) -> Path:
        """Write predictions.npz atomically, so a page polling the run never reads half a file."""
        path = Path(path)
        arrays = {"y_true": self.y_true, "probs": self.probs,
                  "class_names": np.array(self.class_names, dtype=str)}
        if self.images is not None:
            arrays["images"] = np.asarray(self.images)
        if self.coarse_names is not None:
            arrays["coarse_names"] = np.array(self.coarse_names, dtype=str)
        if self.fine_to_coarse is not None:
            arrays["fine_to_coarse"] = self.fine_to_coarse
        partial = path.with_name(path.name + ".partial")
        with open(partial, "wb") as handle:  # a handle keeps numpy from appending ".npz"
            np.savez_compressed(handle, **arrays)
        os.replace(partial, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Predictions:
        """Read predictions.npz without unpickling (the file may come from someone else)."""
        arrays = _read_npz(Path(path))
        missing = [key for key in _REQUIRED_KEYS if key not in arrays]
        if missing:
            raise ValueError(f"{path} lacks {', '.join(missing)}: not a predictions file")
        fields = {key: arrays[key] for key in _FIELDS if key in arrays}
        for key in ("class_names", "coarse_names"):
            if key in fields:
                fields[key] = fields[key].tolist()
        return cls(**fields)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an .npz; anything unreadable (or pickled) becomes one clear ValueError."""
    if not path.is_file():
        raise FileNotFoundError(f"predictions file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with data:
            return {key: data[key] for key in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a readable predictions file: {err}") from err


def summary_metrics(pred: Predictions) -> dict[str, float]:
    """The headline numbers written to eval.json and shown on the Runs page."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        pred.y_true, pred.y_pred, labels=range(pred.num_classes), average="macro",
        zero_division=0)
    return {
        "accuracy": float(np.mean(pred.y_pred == pred.y_true)),
        "top5_accuracy": top_k_accuracy(pred, min(5, pred.num_classes)),
        "loss": cross_entropy(pred),
        "macro_precision": float(precision),
        "macro_recall": float(recall),
        "macro_f1": float(f1),
        "ece": expected_calibration_error(pred),
    }


def expected_calibration_error(pred: Predictions, bins: int = CALIBRATION_BINS) -> float:
    """How far stated confidence is from accuracy: |accuracy - confidence| per confidence bin,
    weighted by the bin's share of samples (0 = a model right 90 % of the times it says 90 %)."""
    table = reliability_table(pred, bins)
    filled = table[table["count"] > 0]
    gaps = (filled["accuracy"] - filled["confidence"]).abs()
    return float((gaps * filled["count"]).sum() / len(pred.y_true))


def reliability_table(pred: Predictions, bins: int = CALIBRATION_BINS) -> pd.DataFrame:
    """One row per equal-width confidence bin (lower, upper]: how many predictions fell in it,
    their mean confidence and how many of them were right (NaN for an empty bin)."""
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
        raise ValueError(f"bins must be a whole number of at least 1, got {bins!r}")
    confidence = pred.confidence.astype(np.float64)
    correct = (pred.y_pred == pred.y_true).astype(np.float64)
    # bins are (lower, upper]; float32 rounding (0.4 is stored as 0.40000001) must not move a
    # confidence on an edge into the next bin, hence the slack far below any real difference
    index = np.clip(np.ceil(confidence * bins - EDGE_SLACK).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):  # empty bins: 0/0 is NaN on purpose
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(index, weights=correct, minlength=bins) / count
    edges = np.linspace(0.0, 1.0, bins + 1)
    return pd.DataFrame({"lower": edges[:-1], "upper": edges[1:], "count": count,
                         "confidence": mean_confidence, "accuracy": accuracy})


def top_k_accuracy(pred: Predictions, k: int) -> float:
    """Share of samples whose true class is among the k most probable.

    Hand-written because sklearn's top_k_accuracy_score special-cases two-class problems.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    ranked = np.argsort(-pred.probs, axis=1, kind="stable")[:, :k]
    return float(np.mean((ranked == pred.y_true[:, None]).any(axis=1)))


def cross_entropy(pred: Predictions) -> float:
    """Mean categorical cross-entropy, computed the way Keras does (normalise rows, clip)."""
    probs = pred.probs.astype(np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)
    true_probs = np.clip(probs[np.arange(len(probs)), pred.y_true], EPSILON, 1 - EPSILON)
    return float(-np.mean(np.log(true_probs)))


def per_class_table(pred: Predictions) -> pd.DataFrame:
    """One row per class, worst first, so the classes that need work head the table.

    Classes absent from the set (support 0) have no accuracy: NaN, listed last.
    """
    precision, recall, f1, support = precision_recall_fscore_support(
        pred.y_true, pred.y_pred, labels=range(pred.num_classes), average=None, zero_division=0)
    accuracy = np.where(support > 0, recall, np.nan)
    table = pd.DataFrame({
        "class": pred.class_names, "precision": precision, "recall": recall, "f1": f1,
        "support": support, "accuracy": accuracy, "error_rate": 1 - accuracy,
    })
    return table.sort_values(["error_rate", "class"], ascending=[False, True],
                             na_position="last", kind="stable").reset_index(drop=True)


def confusion(pred: Predictions, normalize: bool = False) -> np.ndarray:
    """C×C matrix, rows = true class; normalize=True gives per-row shares (empty rows stay 0)."""
    return confusion_matrix(pred.y_true, pred.y_pred, labels=range(pred.num_classes),
                            normalize="true" if normalize else None)


def coarse_predictions(pred: Predictions) -> Predictions:
    """The same predictions scored on CIFAR-100 superclasses: a fine mistake inside the right
    superclass (maple vs oak) counts as correct, which shows how wrong the model really is."""
    if pred.fine_to_coarse is None or pred.coarse_names is None:
        raise ValueError("these predictions have no superclass table (fine_to_coarse): "
                         "only CIFAR-100 fine-label runs can be rolled up")
    rollup = np.zeros((pred.num_classes, len(pred.coarse_names)), dtype=np.float32)
    rollup[np.arange(pred.num_classes), pred.fine_to_coarse] = 1.0
    return Predictions(y_true=pred.fine_to_coarse[pred.y_true], probs=pred.probs @ rollup,
                       class_names=list(pred.coarse_names), images=pred.images)


def most_confused_pairs(pred: Predictions, top: int = 10) -> pd.DataFrame:
    """The most frequent (true, predicted) mistakes, largest count first."""
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    counts = confusion(pred)
    np.fill_diagonal(counts, 0)
    true_idx, pred_idx = np.nonzero(counts)
    pair_counts = counts[true_idx, pred_idx]
    order = np.lexsort((pred_idx, true_idx, -pair_counts))[:top]
    true_idx, pred_idx, pair_counts = true_idx[order], pred_idx[order], pair_counts[order]
    support = np.bincount(pred.y_true, minlength=pred.num_classes)
    names = np.array(pred.class_names, dtype=object)
    return pd.DataFrame({
        "true": names[true_idx], "predicted": names[pred_idx],
        "true_index": true_idx, "predicted_index": pred_idx, "count": pair_counts,
        "share_of_true": pair_counts / support[true_idx],
    })


def misclassified(pred: Predictions, true_class: int,
                  predicted_class: int | None = None) -> pd.DataFrame:
    """Wrong predictions for one class, most confident first: confident mistakes are the ones
    worth looking at (label noise, look-alike classes)."""
    _check_class(pred, true_class, "true_class")
    wrong = (pred.y_true == true_class) & (pred.y_pred != true_class)
    if predicted_class is not None:
        _check_class(pred, predicted_class, "predicted_class")
        wrong &= pred.y_pred == predicted_class
    index = np.flatnonzero(wrong)
    names = np.array(pred.class_names, dtype=object)
    table = pd.DataFrame({"index": index, "true": names[pred.y_true[index]],
                          "predicted": names[pred.y_pred[index]],
                          "confidence": pred.confidence[index]})
    return table.sort_values("confidence", ascending=False, kind="stable").reset_index(drop=True)


def _check_class(pred: Predictions, value: int, field: str) -> None:
    if not 0 <= value < pred.num_classes:
        raise ValueError(f"{field} must be a class index in 0..{pred.num_classes - 1}, "
                         f"got {value}")


def ensemble(preds: Sequence[Predictions]) -> Predictions:
    """Average the probabilities of several runs on the same test set (a cheap accuracy boost)."""
    if not preds:
        raise ValueError("ensemble needs at least one set of predictions")
    first = preds[0]
    for number, other in enumerate(preds[1:], start=2):
        if other.class_names != first.class_names:
            raise ValueError(f"class_names differ: predictions 1 has {first.class_names}, "
                             f"predictions {number} has {other.class_names}")
        if not np.array_equal(other.y_true, first.y_true):
            raise ValueError(f"y_true differs between predictions 1 and {number}: "
                             "they were not made on the same test set")
    probs = np.mean([p.probs for p in preds], axis=0, dtype=np.float64).astype(np.float32)
    return Predictions(y_true=first.y_true, probs=probs, class_names=list(first.class_names),
                       images=first.images, coarse_names=first.coarse_names,
                       fine_to_coarse=first.fine_to_coarse)
