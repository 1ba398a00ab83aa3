"""Plotly figures shared by the pages (plotly only: no streamlit, no keras).

Each function takes plain data (lists of dicts, arrays, DataFrames) and returns a go.Figure, so
figures are testable without a browser and identical wherever they appear.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cifarkit.labels import display_name

TEMPLATE = "plotly_white"
# Room above the plot area: Plotly's toolbar (about 30 px, top right, shown on hover) sits in it,
# so titles and top legends go below that band instead of under the buttons.
TOP_MARGIN = 64
SIDE_MARGIN = 16
BAR_TEXT_MARGIN = 56  # right margin for "100%" written just past the longest bar
# Bar values written horizontally just past the bar's end: inside a short bar Plotly would turn
# them sideways or shrink them; cliponaxis=False lets the text of a 100 % bar reach the margin.
BAR_TEXT = {"textposition": "outside", "textangle": 0, "constraintext": "none",
            "cliponaxis": False}
NICE_STEPS = (1, 2, 5)  # tick steps are one of these times a power of ten
MIN_PERCENT_SPAN = 0.02  # one run (or equal scores) still gets an axis 2 points tall


def _layout(figure: go.Figure, title: str | None = None, **layout: Any) -> go.Figure:
    """Template, margins and a title that sits right above the plot, below the toolbar."""
    margin = {"l": SIDE_MARGIN, "r": SIDE_MARGIN, "t": TOP_MARGIN + (24 if title else 0),
              "b": 10, **layout.pop("margin", {})}
    figure.update_layout(template=TEMPLATE, margin=margin, **layout)
    if title:
        figure.update_layout(title={"text": title, "x": 0, "xanchor": "left", "yref": "paper",
                                    "y": 1, "yanchor": "bottom", "pad": {"b": 12}})
    return figure


def _nice_step(rough: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least `rough`."""
    power = 10.0 ** math.floor(math.log10(rough))
    return next(step * power for step in (*NICE_STEPS, 10) if step * power >= rough * (1 - 1e-9))


def value_axis(values: Sequence[float], percent: bool = True, ticks: int = 5,
               label_room: float = 0.0) -> dict[str, Any]:
    """A y axis fitted to the data whose tick texts are all different.

    Plotly's ".0%" on a 47.1-48.2 % range writes "48%, 48%, 47%": here the step is a nice
    number near range/ticks and the decimals follow the step (0.2 % steps get one decimal).
    label_room adds that share of the range above the top value for text over the dots.
    """
    finite = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if finite.size == 0:
        return {"tickformat": ".0%"} if percent else {}
    low, high = float(finite.min()), float(finite.max())
    scale = 100.0 if percent else 1.0
    span = max(high - low, MIN_PERCENT_SPAN if percent else abs(high) * 0.1 or 1.0)
    middle = (low + high) / 2
    low, high = min(low, middle - span / 2), max(high, middle + span / 2)
    step = _nice_step(span / ticks)
    bottom = low - 0.15 * span
    bottom = max(bottom, 0.0) if finite.min() >= 0 else bottom
    top = high + (0.15 + label_room) * span
    decimals = max(0, -math.floor(math.log10(step * scale) + 1e-9))
    last = min(top, 1.0) if percent and finite.max() <= 1 else top  # no "110%" tick
    first = math.ceil(bottom / step - 1e-9)
    tickvals = [round(index * step, 12)
                for index in range(first, math.floor(last / step + 1e-9) + 1)]
    suffix = "%" if percent else ""
    return {"range": [bottom, top], "tickmode": "array", "tickvals": tickvals,
            "ticktext": [f"{value * scale:.{decimals}f}{suffix}" for value in tickvals]}


def _padded_range(values: Sequence[float], log: bool = False, share: float = 0.12) -> list[float]:
    """An x range with room at both ends for the run names written over the outer dots."""
    data = np.asarray([v for v in values if np.isfinite(v) and (v > 0 or not log)], dtype=float)
    if data.size == 0:
        return []
    if log:
        data = np.log10(data)
    low, high = float(data.min()), float(data.max())
    pad = share * (high - low) or (0.5 if log else abs(high) * 0.2 or 1.0)
    bottom = low - pad
    if not log and low >= 0:
        bottom = max(bottom, 0.0)
    return [bottom, high + pad]


# --- Data page and Train page

