"""The result figures of cifarkit.charts (Runs, Errors and Predict pages)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cifarkit import charts

# Plotly's toolbar takes about 30 px at the top; a title or top legend needs the next 30.
TOOLBAR_ROOM = 60


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


def ticks_of(figure) -> list[str]:
    return list(figure.layout.yaxis.ticktext)


def test_accuracy_vs_cost_ticks_are_distinct_on_a_narrow_range_and_labels_not_clipped() -> None:
    table = pd.DataFrame({"name": ["a", "b", "c"], "model": ["simple_cnn"] * 3,
                          "data": ["CIFAR-10"] * 3, "status": ["completed"] * 3,
                          "accuracy": [0.471, 0.476, 0.482], "train_seconds": [10.0, 20, 30]})
    figure = charts.runs_scatter(table, "train_seconds")
    texts = ticks_of(figure)
    assert len(texts) >= 3 and len(set(texts)) == len(texts)
    assert texts[:3] == ["46.5%", "47.0%", "47.5%"]
    low, high = figure.layout.yaxis.range
    assert low < 0.471 and high > 0.482 + 0.0015  # room above the top dot for its name
    assert all(trace.cliponaxis is False for trace in figure.data)
    x_low, x_high = figure.layout.xaxis.range
    assert x_low < 10 and x_high > 30  # outer names are not cut at the plot's edges
    titled = charts.runs_scatter(table, "train_seconds", title="Accuracy vs cost")
    assert titled.layout.title.text == "Accuracy vs cost"
    assert titled.layout.title.yanchor == "bottom" and titled.layout.margin.t > TOOLBAR_ROOM


def test_value_axis_one_run_and_full_range() -> None:
    single = charts.value_axis([0.5])
    assert "50.0%" in single["ticktext"] and len(set(single["ticktext"])) >= 3
    wide = charts.value_axis([0.1, 1.0], label_room=0.15)
    assert wide["ticktext"][-1] == "100%" and wide["range"][1] > 1.0  # no "120%" tick
    assert charts.value_axis([0.3, 0.34], percent=False)["ticktext"][0] == "0.30"


def test_overlay_curves_of_close_accuracies_have_distinct_ticks_and_a_title_below_the_toolbar(
) -> None:
    curves = pd.DataFrame({"run": ["a", "a"], "epoch": [1, 2], "val_accuracy": [0.471, 0.482]})
    figure = charts.overlay_curves(curves)
    assert len(set(ticks_of(figure))) == len(ticks_of(figure)) >= 3
    assert figure.layout.title.yref == "paper" and figure.layout.title.yanchor == "bottom"
    assert figure.layout.margin.t > TOOLBAR_ROOM


def test_bar_labels_stay_horizontal_outside_short_bars() -> None:
    table = pd.DataFrame({"class": ["maple_tree", "oak_tree"], "accuracy": [0.02, 1.0],
                          "support": [10, 10]})
    for figure in (charts.per_class_bars(table),
                   charts.topk_bars([("maple_tree", 0.97), ("oak_tree", 0.03)])):
        bar = figure.data[0]
        assert (bar.textangle, bar.textposition, bar.cliponaxis) == (0, "outside", False)
        assert figure.layout.margin.r >= 50  # room for "100%"


def test_every_result_chart_shows_class_names_with_spaces() -> None:
    table = pd.DataFrame({"class": ["maple_tree"], "accuracy": [0.5], "support": [3]})
    assert list(charts.per_class_bars(table).data[0].y) == ["maple tree"]
    heat = charts.confusion_heatmap(np.array([[2, 1], [0, 3]]), ["maple_tree", "oak_tree"])
    assert list(heat.data[0].x) == ["maple tree", "oak tree"]
    bars = charts.topk_bars([("maple_tree", 0.6), ("oak_tree", 0.4)], true_label="oak_tree")
    assert list(bars.data[0].y) == ["oak tree", "maple tree"]
    assert bars.data[0].marker.color[0] != bars.data[0].marker.color[1]  # true class marked


def test_top_legends_and_titles_leave_room_for_the_toolbar() -> None:
    trials = pd.DataFrame({"trial": [1, 2], "status": ["completed"] * 2, "score": [0.1, 0.2]})
    for figure in (charts.trial_scores(trials), charts.per_class_bars(
            pd.DataFrame({"class": ["a"], "accuracy": [0.5], "support": [1]}))):
        assert figure.layout.margin.t >= TOOLBAR_ROOM


def test_reliability_diagram_draws_filled_bins_against_the_diagonal() -> None:
    from cifarkit.evaluation import Predictions, expected_calibration_error, reliability_table

    # three at 95 % all right, one at 60 % wrong: two filled bins of 15
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.05, 0.95], [0.4, 0.6]])
    pred = Predictions(y_true=np.array([0, 0, 1, 0]), probs=probs, class_names=["a", "b"])
    table = reliability_table(pred)
    ece = expected_calibration_error(pred)
    figure = charts.reliability_diagram(table, ece)
    bars, said, diagonal = figure.data
    assert len(bars.x) == 2 and list(bars.y) == [0.0, 1.0]
    assert [row[2] for row in bars.customdata] == [1, 3]  # counts, shown in the hover
    assert "of %{customdata[2]:,} images" in bars.hovertemplate
    np.testing.assert_allclose(said.y, [0.6, 0.95], rtol=1e-6)
    assert list(diagonal.x) == [0, 1] and list(diagonal.y) == [0, 1]
    assert diagonal.name == "perfect calibration"
    assert f"{ece:.1%}" in figure.layout.title.text
    assert figure.layout.margin.t >= TOOLBAR_ROOM
