"""Model files in and out: import a .keras model as a run, export runs for serving and phones.

An imported model becomes an ordinary completed run (predictions.npz, eval.json, status.json),
so Runs, Errors and Predict need no special case. Exports always trace the model with
training=False: Keras' own `model.export(format="tf_saved_model")` calls the model without it,
and Keras 3 augmentation layers then stay active in the exported graph (random outputs).
"""

from __future__ import annotations

import io
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cifarkit import datasets, jobs, predict, rundir, runs
from cifarkit.config import MAX_INPUT_SIZE, DataConfig, ModelConfig, RunConfig
from cifarkit.evaluation import Predictions
from cifarkit.labels import builtin_label_names
from cifarkit.models.builder import model_stats
from cifarkit.predict import ModelFileError
from cifarkit.training import peak_memory_mb, save_test_results

ModelSource = keras.Model | str | Path  # a model, a run directory or a .keras file

LABELS = "labels.txt"
SAVED_MODEL = "saved_model"  # folder name inside saved_model_zip's archive
_PROBABILITY_TOLERANCE = 1e-3  # |row sum - 1| allowed for float32 softmax outputs
# Class count -> dataset assumed when the caller names none (10 is ambiguous: see _infer_data).
_DATA_BY_CLASSES = {100: DataConfig(source="cifar100", label_mode="fine"),
                    20: DataConfig(source="cifar100", label_mode="coarse"),
                    10: DataConfig(source="cifar10")}
_BUILTIN_DATA = (DataConfig(source="digits"), *_DATA_BY_CLASSES.values())


# --- import


def import_model(data: bytes | str | Path, class_names: Sequence[str] | None, name: str,
                 data_config: DataConfig | None = None,
                 root: str | Path | None = None) -> runs.Run:
    """Load a .keras model (safe mode), score it on a test set and save it as a completed run.

    data_config says which test split to score on; without it the class names or the class
    count pick a built-in dataset. Nothing is left on disk when any step fails.
    """
    with _model_file(data) as (path, label):
        model = _load(path, label)
    num_classes = check_classifier(model, label)
    if class_names is not None:
        _check_names(class_names, num_classes)
    data_config = data_config or _infer_data(num_classes, class_names)
    dataset = datasets.load(data_config)
    names, order = _align_classes(class_names, dataset, num_classes)
    probs = predict.predict_probs([model], dataset.x_test)
    _check_probabilities(probs, label)
    predictions = _predictions(probs, names, order, dataset)
    config = _run_config(name or model.name, data_config, model)
    return _write_run(model, predictions, config, root)