TRAIN_COLOR = "#2563eb"  # train split / training curves
TEST_COLOR = "#f97316"  # test split / validation curves


def class_counts(class_names: Sequence[str], train_counts: Sequence[int],
                 test_counts: Sequence[int] | None = None) -> go.Figure:
    """Images per class as grouped bars, so an unbalanced dataset is visible at a glance."""
    figure = go.Figure()
    names = [display_name(name) for name in class_names]
    figure.add_bar(x=names, y=list(train_counts), name="train", marker_color=TRAIN_COLOR)
    if test_counts is not None:
        figure.add_bar(x=names, y=list(test_counts), name="test", marker_color=TEST_COLOR)
    _layout(figure, barmode="group", xaxis_title="class", yaxis_title="images", height=380,
            legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0})
    figure.update_xaxes(tickangle=-45 if len(class_names) > 12 else 0)
    return figure


def training_curves(rows: Sequence[dict[str, Any]]) -> go.Figure:
    """Loss and accuracy per epoch side by side: train solid, validation dashed.

    `rows` are the epoch rows of metrics.jsonl (cifarkit.rundir.epoch_rows); missing keys are
    skipped, so a run that has not validated yet still draws its training curve.
    """
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"),
                           horizontal_spacing=0.08)
    for column, key in ((1, "loss"), (2, "accuracy")):
        for prefix, name, color, dash in (("", "train", TRAIN_COLOR, "solid"),
                                          ("val_", "validation", TEST_COLOR, "dash")):
            points = [(row["epoch"], row[prefix + key]) for row in rows
                      if isinstance(row.get(prefix + key), (int, float))]
            if not points:
                continue
            epochs, values = zip(*points, strict=True)
            figure.add_scatter(x=epochs, y=values, mode="lines+markers", row=1, col=column,
                               name=name, legendgroup=name, showlegend=column == 1,
                               line={"color": color, "dash": dash, "width": 2},
                               hovertemplate=f"epoch %{{x}}<br>{name} {key} %{{y:.4f}}"
                               "<extra></extra>")
        figure.update_xaxes(title_text="epoch", row=1, col=column,
                            dtick=1 if len(rows) <= 12 else None)
    figure.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    _layout(figure, height=360, legend={"orientation": "h", "y": -0.25})
    return figure


# --- Runs, Errors and Predict pages -------------------------------------------------------------

# Axis titles for the columns of compare.runs_table and the metrics of epoch curves.
AXIS_TITLES = {
    "accuracy": "Test accuracy", "top5_accuracy": "Top-5 accuracy", "macro_f1": "Macro F1",
    "train_seconds": "Training time (s)", "weights_mb": "Weights in memory (MB)",
    "model_file_mb": "Model file (MB)", "trainable_params": "Trainable parameters",
    "params": "Parameters (trainable + frozen)", "val_accuracy": "Validation accuracy",
    "val_loss": "Validation loss", "loss": "Training loss", "epoch": "Epoch",
    "ece": "Calibration error (ECE)",
}
CONFUSION_TEXT_MAX_CLASSES = 20  # above this, numbers in cells are unreadable: hover only
PERCENT_COLUMNS = ("accuracy", "top5_accuracy", "val_accuracy")  # shares shown as percent
SCATTER_LABEL_MAX_RUNS = 12  # above this, run names next to the dots overlap: hover only
# 0–100 % axis; the 2 % headroom keeps the "100%" tick label from being clipped.
PROBABILITY_AXIS = {"range": [0, 1.02], "tickformat": ".0%", "dtick": 0.2}


def _title(column: str) -> str:
    return AXIS_TITLES.get(column, column.replace("_", " "))


def runs_scatter(table: pd.DataFrame, x: str, y: str = "accuracy", log_x: bool = False,
                 title: str | None = None) -> go.Figure:
    """One dot per run (coloured by model, run name on hover): what does accuracy cost?"""
    data = table.dropna(subset=[x, y])
    labelled = len(data) <= SCATTER_LABEL_MAX_RUNS
    figure = px.scatter(data, x=x, y=y, color="model", hover_name="name", log_x=log_x,
                        text="name" if labelled else None,
                        hover_data={"data": True, "status": True, x: True, y: ":.3f"},
                        labels={x: _title(x), y: _title(y), "model": "Model"})
    figure.update_traces(marker={"size": 13, "line": {"width": 1, "color": "white"}},
                         textposition="top center", cliponaxis=False)
    figure.update_yaxes(**value_axis(data[y].tolist(), percent=y in PERCENT_COLUMNS,
                                     label_room=0.15 if labelled else 0.0))
    figure.update_xaxes(range=_padded_range(data[x].tolist(), log=log_x) or None)
    _layout(figure, title, margin={"r": 40, "l": 40, "b": 10},
            legend={"title": {"text": "Model"}, "orientation": "h", "y": -0.25})
    return figure


