"""Models from elsewhere (issue 11): the input convention found and kept, .h5 files checked
before anything in them runs, labels.txt, and scores equal to Keras' own evaluate."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from cifarkit import datasets, gradcam, h5scan, modelfiles, predict, rundir, runs
from cifarkit.config import DataConfig
from cifarkit.evaluation import Predictions
from cifarkit.predict import ModelFileError
from tests.conftest import shared_data_dir

CIFAR10 = DataConfig(source="cifar10")
TRAIN_IMAGES = 2000  # real CIFAR-10 images, 3 epochs: a weak model, but well above chance
# How each "notebook" scaled its images before fit (outside the model), and the convention
# cifarkit must find for it; "rescaling" keeps the scaling inside the model (raw pixels).
SCALINGS = {"0-1": lambda x: x / 255.0, "-1-1": lambda x: x / 127.5 - 1.0,
            "rescaling": lambda x: x}
EXPECTED = {"0-1": "0-1", "-1-1": "-1-1", "rescaling": "0-255"}
ACCURACY_TOLERANCE = 0.005  # the issue's "within 0.005 of Keras' own evaluate"


@pytest.fixture(scope="module")
def cifar10(tmp_path_factory: pytest.TempPathFactory) -> datasets.Dataset:
    folder = shared_data_dir()
    if folder is None or not (folder / "cifar-10-python.tar.gz").is_file():
        pytest.skip("real CIFAR-10 sample not found: set CIFARKIT_DATA_DIR to ../shared/data")
    return datasets.load(CIFAR10)


def _notebook_model(scaling: str, seed: int = 0) -> keras.Model:
    """A small convnet as a tutorial builds it; only "rescaling" scales inside the model."""
    keras.utils.set_random_seed(seed)
    inside = [keras.layers.Rescaling(1 / 255)] if scaling == "rescaling" else []
    return keras.Sequential([
        keras.Input((32, 32, 3)), *inside,
        keras.layers.Conv2D(16, 3, activation="relu", name="conv1"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu", name="conv2"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax", name="head"),
    ], name=f"notebook_{scaling.replace('-', 'm')}")


@pytest.fixture(scope="module")
def trained(cifar10: datasets.Dataset, tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, tuple[keras.Model, dict[str, Path]]]:
    """Per scaling: the model trained on images scaled that way, saved as .keras and .h5."""
    folder = tmp_path_factory.mktemp("notebooks")
    out = {}
    for scaling, scale in SCALINGS.items():
        model = _notebook_model(scaling)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        x = scale(cifar10.x_train[:TRAIN_IMAGES].astype("float32"))
        model.fit(x, cifar10.y_train[:TRAIN_IMAGES], epochs=3, batch_size=32, verbose=0)
        paths = {suffix: folder / f"{scaling}{suffix}" for suffix in (".keras", ".h5")}
        for path in paths.values():
            model.save(path)
        out[scaling] = (model, paths)
    return out


def keras_accuracy(model: keras.Model, scaling: str, dataset: datasets.Dataset) -> float:
    """Keras' own evaluate on the test images, scaled the way the notebook scaled them."""
    x = SCALINGS[scaling](dataset.x_test.astype("float32"))
    return float(model.evaluate(x, dataset.y_test, batch_size=256, verbose=0,
                                return_dict=True)["accuracy"])


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("scaling", list(SCALINGS))
def test_imported_accuracy_matches_keras_evaluate(trained, cifar10: datasets.Dataset,
                                                  scaling: str, suffix: str) -> None:
    model, paths = trained[scaling]
    run = modelfiles.import_model(paths[suffix], None, "", data_config=CIFAR10)
    expected = keras_accuracy(model, scaling, cifar10)
    print(f"\n{scaling}{suffix}: imported {run.info['test_accuracy']:.4f}, "
          f"Keras evaluate {expected:.4f}; {run.info['convention_comparison']['text']}")
    assert run.info["input_convention"]["key"] == EXPECTED[scaling]
    assert run.info["convention_comparison"]["pick"] == EXPECTED[scaling]
    assert abs(run.info["test_accuracy"] - expected) <= ACCURACY_TOLERANCE
    assert run.info["test_images"] == len(cifar10.y_test)
    assert expected > 0.2  # trained well above chance (0.1), or the check proves nothing


