"""Predict page: uploads and test images classified by one run or an ensemble; Grad-CAM."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cifarkit import calibration, gradcam, predict, rundir, runs
from cifarkit.advice import outside_classes_note
from cifarkit.config import AugmentConfig
from cifarkit.labels import display_name
from tests.app.conftest import (
    assert_clean,
    chart_spec,
    offered_statuses,
    open_page,
    open_with_runs,
    page_path,
)

PAGE = page_path("pages/predict.py")
SHOWN = 180  # pixels the page enlarges pictures and heatmaps to (pages/predict.SHOWN_SIZE)


def png_bytes(seed: int = 0, size: tuple[int, int] = (48, 64), mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, "PNG")
    return buffer.getvalue()


def expected_top(run_list: list[runs.Run], data: bytes) -> list[tuple[str, float]]:
    """What the page should show, computed straight from the models (no page code involved):
    each run's config asks for flip TTA, and a temperature in its status sharpens or softens."""
    image = predict.to_input(predict.read_image(data), 32)[None].astype(np.float32)
    members = []
    for run in run_list:
        model = predict.load_model(run.path / rundir.BEST_MODEL)
        probs = model.predict(image, verbose=0)
        if run.config.augment.flip_tta:
            probs = (probs + model.predict(image[:, :, ::-1], verbose=0)) / 2
        temperature = rundir.read_status(run.path).get("temperature", 1.0)
        members.append(calibration.apply_temperature(probs, temperature))
    names = [str(name) for name in np.load(run_list[0].path / rundir.PREDICTIONS)["class_names"]]
    return predict.top_k(np.mean(members, axis=0)[0], names, 5)


def bars(at: AppTest, index: int) -> list[tuple[str, float]]:
    """(class, probability) of one top-k chart, most probable first."""
    trace = chart_spec(at, index)["data"][0]
    return list(zip(trace["y"], trace["x"], strict=True))[::-1]


def test_without_models_the_page_says_so() -> None:
    at = open_page(PAGE)
    assert "No trained model" in at.info[0].value


def test_the_best_run_is_preselected_not_the_newest(run_factory) -> None:
    better = run_factory("completed", name="long run", accuracy=0.9)
    run_factory("completed", name="1-epoch trial", accuracy=0.1, epochs=1)  # newer, worse
    at = open_page(PAGE)
    assert at.multiselect(key="predict_runs").value == [better.run_id]


def test_upload_says_an_outside_photo_still_gets_one_of_the_classes(run_factory) -> None:
    run_factory("completed", num_classes=4)
    at = open_page(PAGE)
    assert outside_classes_note(4) in [caption.value for caption in at.caption]
    assert "only knows these 4 classes" in outside_classes_note(4)


def test_only_runs_with_a_model_and_predictions_are_offered(run_in_every_status) -> None:
    offered = open_page(PAGE).multiselect(key="predict_runs").options
    assert offered_statuses(offered, run_in_every_status) == ["completed", "stopped"]


def test_uploaded_png_gets_top5_bars(run_factory) -> None:
    run = run_factory("completed", cifar100=True, num_classes=6)
    at = open_page(PAGE)
    data = png_bytes()
    at.file_uploader(key="predict_upload").upload("street.png", data, "image/png").run()
    assert_clean(at)
    shown = bars(at, 0)
    assert len(shown) == 5
    expected = expected_top([run], data)
    assert [name for name, _ in shown] == [display_name(name) for name, _ in expected]
    assert [prob for _, prob in shown] == pytest.approx([prob for _, prob in expected], abs=1e-5)
    assert at.image[0].captions == ["street.png"]
    assert at.markdown[0].value.startswith(f"**{display_name(expected[0][0])}**")


def upload(at: AppTest, data: bytes) -> AppTest:
    at.file_uploader(key="predict_upload").upload("street.png", data, "image/png").run()
    assert_clean(at)
    return at


def test_predictions_use_the_runs_mirror_averaging_and_temperature(run_factory) -> None:
    run = run_factory("completed", conv=True)
    rundir.update_status(run.path, temperature=0.5)
    data = png_bytes(seed=3)
    at = upload(open_page(PAGE), data)
    expected = expected_top([run], data)
    assert bars(at, 0) == pytest.approx(expected, abs=1e-4)
    image = predict.to_input(predict.read_image(data), 32)[None].astype(np.float32)
    plain = predict.load_model(run.path / rundir.BEST_MODEL).predict(image, verbose=0)[0]
    assert max(plain) != pytest.approx(expected[0][1], abs=1e-3)  # TTA and T changed the answer
    notes = [caption.value for caption in at.caption]
    assert any("Averaged with its mirror image" in note for note in notes)
    at.toggle(key="predict_gradcam").set_value(True).run()
    assert_clean(at)
    assert any("not its mirror image" in caption.value for caption in at.caption)