def check_classifier(model: keras.Model, label: str = "the model") -> int:
    """The class count of a model taking one (H, W, 3) image batch and giving (C,) scores."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelFileError(f"{label} has {len(model.inputs)} inputs and {len(model.outputs)} "
                             "outputs; an image classifier has one of each")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[-1] != 3 or shape[1] != shape[2]:
        raise ModelFileError(f"{label} takes input of shape {shape}; expected square RGB "
                             "images (batch, size, size, 3)")
    outputs = tuple(model.outputs[0].shape)
    if len(outputs) != 2 or outputs[1] is None or outputs[1] < 2:
        raise ModelFileError(f"{label} outputs shape {outputs}; expected (batch, classes) "
                             "with at least 2 classes")
    return int(outputs[1])


@contextmanager
def _model_file(data: bytes | str | Path) -> Iterator[tuple[Path, str]]:
    """A path to the model and how messages name it; uploaded bytes go to a temporary file."""
    if not isinstance(data, bytes | bytearray):
        yield Path(data), str(data)
        return
    with tempfile.TemporaryDirectory(prefix="cifarkit-import-") as folder:
        path = Path(folder) / "uploaded.keras"
        path.write_bytes(data)
        yield path, "the uploaded file"


def _load(path: Path, label: str) -> keras.Model:
    """predict.load_model (safe mode) for .keras zips only: legacy .h5 files are refused."""
    if not path.is_file():
        raise ModelFileError(f"model file not found: {label}")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{label} is not a .keras model file (a .keras file is a zip "
                             "archive; re-save an .h5 model with model.save('name.keras'))")
    try:
        return predict.load_model(path)
    except ModelFileError as error:
        raise ModelFileError(str(error).replace(str(path), label)) from error


def _infer_data(num_classes: int, class_names: Sequence[str] | None) -> DataConfig:
    """The built-in dataset whose names match, else the usual one for this many classes."""
    for data in _BUILTIN_DATA:
        builtin = builtin_label_names(data.source, data.label_mode)
        if class_names is not None and set(class_names) == set(builtin or ()):
            return data
    if num_classes == 10 and class_names is None:
        raise ValueError("a 10-class model could be CIFAR-10 or digits: pass its class names "
                         "or a data config naming the test set")
    if num_classes not in _DATA_BY_CLASSES:
        raise ValueError(f"no built-in dataset has {num_classes} classes: pass a data config "
                         "(e.g. an image folder) to evaluate the model on")
    return _DATA_BY_CLASSES[num_classes]


def _align_classes(class_names: Sequence[str] | None, dataset: datasets.Dataset,
                   num_classes: int) -> tuple[list[str], np.ndarray]:
    """The model's class names and, per model output, the dataset class it stands for.

    The same names in another order are matched by name; entirely different names (another
    spelling) are taken in dataset order; a partial match is too likely a mistake to guess.
    """
    if len(dataset.class_names) != num_classes:
        raise ValueError(f"the model has {num_classes} classes but {dataset.name} has "
                         f"{len(dataset.class_names)}")
    names = list(dataset.class_names if class_names is None else class_names)
    known = set(names) & set(dataset.class_names)
    if known == set(names):
        return names, np.array([dataset.class_names.index(n) for n in names], dtype=np.int64)
    if known:
        raise ValueError(f"class names {sorted(set(names) - known)} are not in {dataset.name}, "
                         f"the others are: use that dataset's names {dataset.class_names}")
    return names, np.arange(num_classes, dtype=np.int64)


def _check_names(class_names: Sequence[str], num_classes: int) -> None:
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names given for a model with {num_classes} "
                         "classes: give exactly one name per class")
    if len(set(class_names)) != len(class_names):
        raise ValueError("class names repeat: give one distinct name per class")


def _check_probabilities(probs: np.ndarray, label: str) -> None:
    sums = probs.sum(axis=1)
    if probs.min() < 0 or np.abs(sums - 1).max() > _PROBABILITY_TOLERANCE:
        raise ModelFileError(f"{label} does not output probabilities (rows sum to "
                             f"{sums.min():.3g}..{sums.max():.3g}): end it with a softmax")


def _predictions(probs: np.ndarray, names: list[str], order: np.ndarray,
                 dataset: datasets.Dataset) -> Predictions:
    """Test predictions in the model's class order (the order Predict will show)."""
    to_model = np.empty_like(order)
    to_model[order] = np.arange(len(order))
    fine_to_coarse = None if dataset.fine_to_coarse is None else dataset.fine_to_coarse[order]
    return Predictions(y_true=to_model[dataset.y_test], probs=probs, class_names=names,
                       images=dataset.x_test, coarse_names=dataset.coarse_names,
                       fine_to_coarse=fine_to_coarse)


def _run_config(name: str, data: DataConfig, model: keras.Model) -> RunConfig:
    """The run's config: its data section is true; the model section only records input size
    (the architecture is whatever the file holds, see status.json "imported")."""
    size = model.inputs[0].shape[1]
    fits = size is not None and 32 <= size <= MAX_INPUT_SIZE  # scratch models' valid range
    model_config = ModelConfig(input_size=size) if fits else ModelConfig()
    return RunConfig(name=name, data=data, model=model_config).validate()