def test_raw_pixels_would_have_scored_lower(trained, cifar10: datasets.Dataset) -> None:
    """The issue's bug, measured: the 0…1 model fed raw pixels scores far below its worth."""
    run = modelfiles.import_model(trained["0-1"][1][".keras"], None, "", data_config=CIFAR10,
                                  convention="0-255")
    scores = run.info["convention_comparison"]["scores"]
    assert run.info["input_convention"]["key"] == "0-255"  # the user's override is kept
    assert scores["0-1"] - scores["0-255"] >= 0.05
    assert run.info["convention_comparison"]["best"] == "0-1"


def test_convention_reaches_predict_gradcam_and_exports(trained, cifar10: datasets.Dataset,
                                                        tmp_path: Path) -> None:
    model, paths = trained["0-1"]
    run = modelfiles.import_model(paths[".h5"], None, "", data_config=CIFAR10)
    saved = predict.load_model(run.path / rundir.BEST_MODEL)  # what Predict and Errors load
    assert [layer.name for layer in saved.layers[:2]] == ["pixels", modelfiles.CONVENTION_LAYER]
    images = cifar10.x_test[:16]
    expected = model.predict(images.astype("float32") / 255.0, verbose=0)
    np.testing.assert_allclose(predict.predict_probs([saved], images), expected, atol=1e-5)
    np.testing.assert_allclose(predict.predict_probs([saved, saved], images), expected,
                               atol=1e-5)  # an ensemble of it too
    cam = gradcam.gradcam(saved, images[0], class_index=3)
    direct = gradcam.gradcam(model, images[0].astype("float32") / 255.0, class_index=3)
    assert cam.layer_name == direct.layer_name == "conv2"
    np.testing.assert_allclose(cam.heatmap, direct.heatmap, atol=1e-4)
    assert cam.probability == pytest.approx(float(expected[0, 3]), abs=1e-5)
    served = modelfiles.export_saved_model(run.path, tmp_path / "served")
    import tensorflow as tf

    loaded = tf.saved_model.load(str(served))  # kept: its variables live as long as it does
    outputs = loaded.serve(images.astype("float32")).numpy()
    np.testing.assert_allclose(outputs, expected, atol=1e-5)


# --- .h5 files that would run code


def _lambda_h5(path: Path, marker: Path) -> None:
    """An .h5 model whose Lambda creates `marker` whenever it runs (it runs once here, at
    build time: the marker is removed before the import)."""
    code = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(code, name="evil")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)).save(path)
    marker.unlink()


def test_h5_with_a_lambda_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    path, marker = tmp_path / "evil.h5", tmp_path / "pwned.txt"
    _lambda_h5(path, marker)
    with pytest.raises(ModelFileError) as refused:
        modelfiles.import_model(path.read_bytes(), None, "evil", data_config=CIFAR10)
    message = str(refused.value)
    assert message.startswith("the uploaded file contains arbitrary code (a Lambda layer")
    assert "was refused" in message and "Rescaling" in message
    assert not marker.exists()
    assert not runs.root_dir().exists() or not any(runs.root_dir().iterdir())
    keras.saving.load_model(path, compile=False, safe_mode=False)  # the control: unsafe, the
    assert marker.exists()  # file's code does run, so the refusal above is what kept it out


