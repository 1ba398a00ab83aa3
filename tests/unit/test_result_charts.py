"""The result figures of cifarkit.charts (Runs, Errors and Predict pages)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cifarkit import charts


def table_of_runs() -> pd.DataFrame:
    return pd.DataFrame({
        "name": ["a", "b", "c"], "model": ["simple_cnn", "resnet_fast", "simple_cnn"],
        "data": ["CIFAR-10"] * 3, "status": ["completed", "completed", "failed"],
        "accuracy": [0.6, 0.8, np.nan], "train_seconds": [10.0, 30.0, 5.0],
        "params": [1e4, 1e6, 1e5],
    })


def test_runs_scatter_skips_unscored_runs_and_can_use_log_x() -> None:
    figure = charts.runs_scatter(table_of_runs(), "params", log_x=True)
    names = sorted(name for trace in figure.data for name in trace.hovertext)
    assert names == ["a", "b"]
    assert figure.layout.xaxis.type == "log"
    assert figure.layout.xaxis.title.text == charts.AXIS_TITLES["params"]


def test_overlay_curves_draw_one_line_per_run() -> None:
    curves = pd.DataFrame({"run": ["a", "a", "b"], "epoch": [1, 2, 1],
                           "val_accuracy": [0.4, 0.5, 0.3], "val_loss": [1.0, 0.9, np.nan]})
    figure = charts.overlay_curves(curves, "val_loss")
    assert [trace.name for trace in figure.data] == ["a"]  # b has no loss to draw
    assert list(figure.data[0].y) == [1.0, 0.9]


def test_per_class_bars_put_the_best_class_on_top_and_skip_absent_ones() -> None:
    table = pd.DataFrame({"class": ["cat", "dog", "ship", "ghost"],
                          "accuracy": [0.3, 0.9, 0.6, np.nan], "f1": [0.2, 0.8, 0.7, 0.0],
                          "support": [10, 10, 10, 0]})
    figure = charts.per_class_bars(table, "accuracy")
    assert list(figure.data[0].y) == ["cat", "ship", "dog"]  # plotly draws the last on top
    assert list(charts.per_class_bars(table, "f1").data[0].y) == ["cat", "ship", "dog"]


def test_confusion_heatmap_labels_axes_and_hides_unused_classes() -> None:
    matrix = np.array([[3, 1, 0], [0, 4, 0], [0, 0, 0]])
    figure = charts.confusion_heatmap(matrix, ["cat", "dog", "unused"])
    heatmap = figure.data[0]
    assert list(heatmap.x) == ["cat", "dog"] and list(heatmap.y) == ["cat", "dog"]
    assert heatmap.texttemplate and figure.layout.yaxis.autorange == "reversed"
    every = charts.confusion_heatmap(matrix, ["cat", "dog", "unused"], drop_empty=False)
    assert list(every.data[0].x) == ["cat", "dog", "unused"]


def test_confusion_heatmap_of_many_classes_has_no_cell_text() -> None:
    size = charts.CONFUSION_TEXT_MAX_CLASSES + 1
    figure = charts.confusion_heatmap(np.ones((size, size)), [f"c{i}" for i in range(size)])
    assert figure.data[0].texttemplate is None
    assert figure.layout.height <= 900


def test_topk_bars_order_and_mark_the_true_class() -> None:
    top = [("cat", 0.7), ("dog", 0.2), ("fox", 0.1)]
    bar = charts.topk_bars(top, true_label="dog").data[0]
    assert list(bar.y) == ["fox", "dog", "cat"]  # most probable drawn on top
    assert list(bar.x) == [0.1, 0.2, 0.7]
    assert len(set(bar.marker.color)) == 2 and bar.marker.color[1] != bar.marker.color[0]
    assert len(set(charts.topk_bars(top).data[0].marker.color)) == 1