def overlay_curves(curves: pd.DataFrame, metric: str = "val_accuracy",
                   title: str | None = None) -> go.Figure:
    """One line per run of a per-epoch metric (compare.epoch_curves), to compare learning."""
    data = curves.dropna(subset=[metric])
    figure = px.line(data, x="epoch", y=metric, color="run", markers=True,
                     labels={"epoch": "Epoch", metric: _title(metric), "run": "Run"})
    figure.update_xaxes(dtick=1 if curves["epoch"].nunique() <= 20 else None)
    if metric.endswith("accuracy"):
        figure.update_yaxes(**value_axis(data[metric].tolist()))
    return _layout(figure, title or _title(metric), legend={"orientation": "h", "y": -0.25})


def per_class_bars(table: pd.DataFrame, metric: str = "accuracy") -> go.Figure:
    """Horizontal bars of one per-class score (evaluation.per_class_table), best at the top.

    Classes with no test images (support 0) are left out: they have no score.
    """
    data = table[table["support"] > 0].sort_values(metric, ascending=True, kind="stable")
    label = {"accuracy": "Accuracy (recall)", "f1": "F1 score", "precision": "Precision",
             "error_rate": "Error rate"}.get(metric, metric)
    figure = go.Figure(go.Bar(
        x=data[metric], y=[display_name(name) for name in data["class"]], orientation="h",
        marker={"color": data[metric], "colorscale": "RdYlGn", "cmin": 0, "cmax": 1},
        text=[f"{value:.0%}" for value in data[metric]], **BAR_TEXT,
        customdata=data["support"],
        hovertemplate="%{y}: %{x:.1%}<br>%{customdata} test images<extra></extra>"))
    return _layout(figure, height=max(300, 22 * len(data) + 100),
                   xaxis={"title": label, **PROBABILITY_AXIS},
                   yaxis={"title": None, "dtick": 1}, margin={"r": BAR_TEXT_MARGIN})


def confusion_heatmap(matrix: np.ndarray, class_names: Sequence[str],
                      normalized: bool = False, drop_empty: bool = True) -> go.Figure:
    """Rows = true class, columns = predicted class, read top to bottom in class order.

    drop_empty hides classes that never occur as true or predicted label (e.g. the unused
    superclasses of a CIFAR-100 subset); cells carry numbers only when they stay readable.
    """
    matrix = np.asarray(matrix, dtype=float)
    keep = np.arange(len(class_names))
    if drop_empty:
        keep = np.flatnonzero((matrix.sum(axis=0) + matrix.sum(axis=1)) > 0) if matrix.any() \
            else keep
    names = [display_name(class_names[i]) for i in keep]
    z = matrix[np.ix_(keep, keep)]
    value = "%{z:.0%}" if normalized else "%{z:.0f}"
    figure = go.Figure(go.Heatmap(
        z=z, x=names, y=names, colorscale="Blues", zmin=0,
        zmax=1 if normalized else max(1.0, float(z.max(initial=0))),
        texttemplate=value if len(names) <= CONFUSION_TEXT_MAX_CLASSES else None,
        colorbar={"title": "share" if normalized else "images",
                  "tickformat": ".0%" if normalized else None},
        hovertemplate=f"true %{{y}}<br>predicted %{{x}}<br>{value}<extra></extra>"))
    side = min(900, max(420, 26 * len(names) + 160))
    return _layout(
        figure, height=side,
        xaxis={"title": "Predicted class", "tickangle": -45, "constrain": "domain",
               "dtick": 1 if len(names) <= 50 else None},
        yaxis={"title": "True class", "autorange": "reversed", "scaleanchor": "x",
               "dtick": 1 if len(names) <= 50 else None})