def test_a_run_without_flip_tta_predicts_the_plain_image(run_factory) -> None:
    run = run_factory("completed", conv=True)
    replace(run.config, augment=AugmentConfig(flip_tta=False)).save(run.path / rundir.CONFIG)
    data = png_bytes(seed=4)
    at = upload(open_page(PAGE), data)
    plain = runs.load(run.path)
    assert not plain.config.augment.flip_tta
    assert bars(at, 0) == pytest.approx(expected_top([plain], data), abs=1e-4)
    assert not any("mirror" in caption.value for caption in at.caption)


def test_broken_file_is_named_and_the_others_still_classified(run_factory) -> None:
    run_factory("completed")
    at = open_page(PAGE)
    uploader = at.file_uploader(key="predict_upload")
    uploader.upload("notes.png", b"these are my notes, not a picture", "image/png")
    uploader.upload("grey.png", png_bytes(1, mode="L"), "image/png")
    uploader.upload("empty.jpg", b"", "image/jpeg").run()
    assert_clean(at)
    warnings = [warning.value for warning in at.warning]
    assert len(warnings) == 2
    assert "notes.png" in warnings[0] and "not an image" in warnings[0]
    assert "empty.jpg" in warnings[1]
    assert len(at.get("plotly_chart")) == 1
    assert at.image[0].captions == ["grey.png"]


def test_test_images_show_their_true_label_and_shuffle(run_factory) -> None:
    run_factory("completed")
    at = open_page(PAGE)
    at.radio(key="predict_source").set_value("Test images").run()
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 4
    first = [caption for image in at.image for caption in image.captions]
    assert all(caption.startswith("test image #") for caption in first)
    assert all((":material/check_circle: right" in text.value)
               != (":material/cancel: wrong" in text.value) for text in at.markdown)
    at.slider(key="predict_count").set_value(2).run()
    assert len(at.get("plotly_chart")) == 2
    at.button(key="predict_shuffle").click().run()
    assert_clean(at)
    shuffled = [caption for image in at.image for caption in image.captions]
    assert len(shuffled) == 2 and shuffled != first[:2]


def test_ensemble_averages_the_chosen_runs(run_factory) -> None:
    first, second = run_factory("completed"), run_factory("completed")
    at = open_with_runs(PAGE, "predict_runs", [first, second])
    data = png_bytes(3)
    at.file_uploader(key="predict_upload").upload("photo.png", data, "image/png").run()
    assert_clean(at)
    assert any("Ensemble of 2 models" in caption.value for caption in at.caption)
    expected = expected_top([first, second], data)
    assert [prob for _, prob in bars(at, 0)] == pytest.approx(
        [prob for _, prob in expected], abs=1e-5)


def test_ensemble_of_different_classes_is_refused(run_factory) -> None:
    first = run_factory("completed")
    other = run_factory("completed", cifar100=True, num_classes=6)
    at = open_with_runs(PAGE, "predict_runs", [first, other])
    assert "different classes" in at.warning[0].value
    assert not at.file_uploader


def test_unreadable_predictions_give_a_message_not_a_crash(run_factory) -> None:
    run = run_factory("completed")
    (run.path / rundir.PREDICTIONS).write_bytes(b"not an npz file")
    at = open_page(PAGE)
    assert "cannot be read" in at.error[0].value


# --- Grad-CAM


def expected_overlay(run: runs.Run, image: np.ndarray, class_index: int) -> np.ndarray:
    """The overlay computed straight from cifarkit, at the page's display size."""
    model = predict.load_model(run.path / rundir.BEST_MODEL)
    heat = gradcam.gradcam(model, image, class_index).heatmap
    enlarged = Image.fromarray(image).resize((SHOWN, SHOWN), Image.Resampling.NEAREST)
    return gradcam.overlay(np.asarray(enlarged), heat)


def assert_same_picture(shown: np.ndarray, expected: np.ndarray) -> None:
    assert shown.shape == expected.shape == (SHOWN, SHOWN, 3)
    assert np.abs(shown.astype(int) - expected.astype(int)).max() <= 1  # float rounding


def class_names(run: runs.Run) -> list[str]:
    return [str(name) for name in np.load(run.path / rundir.PREDICTIONS)["class_names"]]