def _edit_config(path: Path, edit) -> None:
    """Rewrite an .h5 file's stored model config (what a hand-made or foreign file holds)."""
    with h5py.File(path, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        edit(config)
        handle.attrs["model_config"] = json.dumps(config)


def _plain_h5(path: Path) -> None:
    _notebook_model("rescaling").save(path)


@pytest.mark.parametrize(("edit", "phrase"), [
    (lambda c: c["config"]["layers"][1].update(class_name="MyFancyConv"),
     "needs an unknown custom object 'MyFancyConv' (a class defined in the code that made the "
     "model, not in Keras"),
    (lambda c: c["config"]["layers"][2]["config"]["kernel_initializer"].update(
        module="os", class_name="system"),
     "names the module 'os', which loading would import and run, and was refused"),
])
def test_h5_with_foreign_classes_is_refused(tmp_path: Path, edit, phrase: str) -> None:
    path = tmp_path / "foreign.h5"
    _plain_h5(path)
    _edit_config(path, edit)
    with pytest.raises(ModelFileError) as refused:
        predict.load_model(path)
    assert phrase in str(refused.value)


def test_h5_weights_only_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.weights.h5"
    _notebook_model("0-1").save_weights(path)
    with pytest.raises(ModelFileError, match="holds weights only, no model"):
        modelfiles.import_model(path.read_bytes(), None, "weights", data_config=CIFAR10)


# --- class names


def test_labels_txt_plain_and_teachable_machine() -> None:
    assert modelfiles.read_labels("cat\ndog\n\nhorse\n") == ["cat", "dog", "horse"]
    assert modelfiles.read_labels("0 cat\n1 dog house\n2 horse\n") == [
        "cat", "dog house", "horse"]
    # numbers that are not each line's own index are part of the names
    assert modelfiles.read_labels("1 euro\n2 euro\n") == ["1 euro", "2 euro"]


def test_labels_txt_names_a_folder_test_set(trained, cifar10: datasets.Dataset,
                                            tmp_path: Path) -> None:
    """A Teachable Machine style labels.txt names the classes; the test set is an image folder
    whose class folders carry those names: the accuracy is Keras' own on the same images."""
    from PIL import Image

    names = list(cifar10.class_names)
    folder = tmp_path / "photos"
    for split in ("train", "test"):
        for index, (image, label) in enumerate(zip(cifar10.x_test, cifar10.y_test,
                                                   strict=True)):
            (folder / split / names[label]).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / split / names[label] / f"{index}.png")
    labels = "".join(f"{i} {name}\n" for i, name in enumerate(names))
    model, paths = trained["0-1"]
    run = modelfiles.import_model(paths[".h5"], modelfiles.read_labels(labels), "photos",
                                  data_config=DataConfig(source="folder", path=str(folder)))
    pred = Predictions.load(run.path / rundir.PREDICTIONS)
    assert pred.class_names == names and run.info["input_convention"]["key"] == "0-1"
    assert run.info["test_images"] == len(cifar10.y_test)
    assert abs(run.info["test_accuracy"] - keras_accuracy(model, "0-1", cifar10)) <= 0.005


def test_large_test_sets_are_scored_in_batches_with_a_cap(trained) -> None:
    seen: list[tuple[int, int]] = []
    run = modelfiles.import_model(trained["rescaling"][1][".keras"], None, "", CIFAR10,
                                  max_images=600, progress=lambda d, t: seen.append((d, t)))
    assert run.info["test_images"] == 600 and run.config.data.max_test_images == 600
    assert seen == [(256, 600), (512, 600), (600, 600)]


# --- a Teachable Machine "Keras" export


