"""Errors page: which classes a run gets wrong, what it confuses them with, and the images."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from cifarkit import charts, compare, evaluation, runs
from cifarkit.evaluation import Predictions
from cifarkit.formatting import plural
from cifarkit.labels import display_name
from ui.gradcam import GRADCAM_HELP, LAYER_HELP, cam_view, grad_cam, usable_gradcam_layers
from ui.identity import current_person
from ui.images import enlarge
from ui.legacy import enter_app
from ui.nav import pick_run
from ui.runfiles import load_predictions

enter_app()  # first: if Streamlit ran this file alone, rerun it inside app.py

ANY_CLASS = "any class"
GALLERY_COLUMNS = 6
GALLERY_SIZE = 160  # pixels a gallery image is enlarged to (square pixels, no blur)
PAIRS_SHOWN = 15
BARS_ALL_MAX = 30  # above this many classes, the bar chart starts with the extremes only
BARS_EACH_END = 15


@dataclass
class GalleryCam:
    """Grad-CAM in the gallery: the run's model, its layer, and which class to explain.

    `fine` holds the model's own predictions: in the superclass view the gallery shows
    superclasses, but the model's outputs (and so its heatmaps) are fine classes.
    """

    run: runs.Run
    fine: Predictions
    layer: str
    for_true_class: bool


def headline(pred: Predictions) -> None:
    scores = evaluation.summary_metrics(pred)
    cols = st.columns(5)
    cols[0].metric("Accuracy", f"{scores['accuracy']:.1%}",
                   help="Share of test images classified correctly.")
    cols[1].metric("Top-5 accuracy", f"{scores['top5_accuracy']:.1%}",
                   help="Share of test images whose right class is among the five best guesses.")
    cols[2].metric("Macro F1", f"{scores['macro_f1']:.3f}",
                   help="F1 (balance of precision and recall) averaged over classes: 1 is perfect.")
    cols[3].metric("Calibration error", f"{scores['ece']:.1%}",
                   help="Expected calibration error: how far the model's stated confidence is "
                   "from how often it is right, on average. 0 % means that when it says 90 %, "
                   "it is right 90 % of the time.")
    cols[4].metric("Test images", f"{len(pred.y_true):,}",
                   help="Images held out from training, used only to score the model.")


def reliability(run: runs.Run, pred: Predictions, fine: bool) -> None:
    """The reliability diagram, and what calibration changed when the run was calibrated
    (fine view only: the error before calibration was measured on the model's own classes)."""
    table = evaluation.reliability_table(pred)
    ece = evaluation.expected_calibration_error(pred)
    st.plotly_chart(charts.reliability_diagram(table, ece), key="errors_reliability")
    st.caption("Each bar gathers the test images the model answered with about the same "
               "confidence, and shows how often it was right: when the model says 90 %, it is "
               "right this often. Bars on the dashed diagonal mean its confidence can be "
               "trusted; below it, the model is too sure of itself; above it, too modest.")
    temperature = run.info.get("temperature")
    before = compare.run_scores(run).get("ece_uncalibrated")
    if fine and isinstance(temperature, int | float) and temperature != 1 and \
            isinstance(before, int | float):
        st.caption(f"These probabilities were calibrated on the validation images (temperature "
                   f"{temperature:.2f}): before that, the calibration error was {before:.1%}.")


def readable(table: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """The table with class names as people read them (labels.display_name), as in the charts."""
    return table.assign(**{column: table[column].map(display_name) for column in columns})


def per_class(pred: Predictions, table: pd.DataFrame) -> None:
    metric = st.radio(
        "Score per class", ["accuracy", "f1"], horizontal=True, key="errors_metric",
        format_func={"accuracy": "Accuracy", "f1": "F1 score"}.get,
        help="Accuracy (recall): of the images of a class, how many were recognised. F1 also "
        "punishes a class that is predicted too often (low precision).")
    present = table[table["support"] > 0]
    shown = present
    if len(present) > BARS_ALL_MAX and not st.toggle(
            f"Show all {len(present)} classes", key="errors_all_classes",
            help=f"Off: only the {BARS_EACH_END} weakest and {BARS_EACH_END} strongest classes."):
        ranked = present.sort_values(metric, kind="stable")
        shown = pd.concat([ranked.head(BARS_EACH_END), ranked.tail(BARS_EACH_END)])
    st.plotly_chart(charts.per_class_bars(shown, metric), key="errors_bars")
    view = readable(present[["class", "accuracy", "f1", "support"]], "class")
    config = {"class": st.column_config.TextColumn("Class"),
              "accuracy": st.column_config.NumberColumn("Accuracy", format="percent"),
              "f1": st.column_config.NumberColumn("F1", format="%.2f"),
              "support": st.column_config.NumberColumn("Images", help="Test images of the class.")}
    worst, best = st.columns(2)
    worst.markdown("**Most errors**")
    worst.dataframe(view.head(5), hide_index=True, column_config=config, key="errors_worst")
    best.markdown("**Fewest errors**")
    best.dataframe(view.tail(5).iloc[::-1], hide_index=True, column_config=config,
                   key="errors_best")


def confusion(pred: Predictions) -> None:
    normalized = st.toggle(
        "Show shares instead of counts", key="errors_normalized",
        help="Each row then sums to 100 %: the share of a class's images predicted as each class.")
    matrix = evaluation.confusion(pred, normalize=normalized)
    st.plotly_chart(charts.confusion_heatmap(matrix, pred.class_names, normalized),
                    key="errors_confusion")
    st.caption("Rows are the true classes, columns what the model predicted. The diagonal holds "
               "the correct answers; bright cells off the diagonal are frequent mix-ups."
               + ("" if pred.num_classes <= charts.CONFUSION_TEXT_MAX_CLASSES else
                  " Hover over a cell to see its value."))


def apply_pair_selection(pairs: pd.DataFrame, rows: list[int], pairs_key: str, true_key: str,
                         predicted_key: str) -> None:
    """A newly selected pairs-table row points the gallery at that (true, predicted) mistake.

    Only a change of selection moves the gallery, so the user can still pick another class
    while a row stays selected.
    """
    selected = rows[0] if rows and rows[0] < len(pairs) else None
    if selected == st.session_state.get(f"{pairs_key}_applied"):
        return
    st.session_state[f"{pairs_key}_applied"] = selected
    if selected is not None:
        st.session_state[true_key] = pairs.iloc[selected]["true"]
        st.session_state[predicted_key] = pairs.iloc[selected]["predicted"]


def confused_pairs(pred: Predictions, pairs_key: str, true_key: str, predicted_key: str) -> None:
    pairs = evaluation.most_confused_pairs(pred, top=PAIRS_SHOWN)
    if pairs.empty:
        st.success("No mistakes at all on the test set.")
        return
    event = st.dataframe(
        readable(pairs[["true", "predicted", "count", "share_of_true"]], "true", "predicted"),
        hide_index=True,
        on_select="rerun", selection_mode="single-row", key=pairs_key,
        column_config={
            "true": st.column_config.TextColumn("True class"),
            "predicted": st.column_config.TextColumn("Predicted as"),
            "count": st.column_config.NumberColumn("Images"),
            "share_of_true": st.column_config.NumberColumn(
                "Share of class", format="percent",
                help="Share of the true class's test images that went to this wrong class."),
        })
    st.caption("Click a row to see those images below.")
    apply_pair_selection(pairs, list(event.selection.rows), pairs_key, true_key, predicted_key)


def gallery(run: runs.Run, pred: Predictions, fine: Predictions, table: pd.DataFrame,
            true_key: str, predicted_key: str) -> None:
    names = pred.class_names
    present = set(table.loc[table["support"] > 0, "class"])
    if st.session_state.get(true_key) not in present:
        st.session_state[true_key] = table.iloc[0]["class"]  # the class with most errors
    left, right = st.columns(2)
    true_name = left.selectbox("True class", [name for name in names if name in present],
                               key=true_key, format_func=display_name,
                               help="Show test images of this class that the model got wrong.")
    others = [ANY_CLASS, *[name for name in names if name != true_name]]
    if st.session_state.get(predicted_key) not in others:
        st.session_state[predicted_key] = ANY_CLASS
    predicted_name = right.selectbox("Predicted as", others, key=predicted_key,
                                     format_func=display_name,
                                     help="Only mistakes that went to this class.")
    predicted = None if predicted_name == ANY_CLASS else names.index(predicted_name)
    wrong = evaluation.misclassified(pred, names.index(true_name), predicted)
    if wrong.empty:
        st.success(f"No misclassified test images of **{display_name(true_name)}**"
                   + ("" if predicted is None else
                      f" predicted as **{display_name(predicted_name)}**") + ".")
        return
    limit = st.slider("Images to show", 6, 60, 18, step=6, key="errors_limit",
                      help="The most confident mistakes come first: they are the most telling "
                      "(look-alike classes, or a wrong label in the dataset).")
    st.caption(f"{plural(len(wrong), 'test image')} of **{display_name(true_name)}** predicted "
               "wrongly, most confident mistake first. Under each: what the model said, and how "
               "sure it was.")
    if pred.images is None:
        st.dataframe(wrong.head(limit), hide_index=True)
        return
    cam = gallery_cam(run, fine)
    with st.spinner("Computing Grad-CAM heatmaps…") if cam else nullcontext():
        show_images(pred, wrong.head(limit), cam)


def show_images(pred: Predictions, wrong: pd.DataFrame, cam: GalleryCam | None) -> None:
    """The misclassified images in rows, each with its Grad-CAM heatmap below when asked."""
    for position, row in enumerate(wrong.itertuples()):
        if position % GALLERY_COLUMNS == 0:  # a fresh row of columns keeps the rows aligned
            cols = st.columns(GALLERY_COLUMNS)
        cell = cols[position % GALLERY_COLUMNS]
        cell.image(enlarge(pred.images[row.index], GALLERY_SIZE), width="stretch",
                   caption=f"→ {display_name(row.predicted)} ({row.confidence:.0%})")
        if cam is None:
            continue
        try:
            show_cam(cell, cam, pred.images[row.index], row.index)
        except ValueError as error:  # e.g. a layer this model cannot explain from
            st.warning(f"Grad-CAM failed: {error}")
            cam = None


def gallery_cam(run: runs.Run, fine: Predictions) -> GalleryCam | None:
    """The gallery's Grad-CAM toggle and options; None when off or the model cannot do it."""
    if not st.toggle("Show where the model looked (Grad-CAM)", key="errors_gradcam",
                     help=GRADCAM_HELP + " Under each mistake: the heatmap for the wrong "
                     "class shows what misled the model."):
        return None
    if not run.has_model:
        st.info("This run kept no model file, so its heatmaps cannot be computed.")
        return None
    found = usable_gradcam_layers(run)
    if found is None:
        return None
    layers, default = found
    left, right = st.columns(2)
    target = left.radio(
        "Heatmap for", ["predicted", "true"], horizontal=True, key="errors_cam_target",
        format_func={"predicted": "the wrong guess", "true": "the right class"}.get,
        help="The wrong guess: which parts of the picture convinced the model. The right class: "
        "did the model notice the real object at all?")
    layer = right.selectbox("Layer", layers, index=layers.index(default),
                            key=f"errors_cam_layer_{run.run_id}", help=LAYER_HELP)
    return GalleryCam(run, fine, layer, for_true_class=target == "true")


def show_cam(cell: DeltaGenerator, cam: GalleryCam, image: np.ndarray, index: int) -> None:
    """The heatmap of one misclassified image, for the model's own (fine) class."""
    labels = cam.fine.y_true if cam.for_true_class else cam.fine.y_pred
    class_index = int(labels[index])
    heat = grad_cam(cam.run, image, class_index, cam.layer)
    cell.image(cam_view(image, heat.heatmap, GALLERY_SIZE), width="stretch",
               caption=f"where it saw “{display_name(cam.fine.class_names[class_index])}”")


def page(run: runs.Run) -> None:
    try:
        pred = load_predictions(run)
    except (ValueError, OSError) as error:
        st.error(f"The test-set predictions of this run cannot be read: {error}")
        return
    view, fine = "fine", pred
    if pred.fine_to_coarse is not None:
        coarse = st.toggle(
            "Group into CIFAR-100 superclasses", key="errors_coarse",
            help="CIFAR-100's 100 classes form 20 superclasses (maple and oak are both 'trees'). "
            "Grouped, a mix-up inside a superclass counts as right: is the model roughly right?")
        if coarse:
            pred, view = evaluation.coarse_predictions(pred), "coarse"
    headline(pred)
    table = evaluation.per_class_table(pred)
    pairs_key, true_key, predicted_key = (f"errors_{part}_{run.run_id}_{view}"
                                          for part in ("pairs", "true", "pred"))
    st.subheader("Accuracy per class")
    per_class(pred, table)
    st.subheader("Confusion matrix")
    confusion(pred)
    st.subheader("Most confused pairs")
    confused_pairs(pred, pairs_key, true_key, predicted_key)
    st.subheader("Can its confidence be trusted?")
    reliability(run, pred, fine=view == "fine")
    st.subheader("Misclassified test images")
    gallery(run, pred, fine, table, true_key, predicted_key)


st.title("Errors")
current_person()  # a name (or a sign-in) first: the picker offers that person's runs
st.caption("Where does a model go wrong? Scores per class, the classes it mixes up, and the test "
           "images behind each mistake.")
chosen = pick_run("Run", key="errors_run",
                         help="Runs that finished (or were stopped) and were scored "
                         "on the test set.")
if chosen is None:
    st.stop()
page(chosen)