def test_gradcam_shows_heatmaps_for_the_prediction_and_a_picked_class(
        run_factory, shown_images) -> None:
    run = run_factory("completed", conv=True)
    names = class_names(run)
    at = open_page(PAGE)
    data = png_bytes(5)
    at.file_uploader(key="predict_upload").upload("pet.png", data, "image/png").run()
    assert not at.selectbox  # Grad-CAM is off until asked for
    shown_images.clear()
    at.toggle(key="predict_gradcam").set_value(True).run()
    assert_clean(at)
    top = expected_top([run], data)
    assert [caption for caption, _ in shown_images] == [
        "pet.png", f"Where it saw “{top[0][0]}” (predicted)", f"Where it saw “{top[1][0]}”"]
    image = predict.to_input(predict.read_image(data), 32)
    assert_same_picture(shown_images[1][1], expected_overlay(run, image, names.index(top[0][0])))
    assert at.selectbox(key=f"predict_cam_layer_{run.run_id}").options == ["conv"]

    other = next(name for name in names if name not in (top[0][0], top[1][0]))
    runner_up = expected_overlay(run, image, names.index(top[1][0]))
    picked = expected_overlay(run, image, names.index(other))
    assert not np.array_equal(runner_up, picked)  # the two classes have different heatmaps
    before = at.image[2].value
    shown_images.clear()
    at.selectbox(key="predict_bars_0_cam_class_pet.png").set_value(other).run()
    assert_clean(at)
    assert shown_images[2][0] == f"Where it saw “{other}”"
    assert_same_picture(shown_images[2][1], picked)
    assert at.image[2].value != before


def test_gradcam_explains_the_chosen_member_of_an_ensemble(run_factory, shown_images) -> None:
    first, second = run_factory("completed", conv=True), run_factory("completed", conv=True)
    at = open_with_runs(PAGE, "predict_runs", [first, second])
    data = png_bytes(6)
    at.file_uploader(key="predict_upload").upload("photo.png", data, "image/png").run()
    at.toggle(key="predict_gradcam").set_value(True).run()
    shown_images.clear()
    at.selectbox(key="predict_cam_run").set_value(second.run_id).run()
    assert_clean(at)
    predicted = expected_top([first, second], data)[0][0]  # the ensemble's answer
    image = predict.to_input(predict.read_image(data), 32)
    index = class_names(first).index(predicted)
    expected = expected_overlay(second, image, index)
    assert not np.array_equal(expected, expected_overlay(first, image, index))
    assert shown_images[1][0] == f"Where it saw “{predicted}” (predicted)"
    assert_same_picture(shown_images[1][1], expected)


def test_gradcam_of_an_ensemble_defaults_to_the_members_average(run_factory,
                                                                shown_images) -> None:
    first, second = run_factory("completed", conv=True), run_factory("completed", conv=True)
    at = open_with_runs(PAGE, "predict_runs", [first, second])
    data = png_bytes(6)
    at.file_uploader(key="predict_upload").upload("photo.png", data, "image/png").run()
    shown_images.clear()
    at.toggle(key="predict_gradcam").set_value(True).run()
    assert_clean(at)
    look = at.selectbox(key="predict_cam_run")
    assert look.value == "ensemble" and look.options[0] == "All members (ensemble)"
    predicted = expected_top([first, second], data)[0][0]  # the ensemble's answer
    assert shown_images[1][0] == (f"Where the ensemble saw “{display_name(predicted)}” "
                                  "(average of its 2 models' maps) (predicted)")
    image = predict.to_input(predict.read_image(data), 32)
    index = class_names(first).index(predicted)
    maps = [gradcam.gradcam(predict.load_model(run.path / rundir.BEST_MODEL), image,
                            index).heatmap for run in (first, second)]
    enlarged = Image.fromarray(image).resize((SHOWN, SHOWN), Image.Resampling.NEAREST)
    expected = gradcam.overlay(np.asarray(enlarged), gradcam.average_heatmaps(maps))
    assert_same_picture(shown_images[1][1], expected)
    assert not np.array_equal(expected, expected_overlay(first, image, index))  # not one model's


def test_gradcam_on_a_model_without_convolutions_explains_why_not(run_factory) -> None:
    run_factory("completed")  # the plain tiny model: Rescaling, Flatten, Dense
    at = open_page(PAGE)
    at.file_uploader(key="predict_upload").upload("a.png", png_bytes(), "image/png").run()
    at.toggle(key="predict_gradcam").set_value(True).run()
    assert_clean(at)
    assert "no convolutional layer" in at.info[0].value
    assert len(at.image) == 1 and len(at.get("plotly_chart")) == 1  # still classified