def _teachable_machine_h5(path: Path, x: np.ndarray, y: np.ndarray, classes: int) -> keras.Model:
    """A file shaped like Teachable Machine's keras_model.h5: a Sequential of a MobileNet-like
    Sequential and a Dense head, 224×224 input scaled −1…1 outside the model, and the
    `groups: 1` that TF 2's Keras wrote into every DepthwiseConv2D (Keras 3 refuses it)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((224, 224, 3))
    z = keras.layers.Conv2D(8, 3, strides=4, name="Conv1")(inputs)
    z = keras.layers.DepthwiseConv2D(3, name="expanded_conv_depthwise")(z)
    z = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(z))
    base = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(z), name="model1")
    model = keras.Sequential([
        keras.Input((224, 224, 3)), keras.Sequential([base], name="sequential_1"),
        keras.Sequential([keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(classes, activation="softmax")],
                         name="sequential_3")], name="sequential_4")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x / 127.5 - 1.0, y, epochs=8, batch_size=16, verbose=0)
    model.save(path)

    def add_groups(config: dict) -> None:
        for item in h5scan.objects(config):
            if item.get("class_name") == "DepthwiseConv2D":
                item["config"]["groups"] = 1

    _edit_config(path, add_groups)
    return model


def test_a_teachable_machine_export_imports_and_scores_on_its_photos(
        cifar10: datasets.Dataset, tmp_path: Path) -> None:
    from PIL import Image

    names = ["cat", "dog", "horse"]
    folder = tmp_path / "project"
    for name in names:
        (folder / name).mkdir(parents=True)
        picks = np.flatnonzero(cifar10.y_test == cifar10.class_names.index(name))[:30]
        for index in picks:
            Image.fromarray(cifar10.x_test[index]).resize((224, 224)).save(
                folder / name / f"{index}.png")
    data = DataConfig(source="folder", path=str(folder))
    photos = datasets.load(replace(data, image_size=224))
    path = tmp_path / "keras_model.h5"
    model = _teachable_machine_h5(path, photos.x_train.astype("float32"), photos.y_train, 3)
    with pytest.raises(Exception, match="groups"):  # the control: Keras 3 alone cannot read it
        keras.saving.load_model(path, compile=False)
    run = modelfiles.import_model(path, modelfiles.read_labels("0 cat\n1 dog\n2 horse\n"),
                                  "teachable", data_config=data, convention="-1-1")
    expected = float(model.evaluate(photos.x_test.astype("float32") / 127.5 - 1.0,
                                    photos.y_test, verbose=0, return_dict=True)["accuracy"])
    print(f"\nTeachable Machine style: imported {run.info['test_accuracy']:.4f}, Keras "
          f"evaluate {expected:.4f}; {run.info['convention_comparison']['text']}")
    assert abs(run.info["test_accuracy"] - expected) <= ACCURACY_TOLERANCE
    assert run.config.data.image_size == 224 and run.info["test_images"] == len(photos.y_test)
    assert Predictions.load(run.path / rundir.PREDICTIONS).class_names == names
    saved = predict.load_model(run.path / rundir.BEST_MODEL)  # reloads for Predict
    np.testing.assert_allclose(predict.predict_probs([saved], photos.x_test[:4]),
                               model.predict(photos.x_test[:4] / 127.5 - 1.0, verbose=0),
                               atol=1e-5)


# --- the command line


def test_cli_import_with_labels_and_a_chosen_convention(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    from cifarkit import cli

    path = tmp_path / "digits.h5"
    _notebook_model("rescaling").save(path)
    (tmp_path / "labels.txt").write_text("".join(f"{d} {d}\n" for d in range(10)))
    code = cli.main(["import", str(path), "--labels", str(tmp_path / "labels.txt"),
                     "--convention=-1-1", "--max-test", "200", "--name", "from the shell"])
    out = capsys.readouterr().out
    [run] = runs.list_runs()
    assert code == 0 and run.name == "from the shell" and run.config.data.source == "digits"
    assert run.info["input_convention"]["key"] == "-1-1" and run.info["test_images"] == 200
    assert "input convention: −1…1 (pixels / 127.5 − 1;" in out
    assert f"imported as run {run.run_id} in {run.path}" in out


@pytest.mark.parametrize(("flags", "message"), [
    (["--mean", "0.5,0.5,0.5"], "error: --mean and --std go with --convention mean_std"),
    (["--convention", "mean_std", "--mean", "0.5,0.5", "--std", "0.2,0.2,0.2"],
     "error: mean must be three finite numbers (R, G, B), got [0.5, 0.5]"),
    (["--source", "nowhere"], "error: data.source"),
])
def test_cli_import_refuses_bad_flags_before_loading(tmp_path: Path, flags: list[str],
                                                     message: str,
                                                     capsys: pytest.CaptureFixture) -> None:
    from cifarkit import cli

    path = tmp_path / "model.keras"
    path.write_bytes(b"never read: the flags are checked first")
    assert cli.main(["import", str(path), *flags]) == 2
    assert capsys.readouterr().err.startswith(message)
    assert not runs.root_dir().exists() or not any(runs.root_dir().iterdir())
