"""The Runs page's import section (ui/model_import.py): .h5 files, the input scale found or
chosen and shown, labels.txt, and refusals that leave no run behind."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cifarkit import conventions, datasets, rundir, runs
from cifarkit.config import DataConfig
from cifarkit.evaluation import Predictions
from cifarkit.labels import DIGITS_LABELS
from tests.app.conftest import assert_clean, open_page, page_path

PAGE = page_path("pages/runs.py")
DIGITS = DataConfig(source="digits")


@pytest.fixture(scope="module")
def digits() -> datasets.Dataset:
    return datasets.load(DIGITS)


@pytest.fixture(scope="module")
def minus_one_model(digits: datasets.Dataset, tmp_path_factory: pytest.TempPathFactory
                    ) -> tuple[keras.Model, bytes]:
    """A notebook's model trained on digits scaled to −1…1 outside the model, as .h5 bytes."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax"),
    ], name="notebook")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(_minus_one(digits.x_train[:1000]), digits.y_train[:1000], epochs=2,
              batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("models") / "notebook.h5"
    model.save(path)
    return model, path.read_bytes()


def _minus_one(images: np.ndarray) -> np.ndarray:
    return images.astype("float32") / 127.5 - 1.0


def import_on_page(data: bytes, file_name: str = "notebook.h5", classes: str = "digits",
                   convention: str | None = None, labels: bytes | None = None,
                   **boxes: str) -> AppTest:
    """Open Runs, fill the import section as a user would and press Import."""
    at = open_page(PAGE)
    at.file_uploader(key="runs_import_file").upload(file_name, data,
                                                    "application/octet-stream").run()
    at.selectbox(key="runs_import_classes").set_value(classes).run()
    if convention is not None:
        at.selectbox(key="runs_import_convention").set_value(convention).run()
    if labels is not None:
        at.file_uploader(key="runs_import_labels").upload("labels.txt", labels,
                                                          "text/plain").run()
    for key, value in boxes.items():
        at.text_input(key=key).input(value)
    at.button(key="runs_import").click().run()
    assert_clean(at)
    return at


def no_runs() -> bool:
    folder = runs.root_dir()
    return not folder.exists() or not any(folder.iterdir())


def test_an_h5_model_scaled_outside_is_imported_at_minus_one_to_one(
        minus_one_model, digits: datasets.Dataset) -> None:
    model, data = minus_one_model
    at = import_on_page(data)
    [run] = runs.list_runs()
    assert run.info["input_convention"]["key"] == "-1-1"
    expected = float(model.evaluate(_minus_one(digits.x_test), digits.y_test, verbose=0,
                                    return_dict=True)["accuracy"])
    assert abs(run.info["test_accuracy"] - expected) <= 0.005
    assert f"Test accuracy: **{run.info['test_accuracy']:.1%}**" in at.success[0].value
    [scale] = [item.value for item in at.warning if item.value.startswith("Input scale:")]
    assert scale.startswith("Input scale: **−1…1 (pixels / 127.5 − 1;")
    comparison = run.info["convention_comparison"]
    assert f"Accuracy on 300 test images under each: {comparison['text']}." in scale
    # digits are nearly black and white: −1…1, ImageNet mean/std and caffe score alike, raw
    # pixels and 0…1 far lower; the first of the tied in table order is used, and said so
    assert comparison["tied"] == ["-1-1", "torch", "caffe"]
    assert comparison["scores"]["-1-1"] - comparison["scores"]["0-255"] > 0.2
    assert scale.endswith("−1…1, ImageNet mean/std, caffe (BGR) scored about the same on "
                          "these images, and −1…1 was used: if you know how the model was "
                          "trained, import it again choosing its scale.")


def test_the_user_can_override_the_scale_and_is_told_it_looks_wrong(minus_one_model) -> None:
    at = import_on_page(minus_one_model[1], convention="0-255")
    [run] = runs.list_runs()
    assert run.info["input_convention"]["key"] == "0-255"
    [warning] = [item.value for item in at.warning if item.value.startswith("Input scale:")]
    assert warning.startswith("Input scale: **0…255 (raw pixels;")
    best = conventions.SHORT[run.info["convention_comparison"]["best"]]
    assert f"The model scored clearly better with {best}: import it again with that" in warning


def test_labels_txt_names_the_classes(minus_one_model) -> None:
    labels = "".join(f"{index} {name}\n" for index, name in enumerate(DIGITS_LABELS)).encode()
    import_on_page(minus_one_model[1], classes="typed", labels=labels)
    [run] = runs.list_runs()
    assert run.config.data.source == "digits"  # the names picked the test set
    assert Predictions.load(run.path / rundir.PREDICTIONS).class_names == list(DIGITS_LABELS)


def test_an_h5_with_a_lambda_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    code = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Lambda(code)(inputs))
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)).save(
        tmp_path / "evil.h5")
    marker.unlink()  # building the model ran it once; the import must not
    at = import_on_page((tmp_path / "evil.h5").read_bytes(), file_name="evil.h5")
    message = at.error[0].value
    assert message.startswith("The model was not imported: the uploaded file contains "
                              "arbitrary code (a Lambda layer")
    assert not marker.exists() and no_runs() and not at.success


def test_a_bad_mean_std_is_named_and_nothing_is_imported(minus_one_model) -> None:
    at = import_on_page(minus_one_model[1], convention="mean_std",
                        runs_import_mean="0.5, 0.5", runs_import_std="0.2, 0.2, 0.2")
    assert ("Mean and std: mean must be three finite numbers (R, G, B), got [0.5, 0.5]"
            in [caption.value for caption in at.caption])
    assert "Give the mean and the std as three numbers each" in at.error[0].value
    assert no_runs()


def test_the_data_page_folder_is_offered_as_the_test_set(tmp_path: Path) -> None:
    folder = DataConfig(source="folder", path=str(tmp_path / "photos"))
    at = open_page(PAGE, data_config=folder)
    picker = at.selectbox(key="runs_import_classes")
    assert picker.options[0].startswith("The images chosen on the Data page: ")
    assert "photos" in picker.options[0]
    assert open_page(PAGE).selectbox(key="runs_import_classes").options[0].startswith(
        "Digits")  # digits chosen (the default): no folder to offer
