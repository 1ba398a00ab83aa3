"""Errors page: per-class scores, confusion matrix, confused pairs and the misclassified gallery
(with Grad-CAM heatmaps on request)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cifarkit import evaluation, gradcam, predict, rundir, runs
from cifarkit.labels import CIFAR100_COARSE_LABELS, display_name
from tests.app.conftest import (
    assert_clean,
    chart_spec,
    offered_statuses,
    open_page,
    page_path,
)

PAGE = page_path("pages/errors.py")


def predictions(run: runs.Run) -> evaluation.Predictions:
    return evaluation.Predictions.load(run.path / rundir.PREDICTIONS)


def captions(at: AppTest) -> list[str]:
    return [caption for image in at.image for caption in image.captions]


def chart(at: AppTest, index: int) -> dict:
    return chart_spec(at, index)


def test_without_runs_the_page_says_so() -> None:
    at = open_page(PAGE)
    assert "No finished runs" in at.info[0].value


def test_only_scored_runs_are_offered(run_in_every_status) -> None:
    offered = open_page(PAGE).selectbox(key="errors_run").options
    assert offered_statuses(offered, run_in_every_status) == ["completed", "stopped"]


def test_sections_show_the_run(run_factory) -> None:
    run = run_factory("completed", cifar100=True, num_classes=6)
    pred = predictions(run)
    at = open_page(PAGE)
    assert at.metric[0].value == f"{evaluation.summary_metrics(pred)['accuracy']:.1%}"
    bars = chart(at, 0)["data"][0]
    table = evaluation.per_class_table(pred)
    shown = [display_name(name) for name in pred.class_names]  # charts write "maple tree"
    assert sorted(bars["y"]) == sorted(shown)
    best = table.sort_values("accuracy").iloc[-1]["class"]
    assert bars["y"][-1] == display_name(best)  # best on top
    heatmap = chart(at, 1)["data"][0]
    assert heatmap["x"] == shown and heatmap["texttemplate"]
    worst = at.dataframe[0].value
    assert worst["class"].iloc[0] == table.iloc[0]["class"]


def test_the_calibration_error_and_reliability_chart_are_shown(run_factory) -> None:
    run = run_factory("completed", accuracy=0.6)
    pred = predictions(run)
    ece = evaluation.expected_calibration_error(pred)
    rundir.update_status(run.path, temperature=0.65, test_ece_uncalibrated=0.16)
    at = open_page(PAGE)
    assert_clean(at)
    shown = {metric.label: metric.value for metric in at.metric}
    assert shown["Calibration error"] == f"{ece:.1%}"
    reliability = chart(at, 2)
    assert f"{ece:.1%}" in reliability["layout"]["title"]["text"]
    bars = reliability["data"][0]
    table = evaluation.reliability_table(pred)
    filled = table[table["count"] > 0]
    assert bars["y"] == pytest.approx(filled["accuracy"].tolist())
    assert sum(row[2] for row in bars["customdata"]) == len(pred.y_true)
    notes = [caption.value for caption in at.caption]
    assert any("when the model says 90 %, it is right this often" in note for note in notes)
    assert any("temperature 0.65" in note and "16.0%" in note for note in notes)


def test_an_uncalibrated_run_says_nothing_about_calibration(run_factory) -> None:
    run_factory("completed")
    at = open_page(PAGE)
    assert_clean(at)
    assert not any("temperature" in caption.value for caption in at.caption)


def test_switching_class_shows_its_misclassified_images(run_factory) -> None:
    run = run_factory("completed", accuracy=0.5)
    pred = predictions(run)
    at = open_page(PAGE)
    key = f"errors_true_{run.run_id}_fine"
    for name in pred.class_names:
        at.selectbox(key=key).set_value(name).run()
        assert_clean(at)
        expected = evaluation.misclassified(pred, pred.class_names.index(name))
        shown = captions(at)
        assert len(shown) == min(len(expected), 18)
        assert [caption.split(" (")[0] for caption in shown] == [
            f"→ {predicted}" for predicted in expected["predicted"][:18]]
        if shown:  # most confident mistake first
            assert shown[0].endswith(f"({expected['confidence'].iloc[0]:.0%})")


def test_selecting_a_confused_pair_filters_the_gallery(run_factory) -> None:
    run = run_factory("completed", accuracy=0.3)
    pairs = evaluation.most_confused_pairs(predictions(run), top=15)
    at = open_page(PAGE)
    row = 1
    at.session_state[f"errors_pairs_{run.run_id}_fine"] = {
        "selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    assert_clean(at)
    true_name, predicted_name = pairs.iloc[row]["true"], pairs.iloc[row]["predicted"]
    assert at.selectbox(key=f"errors_true_{run.run_id}_fine").value == true_name
    assert at.selectbox(key=f"errors_pred_{run.run_id}_fine").value == predicted_name
    shown = captions(at)
    assert len(shown) == pairs.iloc[row]["count"]
    assert all(caption.startswith(f"→ {predicted_name} (") for caption in shown)
    # The user can still pick another class while the row stays selected.
    other = next(name for name in predictions(run).class_names if name != true_name)
    at.selectbox(key=f"errors_true_{run.run_id}_fine").set_value(other).run()
    assert_clean(at)
    assert at.selectbox(key=f"errors_true_{run.run_id}_fine").value == other


def test_coarse_toggle_scores_superclasses(run_factory) -> None:
    run = run_factory("completed", cifar100=True, num_classes=6, accuracy=0.4)
    coarse = evaluation.coarse_predictions(predictions(run))
    at = open_page(PAGE)
    at.toggle(key="errors_coarse").set_value(True).run()
    assert_clean(at)
    assert at.metric[0].value == f"{evaluation.summary_metrics(coarse)['accuracy']:.1%}"
    present = {"trees", "vehicles_1", "insects"}
    assert set(at.selectbox(key=f"errors_true_{run.run_id}_coarse").options) == {
        display_name(name) for name in present}
    heatmap = chart(at, 1)["data"][0]
    coarse_shown = {display_name(name) for name in CIFAR100_COARSE_LABELS}
    assert coarse_shown >= set(heatmap["x"]) >= {display_name(name) for name in present}
    assert captions(at)  # the superclass with most errors has misclassified images
    chosen = at.selectbox(key=f"errors_true_{run.run_id}_coarse").value
    wrong = evaluation.misclassified(coarse, coarse.class_names.index(chosen))
    assert len(captions(at)) == min(len(wrong), 18)


def test_no_coarse_toggle_for_cifar10(run_factory) -> None:
    run_factory("completed")
    at = open_page(PAGE)
    assert "errors_coarse" not in [toggle.key for toggle in at.toggle]


@pytest.mark.parametrize("normalized", [False, True])
def test_normalized_matrix_rows_sum_to_one(run_factory, normalized: bool) -> None:
    run_factory("completed")
    at = open_page(PAGE)
    at.toggle(key="errors_normalized").set_value(normalized).run()
    assert_clean(at)
    rows = chart(at, 1)["data"][0]["z"]
    sums = [sum(row) for row in rows]
    if normalized:
        assert sums == pytest.approx([1.0] * len(rows))
    else:
        assert sum(sums) == 40  # every test image counted once


def test_unreadable_predictions_give_a_message_not_a_crash(run_factory) -> None:
    run = run_factory("completed")
    (run.path / rundir.PREDICTIONS).write_bytes(b"not an npz file")
    at = open_page(PAGE)
    assert "cannot be read" in at.error[0].value


# --- Grad-CAM in the gallery


def cam_captions(shown_images: list) -> list[str]:
    return [caption for caption, _ in shown_images if caption.startswith("where it saw")]


def test_gradcam_gallery_shows_what_misled_the_model(run_factory, shown_images,
                                                     monkeypatch) -> None:
    run = run_factory("completed", conv=True, accuracy=0.5, test_images=24)
    pred = predictions(run)
    at = open_page(PAGE)
    key = f"errors_true_{run.run_id}_fine"
    wrong = evaluation.misclassified(pred, pred.class_names.index(at.selectbox(key=key).value))
    assert len(wrong) >= 2
    calls = []
    original = gradcam.gradcam
    monkeypatch.setattr(gradcam, "gradcam", lambda *args: calls.append(args) or original(*args))
    shown_images.clear()
    at.toggle(key="errors_gradcam").set_value(True).run()
    assert_clean(at)
    # Each mistake: the picture, then the heatmap for the wrong class it was given.
    assert cam_captions(shown_images) == [f"where it saw “{name}”" for name in wrong["predicted"]]
    assert len(calls) == len(wrong)
    model = predict.load_model(run.path / rundir.BEST_MODEL)
    first = int(wrong["index"].iloc[0])
    image = pred.images[first]
    heat = gradcam.gradcam(model, image, int(pred.y_pred[first])).heatmap
    enlarged = Image.fromarray(image).resize((160, 160), Image.Resampling.NEAREST)
    drawn = next(pixels for caption, pixels in shown_images if caption.startswith("where"))
    expected = gradcam.overlay(np.asarray(enlarged), heat)
    assert np.abs(drawn.astype(int) - expected.astype(int)).max() <= 1

    calls.clear()
    at.run()  # a rerun reuses the cached heatmaps
    assert not calls
    shown_images.clear()
    at.radio(key="errors_cam_target").set_value("true").run()
    assert_clean(at)
    assert cam_captions(shown_images) == [f"where it saw “{name}”" for name in wrong["true"]]


def test_gradcam_in_the_superclass_view_explains_the_fine_classes(run_factory,
                                                                  shown_images) -> None:
    run = run_factory("completed", conv=True, cifar100=True, num_classes=6, accuracy=0.4)
    fine = predictions(run)
    at = open_page(PAGE)
    at.toggle(key="errors_coarse").set_value(True).run()
    shown_images.clear()
    at.toggle(key="errors_gradcam").set_value(True).run()
    assert_clean(at)
    shown = cam_captions(shown_images)
    coarse = evaluation.coarse_predictions(fine)
    chosen = at.selectbox(key=f"errors_true_{run.run_id}_coarse").value
    wrong = evaluation.misclassified(coarse, coarse.class_names.index(chosen))
    expected = [fine.class_names[fine.y_pred[index]] for index in wrong["index"][:18]]
    assert shown and shown == [f"where it saw “{display_name(name)}”" for name in expected]


def test_gradcam_toggle_on_a_model_without_convolutions(run_factory) -> None:
    run_factory("completed", accuracy=0.5)
    at = open_page(PAGE)
    at.toggle(key="errors_gradcam").set_value(True).run()
    assert_clean(at)
    assert "no convolutional layer" in at.info[0].value


def test_class_names_read_with_spaces_in_pickers_tables_and_captions(run_factory) -> None:
    run = run_factory("completed", cifar100=True, num_classes=6, accuracy=0.3)
    at = open_page(page_path("pages/errors.py"))
    picker = at.selectbox(key=f"errors_true_{run.run_id}_fine")
    assert "maple tree" in picker.options and "maple_tree" not in picker.options
    tables = [frame.value for frame in at.dataframe]
    classes = [name for frame in tables for column in ("class", "true", "predicted")
               if column in frame for name in frame[column]]
    assert classes and not any("_" in name for name in classes)
    gallery = [caption for image in at.image for caption in image.captions]
    assert gallery and all("_" not in caption for caption in gallery)
    at.selectbox(key=f"errors_true_{run.run_id}_fine").set_value("maple_tree").run()
    assert any("of **maple tree** predicted wrongly" in caption.value for caption in at.caption)
