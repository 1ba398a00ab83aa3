"""Predict page: uploads and test images classified by one run or an ensemble."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cifarkit import predict, rundir, runs
from tests.app.conftest import STATUSES, assert_clean, chart_spec, page_path

PAGE = page_path("pages/predict.py")


def open_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert_clean(at)
    return at


def png_bytes(seed: int = 0, size: tuple[int, int] = (48, 64), mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, "PNG")
    return buffer.getvalue()


def expected_top(run_list: list[runs.Run], data: bytes) -> list[tuple[str, float]]:
    """What the page should show, computed straight from the models (no page code involved)."""
    image = predict.to_input(predict.read_image(data), 32)[None]
    models = [predict.load_model(run.path / rundir.BEST_MODEL) for run in run_list]
    probs = predict.predict_probs(models, image)[0]
    names = [str(name) for name in np.load(run_list[0].path / rundir.PREDICTIONS)["class_names"]]
    return predict.top_k(probs, names, 5)


def bars(at: AppTest, index: int) -> list[tuple[str, float]]:
    """(class, probability) of one top-k chart, most probable first."""
    trace = chart_spec(at, index)["data"][0]
    return list(zip(trace["y"], trace["x"], strict=True))[::-1]


def test_without_models_the_page_says_so() -> None:
    at = open_page()
    assert "No trained model" in at.info[0].value


def test_only_runs_with_a_model_and_predictions_are_offered(run_factory) -> None:
    made = {status: run_factory(status) for status in STATUSES}
    at = open_page()
    offered = at.multiselect(key="predict_runs").options
    assert len(offered) == 2
    assert any(made["completed"].name in label for label in offered)
    assert any(made["stopped"].name in label for label in offered)


def test_uploaded_png_gets_top5_bars(run_factory) -> None:
    run = run_factory("completed", cifar100=True, num_classes=6)
    at = open_page()
    data = png_bytes()
    at.file_uploader(key="predict_upload").upload("street.png", data, "image/png").run()
    assert_clean(at)
    shown = bars(at, 0)
    assert len(shown) == 5
    expected = expected_top([run], data)
    assert [name for name, _ in shown] == [name for name, _ in expected]
    assert [prob for _, prob in shown] == pytest.approx([prob for _, prob in expected], abs=1e-5)
    assert at.image[0].captions == ["street.png"]
    assert at.markdown[0].value.startswith(f"**{expected[0][0]}**")


def test_broken_file_is_named_and_the_others_still_classified(run_factory) -> None:
    run_factory("completed")
    at = open_page()
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
    at = open_page()
    at.radio(key="predict_source").set_value("Test images").run()
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 4
    first = [caption for image in at.image for caption in image.captions]
    assert all(caption.startswith("test image #") for caption in first)
    assert all(("✅" in text.value) != ("❌" in text.value) for text in at.markdown)
    at.slider(key="predict_count").set_value(2).run()
    assert len(at.get("plotly_chart")) == 2
    at.button(key="predict_shuffle").click().run()
    assert_clean(at)
    shuffled = [caption for image in at.image for caption in image.captions]
    assert len(shuffled) == 2 and shuffled != first[:2]


def test_ensemble_averages_the_chosen_runs(run_factory) -> None:
    first, second = run_factory("completed"), run_factory("completed")
    at = open_page()
    at.multiselect(key="predict_runs").set_value([first.run_id, second.run_id]).run()
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
    at = open_page()
    at.multiselect(key="predict_runs").set_value([first.run_id, other.run_id]).run()
    assert_clean(at)
    assert "different classes" in at.warning[0].value
    assert not at.file_uploader


def test_unreadable_predictions_give_a_message_not_a_crash(run_factory) -> None:
    run = run_factory("completed")
    (run.path / rundir.PREDICTIONS).write_bytes(b"not an npz file")
    at = open_page()
    assert "cannot be read" in at.error[0].value