def _write_run(model: keras.Model, predictions: Predictions, config: RunConfig,
               root: str | Path | None) -> runs.Run:
    """Fill a hidden staging folder, then rename it into place: the run appears complete or
    not at all (a half-written one would list as interrupted)."""
    staging = jobs.staging_dir(runs.KIND, root)
    try:
        model.save(staging / rundir.BEST_MODEL)
        rundir.write_json_atomic(staging / rundir.STATUS,
                                 _status(model, predictions, save_test_results(staging,
                                                                              predictions)))
        return jobs.adopt(runs.KIND, staging, "imported", config, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _status(model: keras.Model, predictions: Predictions,
            results: dict[str, Any]) -> dict[str, Any]:
    stats = model_stats(model)
    now = time.time()
    return {"status": "completed", "imported": True, "model_name": model.name,
            "created": now, "started": now, "finished": now, "error": None,
            "trainable_params": stats.trainable_params,
            "non_trainable_params": stats.non_trainable_params, "weights_mb": stats.weights_mb,
            "num_classes": predictions.num_classes, "test_images": len(predictions.y_true),
            "peak_memory_mb": peak_memory_mb(), **results}


# --- export


def export_saved_model(source: ModelSource, out_dir: str | Path) -> Path:
    """A TensorFlow SavedModel with a `serve` signature (float32 pixels 0..255 -> probabilities),
    for TF Serving or `tf.saved_model.load`."""
    model = _as_model(source)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda images: model(images, training=False),
                         input_signature=[_input_spec(model)])
    out_dir = Path(out_dir)
    archive.write_out(str(out_dir), verbose=False)
    return out_dir


def export_tflite(source: ModelSource, out_path: str | Path,
                  builtin_ops_only: bool = True) -> Path:
    """A TensorFlow Lite (LiteRT) flat buffer for phones and edge devices.

    builtin_ops_only: refuse TF "select" ops, whose file would need the Flex delegate on the
    device; every cifarkit layer converts to builtins.
    """
    out_path = Path(out_path)
    if out_path.suffix != ".tflite":
        raise ValueError(f"a TFLite file name must end in .tflite, got {out_path.name!r}")
    options: dict[str, Any] = {}
    if builtin_ops_only:
        options["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
    # Keras' LiteRT exporter traces with training=False, so augmentation is off.
    _as_model(source).export(str(out_path), format="litert", verbose=False, **options)
    return out_path


def tflite_bytes(source: ModelSource) -> bytes:
    """export_tflite's file as bytes (written to a temporary folder): what a download hands over."""
    with tempfile.TemporaryDirectory(prefix="cifarkit-tflite-") as folder:
        return export_tflite(source, Path(folder) / "model.tflite").read_bytes()


def saved_model_zip(source: ModelSource) -> bytes:
    """export_saved_model's folder zipped (as saved_model/ inside), since a download is one file."""
    with tempfile.TemporaryDirectory(prefix="cifarkit-saved-model-") as folder:
        export_saved_model(source, Path(folder) / SAVED_MODEL)
        archive = shutil.make_archive(str(Path(folder) / SAVED_MODEL), "zip", root_dir=folder,
                                      base_dir=SAVED_MODEL)
        return Path(archive).read_bytes()


def export_zip(run_dir: str | Path) -> bytes:
    """model.keras + labels.txt + config.json (+ eval.json): what a user takes away."""
    run_dir = Path(run_dir)
    model_path = run_dir / rundir.BEST_MODEL
    if not model_path.is_file():
        raise ValueError(f"{run_dir} has no {rundir.BEST_MODEL} to export")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(model_path, rundir.BEST_MODEL)
        archive.writestr(LABELS, "\n".join(run_class_names(run_dir)) + "\n")
        for extra in (rundir.CONFIG, rundir.EVAL):
            if (run_dir / extra).is_file():
                archive.write(run_dir / extra, extra)
    return buffer.getvalue()


def run_class_names(run_dir: str | Path) -> list[str]:
    """The class names of a run, in model output order, read from its predictions.npz."""
    path = Path(run_dir) / rundir.PREDICTIONS
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return [str(name) for name in arrays["class_names"]]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"cannot read the class names of {run_dir}: {error}") from error


def _as_model(source: ModelSource) -> keras.Model:
    if isinstance(source, keras.Model):
        return source
    path = Path(source)
    return predict.load_model(path / rundir.BEST_MODEL if path.is_dir() else path)


def _input_spec(model: keras.Model) -> tf.TensorSpec:
    """Any batch size, the model's image size, float32 pixels (what model.predict takes)."""
    check_classifier(model, f"model '{model.name}'")
    return tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name="images")