def topk_bars(top: Sequence[tuple[str, float]], true_label: str | None = None) -> go.Figure:
    """The k most probable classes as horizontal bars, most probable on top.

    The true class, when known (test images), is drawn green so a wrong guess stands out.
    """
    names = [name for name, _ in top][::-1]
    probs = [prob for _, prob in top][::-1]
    colors = ["#2ca02c" if name == true_label else "#1f77b4" for name in names]
    figure = go.Figure(go.Bar(
        x=probs, y=[display_name(name) for name in names], orientation="h",
        marker={"color": colors}, text=[f"{prob:.1%}" for prob in probs], **BAR_TEXT,
        hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    return _layout(figure, height=40 * len(names) + 110,
                   xaxis={"title": "Probability", **PROBABILITY_AXIS}, yaxis={"title": None},
                   margin={"r": BAR_TEXT_MARGIN}, showlegend=False)


RELIABILITY_COLOR = "#2563eb"  # accuracy per confidence bin
GAP_COLOR = "#f97316"  # the bin's mean confidence, where its bar would end if calibrated


def reliability_diagram(table: pd.DataFrame, ece: float) -> go.Figure:
    """Accuracy per confidence bin (evaluation.reliability_table) against the diagonal.

    A bar below the diagonal: the model said more than it delivered (over-confident); above:
    it was right more often than it said. Empty bins draw no bar; the hover names the count.
    """
    filled = table[table["count"] > 0]
    width = float((table["upper"] - table["lower"]).iloc[0]) if len(table) else 1.0
    centres = (filled["lower"] + filled["upper"]) / 2
    custom = np.column_stack([filled["lower"], filled["upper"], filled["count"],
                              filled["confidence"]]) if len(filled) else None
    figure = go.Figure()
    figure.add_bar(
        x=centres, y=filled["accuracy"], width=width * 0.92, name="right this often",
        marker_color=RELIABILITY_COLOR, customdata=custom,
        hovertemplate="said %{customdata[0]:.0%}–%{customdata[1]:.0%} "
        "(mean %{customdata[3]:.1%})<br>right %{y:.1%} of %{customdata[2]:,} images"
        "<extra></extra>")
    figure.add_scatter(x=filled["confidence"], y=filled["confidence"], mode="markers",
                       name="what it said (mean)", marker={"color": GAP_COLOR, "size": 8},
                       hovertemplate="mean confidence %{x:.1%}<extra></extra>")
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                       line={"color": "#6b7280", "dash": "dash"}, hoverinfo="skip")
    return _layout(figure, f"Reliability: expected calibration error {ece:.1%}", height=420,
                   xaxis={"title": "Confidence the model stated", "range": [0, 1],
                          "tickformat": ".0%", "dtick": 0.2},
                   yaxis={"title": "Share right", **PROBABILITY_AXIS},
                   legend={"orientation": "h", "y": -0.2}, bargap=0)


# --- Tune page

BEST_SO_FAR_COLOR = "#16a34a"  # running best of a search


def trial_scores(table: pd.DataFrame, objective: str = "val_accuracy",
                 direction: str = "max") -> go.Figure:
    """Score per finished trial (searches.search_progress()["table"]) and the best so far.

    Hovering a dot shows that trial's hyperparameters, so a good region of the space is visible
    while the search is still running. Failed trials (no score) are left out.
    """
    scored = table.dropna(subset=["score"]).sort_values("trial")
    hidden = {"trial", "status", "score", "val_accuracy", "val_loss", "error"}
    details = [column for column in scored.columns if column not in hidden]
    figure = go.Figure()
    figure.add_scatter(
        x=scored["trial"], y=scored["score"], mode="markers", name="trial",
        marker={"size": 10, "color": TRAIN_COLOR}, customdata=scored[details].to_numpy(),
        hovertemplate="trial %{x}: %{y:.4f}<br>" + "<br>".join(
            f"{name} %{{customdata[{index}]}}" for index, name in enumerate(details))
        + "<extra></extra>")
    best = scored["score"].cummax() if direction == "max" else scored["score"].cummin()
    figure.add_scatter(x=scored["trial"], y=best, mode="lines", name="best so far",
                       line={"shape": "hv", "color": BEST_SO_FAR_COLOR})
    _layout(figure, xaxis_title="Trial", yaxis_title=_title(objective), height=380,
            legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0})
    if objective.endswith("accuracy"):
        figure.update_yaxes(tickformat=".0%", range=[0, 1.02])  # one trial must not auto-scale
    figure.update_xaxes(dtick=1 if len(scored) <= 20 else None)
    return figure
