"""class_counts and training_curves: the Data page's balance chart and the Train page's curves."""

from __future__ import annotations

from cifarkit import charts

# Plotly's toolbar takes about 30 px at the top; a title or top legend needs the next 30.
TOOLBAR_ROOM = 60


def test_class_counts_draws_train_and_test_bars_per_class() -> None:
    figure = charts.class_counts(["cat", "dog", "ship"], [5, 7, 1], [2, 3, 0])
    train, test = figure.data
    assert (train.name, test.name) == ("train", "test")
    assert list(train.x) == ["cat", "dog", "ship"] and list(train.y) == [5, 7, 1]
    assert list(test.y) == [2, 3, 0]
    assert figure.layout.barmode == "group"


def test_class_counts_without_a_test_split() -> None:
    assert len(charts.class_counts(["a", "b"], [1, 2]).data) == 1


ROWS = [{"kind": "epoch", "epoch": epoch, "loss": 2.0 / epoch, "accuracy": 0.3 * epoch,
         "val_loss": 2.2 / epoch, "val_accuracy": 0.25 * epoch} for epoch in (1, 2, 3)]


def test_training_curves_train_solid_validation_dashed_on_two_subplots() -> None:
    figure = charts.training_curves(ROWS)
    traces = {(trace.xaxis, trace.name): trace for trace in figure.data}
    assert set(traces) == {("x", "train"), ("x", "validation"), ("x2", "train"),
                           ("x2", "validation")}
    assert list(traces[("x", "train")].y) == [2.0, 1.0, 2.0 / 3]
    assert list(traces[("x2", "validation")].y) == [0.25, 0.5, 0.75]
    assert list(traces[("x2", "validation")].x) == [1, 2, 3]
    for (_, name), trace in traces.items():
        assert trace.line.dash == ("solid" if name == "train" else "dash")
    assert [annotation.text for annotation in figure.layout.annotations] == ["Loss", "Accuracy"]
    # One legend entry per split, not per subplot.
    assert sum(bool(trace.showlegend) for trace in figure.data) == 2


def test_training_curves_skip_missing_validation_and_draw_nothing_without_rows() -> None:
    partial = [{"epoch": 1, "loss": 1.0, "accuracy": 0.5}]
    assert {trace.name for trace in charts.training_curves(partial).data} == {"train"}
    assert not charts.training_curves([]).data


def test_train_and_data_charts_keep_titles_and_legends_clear_of_the_toolbar() -> None:
    curves = charts.training_curves(ROWS)
    assert curves.layout.margin.t >= TOOLBAR_ROOM  # subplot titles sit below the toolbar
    counts = charts.class_counts(["maple_tree", "oak_tree"], [1, 2], [1, 1])
    assert counts.layout.margin.t >= TOOLBAR_ROOM
    assert counts.layout.legend.yanchor == "bottom"  # legend above the plot, below the toolbar
    assert list(counts.data[0].x) == ["maple tree", "oak tree"]
