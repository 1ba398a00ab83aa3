"""Model files: importing a .keras model as a run, refusing unsafe or unfit files, and exports
(SavedModel, TFLite, zip) that predict what the original model predicts."""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from cifarkit import datasets, modelfiles, rundir, runs
from cifarkit.config import AugmentConfig, DataConfig, ModelConfig, RunConfig
from cifarkit.evaluation import Predictions
from cifarkit.labels import DIGITS_LABELS
from cifarkit.models.builder import build_model
from cifarkit.predict import ModelFileError, to_input

DIGITS = DataConfig(source="digits")
# Augmentation that digits survive; an export that left it on would give random outputs.
AUGMENT = AugmentConfig(horizontal_flip=False, zoom=0.1, contrast=0.3, shift=0.0)


@pytest.fixture(scope="module")
def digits() -> datasets.Dataset:
    return datasets.load(DIGITS)


@pytest.fixture(scope="module")
def trained_file(tmp_path_factory: pytest.TempPathFactory, digits: datasets.Dataset) -> Path:
    """simple_cnn (with augmentation layers) after one epoch on 512 digits, saved as .keras."""
    keras.utils.set_random_seed(0)
    config = RunConfig(model=ModelConfig(architecture="simple_cnn"), augment=AUGMENT)
    model = build_model(config, num_classes=10)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(digits.x_train[:512].astype("float32"), digits.y_train[:512], epochs=1,
              batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("models") / "digits.keras"
    model.save(path)
    return path


def _tiny_model(side: int = 32, softmax: bool = True, lambda_layer: bool = False) -> keras.Model:
    inputs = keras.Input((side, side, 3))
    x = (keras.layers.Lambda(lambda t: t / 255.0)(inputs) if lambda_layer
         else keras.layers.Rescaling(1 / 255)(inputs))
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax" if softmax else None)(x)
    return keras.Model(inputs, outputs, name="tiny")


def _no_runs() -> bool:
    folder = runs.root_dir()
    return not folder.exists() or not any(folder.iterdir())


def test_import_round_trip_gives_a_completed_run(trained_file: Path,
                                                  digits: datasets.Dataset) -> None:
    run = modelfiles.import_model(trained_file.read_bytes(), list(DIGITS_LABELS), "uploaded",
                                  data_config=DIGITS)
    assert run.status == "completed" and run.name == "uploaded" and run.has_model
    assert run.info["imported"] is True and run.info["num_classes"] == 10
    assert run.info["trainable_params"] > 0 and run.info["model_file_mb"] > 0
    assert [r.run_id for r in runs.list_runs()] == [run.run_id]
    model = keras.saving.load_model(trained_file)
    direct = model.predict(digits.x_test.astype("float32"), verbose=0).argmax(axis=1)
    accuracy = float(np.mean(direct == digits.y_test))
    pred = Predictions.load(run.path / rundir.PREDICTIONS)
    assert pred.class_names == list(DIGITS_LABELS)
    np.testing.assert_array_equal(pred.y_pred, direct)
    assert rundir.read_json(run.path / rundir.EVAL)["accuracy"] == pytest.approx(accuracy)
    assert run.info["test_accuracy"] == pytest.approx(accuracy)
    assert len(np.unique(direct)) >= 3  # varied predictions: the comparison is not trivial


def test_names_in_another_order_are_matched_by_name(trained_file: Path,
                                                    digits: datasets.Dataset) -> None:
    """The model's output i is names[i]; the test labels are re-expressed in that order."""
    names = list(reversed(DIGITS_LABELS))
    run = modelfiles.import_model(trained_file, names, "reversed")  # digits inferred from names
    assert run.config.data.source == "digits"
    pred = Predictions.load(run.path / rundir.PREDICTIONS)
    assert pred.class_names == names
    truth = [DIGITS_LABELS[label] for label in digits.y_test]
    assert [names[label] for label in pred.y_true] == truth


def test_model_at_another_input_size_is_scored_on_resized_images(
        digits: datasets.Dataset, tmp_path: Path) -> None:
    model = _tiny_model(side=16)
    model.save(tmp_path / "small.keras")
    run = modelfiles.import_model(tmp_path / "small.keras", None, "small", data_config=DIGITS)
    small = np.stack([to_input(image, 16) for image in digits.x_test]).astype("float32")
    direct = model.predict(small, verbose=0).argmax(axis=1)
    pred = Predictions.load(run.path / rundir.PREDICTIONS)
    np.testing.assert_array_equal(pred.y_pred, direct)
    assert pred.images.shape[1:] == (32, 32, 3)  # the gallery keeps the dataset's images


def test_lambda_model_is_refused_and_leaves_no_run(tmp_path: Path) -> None:
    path = tmp_path / "lambda.keras"
    _tiny_model(lambda_layer=True).save(path)
    with pytest.raises(ModelFileError, match=r"the uploaded file contains arbitrary code"):
        modelfiles.import_model(path.read_bytes(), list(DIGITS_LABELS), "evil", DIGITS)
    assert _no_runs()


def test_wrong_class_name_count_names_the_counts(trained_file: Path) -> None:
    with pytest.raises(ValueError, match="9 class names given for a model with 10 classes"):
        modelfiles.import_model(trained_file, list(DIGITS_LABELS[:9]), "short", DIGITS)
    assert _no_runs()


def test_ambiguous_or_unknown_class_count_asks_for_names(tmp_path: Path) -> None:
    path = tmp_path / "tiny.keras"
    _tiny_model().save(path)
    with pytest.raises(ValueError, match="CIFAR-10 or digits: pass its class names"):
        modelfiles.import_model(path, None, "tiny")
    with pytest.raises(ValueError, match=r"class names \['x'\] are not in Digits"):
        modelfiles.import_model(path, [*DIGITS_LABELS[:9], "x"], "tiny", DIGITS)
    assert _no_runs()


@pytest.mark.parametrize("payload, message", [
    (b"definitely not a model", "is not a .keras model file"),
    (b"", "is not a .keras model file"),
])
def test_not_a_model_is_refused_clearly(payload: bytes, message: str) -> None:
    with pytest.raises(ModelFileError, match=message):
        modelfiles.import_model(payload, list(DIGITS_LABELS), "junk", DIGITS)
    assert _no_runs()


def test_a_zip_that_is_not_a_keras_model_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(ModelFileError, match="the uploaded file is not a loadable Keras model"):
        modelfiles.import_model(buffer.getvalue(), list(DIGITS_LABELS), "zip", DIGITS)
    assert _no_runs()


def test_model_without_softmax_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "logits.keras"
    _tiny_model(softmax=False).save(path)
    with pytest.raises(ModelFileError, match="does not output probabilities"):
        modelfiles.import_model(path, list(DIGITS_LABELS), "logits", DIGITS)
    assert _no_runs()


def _samples(digits: datasets.Dataset) -> np.ndarray:
    return digits.x_test[:8].astype("float32")


def test_saved_model_export_agrees_with_the_original(trained_file: Path, tmp_path: Path,
                                                     digits: datasets.Dataset) -> None:
    run = modelfiles.import_model(trained_file, None, "digits", DIGITS)
    out = modelfiles.export_saved_model(run.path, tmp_path / "saved")
    loaded = tf.saved_model.load(str(out))  # keep it: .serve alone lets its variables go
    served = loaded.serve
    images = _samples(digits)
    expected = keras.saving.load_model(trained_file).predict(images, verbose=0)
    first, second = served(tf.constant(images)).numpy(), served(tf.constant(images)).numpy()
    np.testing.assert_array_equal(first.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(first, expected, atol=1e-5)
    np.testing.assert_array_equal(first, second)  # augmentation is off in the export


def _tflite_probs(path: Path, images: np.ndarray) -> np.ndarray:
    """Run the file with LiteRT when installed, else TF's (deprecated) tf.lite.Interpreter."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notice of tf.lite.Interpreter
        interpreter = Interpreter(model_path=str(path))
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(source["index"], list(images.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], images)
    interpreter.invoke()
    return interpreter.get_tensor(target["index"])


def test_tflite_export_agrees_with_the_original(trained_file: Path, tmp_path: Path,
                                                digits: datasets.Dataset) -> None:
    model = keras.saving.load_model(trained_file)
    out = modelfiles.export_tflite(model, tmp_path / "digits.tflite")
    images = _samples(digits)
    probs = _tflite_probs(out, images)
    expected = model.predict(images, verbose=0)
    np.testing.assert_array_equal(probs.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"must end in \.tflite"):
        modelfiles.export_tflite(model, tmp_path / "digits.bin")


def test_download_bytes_hold_working_exports(tmp_path: Path, digits: datasets.Dataset) -> None:
    """tflite_bytes and saved_model_zip (what the Runs page hands out) unpack into models that
    predict what the original predicts."""
    model = _tiny_model()
    images = _samples(digits)
    expected = model.predict(images, verbose=0)
    tflite = tmp_path / "tiny.tflite"
    tflite.write_bytes(modelfiles.tflite_bytes(model))
    np.testing.assert_allclose(_tflite_probs(tflite, images), expected, atol=1e-5)
    with zipfile.ZipFile(io.BytesIO(modelfiles.saved_model_zip(model))) as archive:
        assert "saved_model/saved_model.pb" in archive.namelist()
        archive.extractall(tmp_path / "unzipped")
    loaded = tf.saved_model.load(str(tmp_path / "unzipped" / modelfiles.SAVED_MODEL))
    np.testing.assert_allclose(loaded.serve(tf.constant(images)).numpy(), expected, atol=1e-5)


def test_zip_bundles_model_labels_and_config(trained_file: Path) -> None:
    run = modelfiles.import_model(trained_file, None, "digits", DIGITS)
    with zipfile.ZipFile(io.BytesIO(modelfiles.export_zip(run.path))) as archive:
        assert set(archive.namelist()) == {"model.keras", "labels.txt", "config.json",
                                           "eval.json"}
        assert archive.read("labels.txt").decode().split() == list(DIGITS_LABELS)
        assert RunConfig.from_json(archive.read("config.json").decode()).name == "digits"
        assert archive.read("model.keras") == (run.path / rundir.BEST_MODEL).read_bytes()
