"""evaluation: every expected number below is worked out by hand from the tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cifarkit import labels
from cifarkit.evaluation import (
    Predictions,
    coarse_predictions,
    confusion,
    ensemble,
    expected_calibration_error,
    misclassified,
    most_confused_pairs,
    per_class_table,
    reliability_table,
    summary_metrics,
    top_k_accuracy,
)

# 6 samples, 3 classes. Predicted: 0, 1, 1, 1, 2, 0  (samples 1 and 5 are wrong).
NAMES = ["cat", "dog", "ant"]
Y_TRUE = [0, 0, 1, 1, 2, 2]
PROBS = [
    [0.7, 0.2, 0.1],
    [0.3, 0.6, 0.1],
    [0.1, 0.8, 0.1],
    [0.2, 0.5, 0.3],
    [0.1, 0.2, 0.7],
    [0.5, 0.3, 0.2],  # true class 2 is last: outside the top 2
]


@pytest.fixture
def pred() -> Predictions:
    return Predictions(y_true=np.array(Y_TRUE), probs=np.array(PROBS), class_names=NAMES)


def with_predictions(y_true: list[int], y_pred: list[int], confidence: list[float],
                     num_classes: int = 3) -> Predictions:
    """Predictions whose argmax and max probability are exactly the given ones."""
    probs = np.zeros((len(y_true), num_classes))
    for row, (cls, conf) in enumerate(zip(y_pred, confidence, strict=True)):
        probs[row] = (1 - conf) / (num_classes - 1)
        probs[row, cls] = conf
    names = [f"c{i}" for i in range(num_classes)]
    return Predictions(y_true=np.array(y_true), probs=probs, class_names=names)


def test_properties(pred: Predictions) -> None:
    np.testing.assert_array_equal(pred.y_pred, [0, 1, 1, 1, 2, 0])
    np.testing.assert_allclose(pred.confidence, [0.7, 0.6, 0.8, 0.5, 0.7, 0.5])
    assert pred.probs.dtype == np.float32 and pred.y_true.dtype == np.int64


def test_summary_metrics_by_hand(pred: Predictions) -> None:
    metrics = summary_metrics(pred)
    assert set(metrics) == {"accuracy", "top5_accuracy", "loss", "macro_precision",
                            "macro_recall", "macro_f1", "ece"}
    assert all(type(value) is float for value in metrics.values())  # JSON-ready
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["top5_accuracy"] == 1.0  # k = min(5, 3) = 3: every class is in the top 3
    true_probs = [0.7, 0.3, 0.8, 0.5, 0.7, 0.2]
    assert metrics["loss"] == pytest.approx(-sum(map(math.log, true_probs)) / 6, rel=1e-6)
    # precision: cat 1/2, dog 2/3, ant 1/1; recall: cat 1/2, dog 2/2, ant 1/2
    assert metrics["macro_precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert metrics["macro_recall"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert metrics["macro_f1"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    # bins of width 1/15: 0.7 (both right), 0.6 (wrong), 0.8 (right), 0.5 (one of two right)
    assert metrics["ece"] == pytest.approx((2 * 0.3 + 0.6 + 0.2 + 0) / 6, rel=1e-5)


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    # ten predictions at 80 % of which 8 right, four at 50 % of which 2 right
    right = [1] * 8 + [0] * 2 + [1, 1, 0, 0]
    pred = with_predictions(y_true=[0 if r else 1 for r in right], y_pred=[0] * 14,
                            confidence=[0.8] * 10 + [0.5] * 4)
    assert expected_calibration_error(pred) == pytest.approx(0.0, abs=1e-6)


def test_ece_of_a_model_always_sure_and_right_half_the_time() -> None:
    pred = with_predictions(y_true=[0, 1, 2, 2], y_pred=[0, 1, 0, 1], confidence=[1.0] * 4)
    assert expected_calibration_error(pred) == pytest.approx(0.5)
    assert expected_calibration_error(pred, bins=1) == pytest.approx(0.5)


def test_ece_weights_filled_bins_and_ignores_empty_ones() -> None:
    # three at 95 % all right (gap 0.05), one at 40 % wrong (gap 0.4); 13 bins stay empty
    pred = with_predictions(y_true=[0, 1, 2, 0], y_pred=[0, 1, 2, 1],
                            confidence=[0.95, 0.95, 0.95, 0.4])
    assert expected_calibration_error(pred) == pytest.approx((3 * 0.05 + 0.4) / 4, rel=1e-5)
    table = reliability_table(pred)
    assert len(table) == 15 and table["count"].sum() == 4
    filled = table[table["count"] > 0]
    assert filled["count"].tolist() == [1, 3]
    np.testing.assert_allclose(filled["accuracy"], [0.0, 1.0])
    np.testing.assert_allclose(filled["confidence"], [0.4, 0.95], rtol=1e-6)
    assert filled.iloc[0]["lower"] < 0.4 <= filled.iloc[0]["upper"]
    assert table.loc[table["count"] == 0, "accuracy"].isna().all()
    np.testing.assert_allclose(table["upper"] - table["lower"], 1 / 15)
    # one bin: |overall accuracy - mean confidence| = |3/4 - 0.8125|
    assert expected_calibration_error(pred, bins=1) == pytest.approx(0.0625, rel=1e-5)


def test_reliability_table_refuses_bad_bins(pred: Predictions) -> None:
    for bins in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="bins"):
            reliability_table(pred, bins)


def test_top_k_accuracy(pred: Predictions) -> None:
    assert top_k_accuracy(pred, 1) == pytest.approx(4 / 6)
    assert top_k_accuracy(pred, 2) == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="k must be"):
        top_k_accuracy(pred, 0)


def test_top5_uses_five_when_there_are_more_classes() -> None:
    # 7 classes, true class ranked 1st, 5th and 6th: top-5 catches two of three.
    probs = np.array([[0.4, 0.3, 0.1, 0.08, 0.06, 0.04, 0.02]] * 3)
    pred = Predictions(y_true=np.array([0, 4, 5]), probs=probs,
                       class_names=[str(i) for i in range(7)])
    assert summary_metrics(pred)["top5_accuracy"] == pytest.approx(2 / 3)


def test_loss_clips_zero_probability() -> None:
    pred = Predictions(y_true=np.array([1]), probs=np.array([[1.0, 0.0]]), class_names=["a", "b"])
    assert summary_metrics(pred)["loss"] == pytest.approx(-math.log(1e-7), rel=1e-6)


def test_per_class_table(pred: Predictions) -> None:
    table = per_class_table(pred)
    assert list(table.columns) == ["class", "precision", "recall", "f1", "support", "accuracy",
                                   "error_rate"]
    # ant and cat tie at error 1/2: alphabetical; dog (no errors) last.
    assert list(table["class"]) == ["ant", "cat", "dog"]
    np.testing.assert_allclose(table["precision"], [1, 1 / 2, 2 / 3])
    np.testing.assert_allclose(table["recall"], [1 / 2, 1 / 2, 1])
    np.testing.assert_allclose(table["f1"], [2 / 3, 1 / 2, 4 / 5])
    np.testing.assert_array_equal(table["support"], [2, 2, 2])
    np.testing.assert_allclose(table["accuracy"], table["recall"])
    np.testing.assert_allclose(table["error_rate"], [1 / 2, 1 / 2, 0])


def test_per_class_table_puts_absent_classes_last() -> None:
    # class 0 is never a true label; c2 has 1 error in 2, c1 none.
    pred = with_predictions([1, 2, 2], [1, 2, 0], [0.9, 0.9, 0.9])
    table = per_class_table(pred)
    assert list(table["class"]) == ["c2", "c1", "c0"]
    assert table["support"].iloc[-1] == 0
    assert math.isnan(table["accuracy"].iloc[-1]) and math.isnan(table["error_rate"].iloc[-1])
    assert table["precision"].iloc[-1] == 0  # predicted once, never right (zero_division=0)


def test_confusion_counts_and_rows(pred: Predictions) -> None:
    np.testing.assert_array_equal(confusion(pred), [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    np.testing.assert_allclose(confusion(pred, normalize=True),
                               [[0.5, 0.5, 0], [0, 1, 0], [0.5, 0, 0.5]])


def test_confusion_keeps_empty_rows_zero() -> None:
    pred = with_predictions([1, 1, 2], [0, 1, 2], [0.9, 0.9, 0.9])
    counts = confusion(pred)
    assert counts.shape == (3, 3)  # class 0 never true, still gets a row
    normalized = confusion(pred, normalize=True)
    np.testing.assert_array_equal(normalized[0], [0, 0, 0])
    np.testing.assert_allclose(normalized[1], [0.5, 0.5, 0])


def test_most_confused_pairs() -> None:
    # mistakes: 0->1 twice, 0->2 once, 1->0 once
    pred = with_predictions([0, 0, 0, 1, 1, 2], [1, 1, 2, 0, 1, 2], [0.9] * 6)
    pairs = most_confused_pairs(pred)
    assert list(pairs.columns) == ["true", "predicted", "true_index", "predicted_index",
                                   "count", "share_of_true"]
    assert list(zip(pairs["true"], pairs["predicted"], strict=True)) == [
        ("c0", "c1"), ("c0", "c2"), ("c1", "c0")]
    assert list(pairs["count"]) == [2, 1, 1]
    np.testing.assert_allclose(pairs["share_of_true"], [2 / 3, 1 / 3, 1 / 2])
    assert list(pairs["true_index"]) == [0, 0, 1]
    assert len(most_confused_pairs(pred, top=2)) == 2
    with pytest.raises(ValueError, match="top"):
        most_confused_pairs(pred, top=0)


def test_most_confused_pairs_when_all_right() -> None:
    pairs = most_confused_pairs(with_predictions([0, 1], [0, 1], [0.9, 0.9]))
    assert pairs.empty and "count" in pairs.columns


def test_misclassified_most_confident_first() -> None:
    pred = with_predictions([0, 0, 0, 0, 1], [1, 2, 1, 0, 0], [0.5, 0.9, 0.7, 0.99, 0.8])
    wrong = misclassified(pred, 0)
    assert list(wrong.columns) == ["index", "true", "predicted", "confidence"]
    assert list(wrong["index"]) == [1, 2, 0]
    assert list(wrong["predicted"]) == ["c2", "c1", "c1"]
    assert set(wrong["true"]) == {"c0"}
    np.testing.assert_allclose(wrong["confidence"], [0.9, 0.7, 0.5])
    assert list(misclassified(pred, 0, predicted_class=1)["index"]) == [2, 0]
    assert misclassified(pred, 2).empty
    with pytest.raises(ValueError, match="true_class"):
        misclassified(pred, 3)
    with pytest.raises(ValueError, match="predicted_class"):
        misclassified(pred, 0, predicted_class=-1)


def cifar100_like() -> Predictions:
    """Three fine-label samples over all 100 CIFAR-100 classes."""
    fine = labels.CIFAR100_FINE_LABELS
    probs = np.zeros((3, 100))
    probs[0, fine.index("oak_tree")] = 0.6      # true maple: wrong fine, right superclass
    probs[0, fine.index("maple_tree")] = 0.4
    probs[1, fine.index("bowl")] = 0.4          # true apple: bowl wins fine, but fruit sums to 0.6
    probs[1, fine.index("apple")] = 0.3
    probs[1, fine.index("orange")] = 0.3
    probs[2, fine.index("shark")] = 0.9         # true whale: wrong superclass (fish)
    probs[2, fine.index("whale")] = 0.1
    y_true = [fine.index(name) for name in ("maple_tree", "apple", "whale")]
    images = np.arange(3 * 2 * 2 * 3, dtype=np.uint8).reshape(3, 2, 2, 3)
    return Predictions(y_true=np.array(y_true), probs=probs, class_names=list(fine),
                       images=images, coarse_names=list(labels.CIFAR100_COARSE_LABELS),
                       fine_to_coarse=np.array(labels.CIFAR100_FINE_TO_COARSE))


def test_coarse_rollup_on_cifar100_labels() -> None:
    fine = cifar100_like()
    coarse = coarse_predictions(fine)
    names = labels.CIFAR100_COARSE_LABELS
    assert coarse.class_names == list(names)
    np.testing.assert_array_equal(
        coarse.y_true,
        [names.index(n) for n in ("trees", "fruit_and_vegetables", "aquatic_mammals")])
    assert coarse.probs.shape == (3, 20)
    assert coarse.probs[0, names.index("trees")] == pytest.approx(1.0)
    assert coarse.probs[1, names.index("fruit_and_vegetables")] == pytest.approx(0.6)
    assert coarse.probs[1, names.index("food_containers")] == pytest.approx(0.4)
    assert coarse.probs[2, names.index("fish")] == pytest.approx(0.9)
    np.testing.assert_allclose(coarse.probs.sum(axis=1), 1, rtol=1e-6)
    assert summary_metrics(fine)["accuracy"] == 0
    assert summary_metrics(coarse)["accuracy"] == pytest.approx(2 / 3)
    assert coarse.images is fine.images
    assert coarse.fine_to_coarse is None


def test_coarse_rollup_needs_superclass_table(pred: Predictions) -> None:
    with pytest.raises(ValueError, match="fine_to_coarse"):
        coarse_predictions(pred)


def test_save_load_round_trip(tmp_path, pred: Predictions) -> None:
    original = cifar100_like()
    path = original.save(tmp_path / "predictions.npz")
    assert path == tmp_path / "predictions.npz"
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.npz"]  # no partial file left
    loaded = Predictions.load(path)
    np.testing.assert_array_equal(loaded.y_true, original.y_true)
    np.testing.assert_array_equal(loaded.probs, original.probs)
    np.testing.assert_array_equal(loaded.images, original.images)
    np.testing.assert_array_equal(loaded.fine_to_coarse, original.fine_to_coarse)
    assert loaded.class_names == original.class_names
    assert all(type(name) is str for name in loaded.class_names)
    assert loaded.coarse_names == original.coarse_names

    plain = Predictions.load(pred.save(tmp_path / "plain.npz"))
    assert plain.images is None and plain.fine_to_coarse is None and plain.coarse_names is None
    assert plain.class_names == NAMES
    assert summary_metrics(plain) == summary_metrics(pred)


def test_load_rejects_bad_files(tmp_path) -> None:
    text = tmp_path / "notes.npz"
    text.write_text("not numpy at all")
    with pytest.raises(ValueError, match=r"notes\.npz"):
        Predictions.load(text)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, y_true=np.array([0]), probs=np.array([[1.0]]),
             class_names=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match=r"pickled\.npz"):
        Predictions.load(pickled)
    partial = tmp_path / "partial.npz"
    np.savez(partial, y_true=np.array([0]))
    with pytest.raises(ValueError, match="probs"):
        Predictions.load(partial)
    with pytest.raises(FileNotFoundError):
        Predictions.load(tmp_path / "missing.npz")


def test_ensemble_averages(pred: Predictions) -> None:
    other_probs = np.array(PROBS)[:, [1, 2, 0]]  # a second model, rotated columns
    other = Predictions(y_true=np.array(Y_TRUE), probs=other_probs, class_names=NAMES)
    both = ensemble([pred, other])
    np.testing.assert_allclose(both.probs, (np.array(PROBS) + other_probs) / 2, rtol=1e-6)
    assert both.class_names == NAMES
    np.testing.assert_array_equal(both.y_true, Y_TRUE)
    np.testing.assert_array_equal(ensemble([pred]).probs, pred.probs)


def test_ensemble_names_the_mismatch(pred: Predictions) -> None:
    renamed = Predictions(y_true=np.array(Y_TRUE), probs=np.array(PROBS),
                          class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="class_names"):
        ensemble([pred, renamed])
    shuffled = Predictions(y_true=np.array(Y_TRUE[::-1]), probs=np.array(PROBS),
                           class_names=NAMES)
    with pytest.raises(ValueError, match="y_true"):
        ensemble([pred, shuffled])
    shorter = Predictions(y_true=np.array(Y_TRUE[:3]), probs=np.array(PROBS[:3]),
                          class_names=NAMES)
    with pytest.raises(ValueError, match="y_true"):
        ensemble([pred, shorter])
    with pytest.raises(ValueError, match="at least one"):
        ensemble([])


@pytest.mark.parametrize("kwargs, message", [
    ({"y_true": [0, 1], "probs": [[1.0, 0.0]]}, "probs must be"),
    ({"y_true": [0], "probs": [[1.0, 0.0]], "class_names": ["a"]}, "class names"),
    ({"y_true": [2], "probs": [[1.0, 0.0]]}, "y_true must lie"),
    ({"y_true": [], "probs": np.zeros((0, 2))}, "no samples"),
    ({"y_true": [0], "probs": [[1.0, 0.0]], "fine_to_coarse": [0, 0]}, "coarse_names"),
])
def test_predictions_reject_inconsistent_arrays(kwargs: dict, message: str) -> None:
    kwargs = {"class_names": ["a", "b"], **kwargs}
    with pytest.raises(ValueError, match=message):
        Predictions(**kwargs)


def test_tables_are_dataframes(pred: Predictions) -> None:
    assert isinstance(per_class_table(pred), pd.DataFrame)
    assert isinstance(most_confused_pairs(pred), pd.DataFrame)
