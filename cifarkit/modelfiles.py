"""Model files in and out: import a .keras or .h5 model as a run, export runs for serving and
phones.

An imported model becomes an ordinary completed run (predictions.npz, eval.json, status.json),
so Runs, Errors and Predict need no special case: its input convention (cifarkit.conventions)
is built into the saved model, and status.json records it with the comparison that chose it.
Exports always trace the model with training=False: Keras' own
`model.export(format="tf_saved_model")` calls the model without it, and Keras 3 augmentation
layers then stay active in the exported graph (random outputs).
"""

from __future__ import annotations

import io
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from cifarkit import conventions, datasets, h5scan, jobs, predict, rundir, runs
from cifarkit.config import MAX_INPUT_SIZE, DataConfig, ModelConfig, RunConfig
from cifarkit.conventions import Comparison, Convention
from cifarkit.evaluation import Predictions
from cifarkit.labels import builtin_label_names
from cifarkit.models.builder import model_stats
from cifarkit.models.layers import ImagePreprocess
from cifarkit.predict import ModelFileError
from cifarkit.scoring import save_test_results
from cifarkit.system import peak_memory_mb

if TYPE_CHECKING:
    from cifarkit.classroom import Person

ModelSource = keras.Model | str | Path  # a model, a run directory or a .keras file

LABELS = "labels.txt"
SAVED_MODEL = "saved_model"  # folder name inside saved_model_zip's archive
CONVENTION_LAYER = "input_convention"  # the layer an import puts in front of the model
_PROBABILITY_TOLERANCE = 1e-3  # |row sum - 1| allowed for float32 softmax outputs
# Class count -> dataset assumed when the caller names none (10 is ambiguous: see _infer_data).
_DATA_BY_CLASSES = {100: DataConfig(source="cifar100", label_mode="fine"),
                    20: DataConfig(source="cifar100", label_mode="coarse"),
                    10: DataConfig(source="cifar10")}
_BUILTIN_DATA = (DataConfig(source="digits"), *_DATA_BY_CLASSES.values())


# --- import


def import_model(data: bytes | str | Path, class_names: Sequence[str] | None, name: str,
                 data_config: DataConfig | None = None, root: str | Path | None = None, *,
                 convention: str | Convention = conventions.AUTO,
                 max_images: int | None = None,
                 progress: predict.Progress | None = None,
                 by: Person | None = None) -> runs.Run:
    """Load a .keras or .h5 model (safe), score it on a test set and save it as a completed run.

    data_config says which test split to score on; without it the class names or the class
    count pick a built-in dataset. convention is what the model expects its pixels to be
    (conventions.AUTO: the clearly best on a sample of the test images); it becomes the saved
    model's first layer. max_images caps the test images scored (a stratified sample). The
    run is owned by `by` (None: classroom.local_person()). Nothing is left on disk when any
    step fails.
    """
    with _model_file(data) as (path, label):
        model = _load(path, label)
    num_classes = check_classifier(model, label)
    if class_names is not None:
        _check_names(class_names, num_classes)
    data_config = _test_data(data_config or _infer_data(num_classes, class_names), model,
                             max_images)
    dataset = datasets.load(data_config)
    names, order = _align_classes(class_names, dataset, num_classes)
    chosen, comparison = choose_convention(model, dataset.x_test, _to_model(order)[dataset.y_test],
                                           convention)
    model = with_convention(model, chosen)
    # scored as it came (no flip TTA, T = 1): what predict.run_inference gives an imported run
    probs = predict.predict_probs([model], dataset.x_test, progress=progress,
                                  inference=[predict.Inference()])
    _check_probabilities(probs, label)
    predictions = _predictions(probs, names, order, dataset)
    config = _run_config(name or model.name, data_config, model)
    return _write_run(model, predictions, config, root, by,
                      {"input_convention": chosen.to_json(),
                       "convention_comparison": comparison.to_json()})


def read_labels(text: str) -> list[str]:
    """Class names from a labels.txt: one per line, or Teachable Machine's "0 cat" lines.

    The numbers are dropped only when every line starts with its own index (0, 1, 2, ...), so
    a class really called "1 euro" in a plain list keeps its name.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    parts = [line.split(maxsplit=1) for line in lines]
    numbered = all(len(part) == 2 and part[0] == str(index) for index, part in enumerate(parts))
    return [part[1].strip() for part in parts] if numbered and parts else lines


def choose_convention(model: keras.Model, images: np.ndarray, labels: np.ndarray,
                      choice: str | Convention = conventions.AUTO,
                      sample: int = conventions.SAMPLE) -> tuple[Convention, Comparison]:
    """The convention to use and how each candidate scored on the same sample of images.

    labels are in the model's class order. AUTO takes Comparison.pick (the best, or on a
    tie the first in table order; raw pixels for a model at chance). A convention chosen by the
    user is scored too and used even when another scores better: the comparison shows it.
    """
    chosen = None if choice == conventions.AUTO else (
        choice if isinstance(choice, Convention) else conventions.get(choice))
    candidates = dict(conventions.CONVENTIONS)
    if chosen is not None:
        candidates[chosen.key] = chosen
    keep = _sample(len(labels), sample)
    correct = {key: predict.predict_probs([with_convention(model, candidate)],
                                          images[keep]).argmax(axis=1) == labels[keep]
               for key, candidate in candidates.items()}
    comparison = conventions.compare(correct, np.bincount(labels[keep]).max() / len(keep))
    return chosen or candidates[comparison.pick], comparison


def _sample(count: int, size: int) -> np.ndarray:
    """A seeded sample of indices: the same images under every convention, run after run."""
    if count <= size:
        return np.arange(count)
    return np.sort(np.random.default_rng(0).choice(count, size, replace=False))


def with_convention(model: keras.Model, convention: Convention) -> keras.Model:
    """The same model (same layers and weights) with the convention as its first layer, so it
    takes raw 0…255 pixels like every run of cifarkit's own."""
    if convention.is_identity:
        return model
    layer = _convention_layer(convention)
    if isinstance(model, keras.Sequential):
        inputs = keras.Input(model.inputs[0].shape[1:], name="pixels")
        outputs = layer(inputs)
        for inner in model.layers:
            outputs = inner(outputs)
        return keras.Model(inputs, outputs, name=model.name)
    converted: dict[int, Any] = {}

    def call(inner: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
        def convert(tensor: Any) -> Any:  # the model's input, wherever a layer reads it
            history = getattr(tensor, "_keras_history", None)
            if history is None or not isinstance(history.operation, keras.layers.InputLayer):
                return tensor
            return converted.setdefault(id(tensor), layer(tensor))
        return inner(*keras.tree.map_structure(convert, args), **kwargs)

    return keras.models.clone_model(model, clone_function=lambda inner: inner, call_function=call)


def _convention_layer(convention: Convention) -> keras.layers.Layer:
    """Keras' own preprocess_input modes through ImagePreprocess; a mean/std as Normalization
    (both load in safe mode)."""
    if convention.mean is not None and convention.std is not None:
        return keras.layers.Normalization(
            mean=[255.0 * m for m in convention.mean],
            variance=[(255.0 * s) ** 2 for s in convention.std], name=CONVENTION_LAYER)
    return ImagePreprocess(convention.mode or "none", name=CONVENTION_LAYER)


def _test_data(data: DataConfig, model: keras.Model, max_images: int | None) -> DataConfig:
    """The data section scored on: capped when asked, folder images read at the model's size
    (a 224-pixel model would otherwise see 32-pixel images blown up)."""
    size = model.inputs[0].shape[1]
    if data.source == "folder" and isinstance(size, int) and 8 <= size <= MAX_INPUT_SIZE:
        data = replace(data, image_size=size)
    if max_images is not None:
        data = replace(data, max_test_images=max_images)
    return data


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
    """A path to the model and how messages name it; uploaded bytes go to a temporary file,
    named .h5 or .keras after what the bytes are (Keras picks its loader by the name)."""
    if not isinstance(data, bytes | bytearray):
        yield Path(data), str(data)
        return
    suffix = ".h5" if bytes(data).startswith(h5scan.HDF5_SIGNATURE) else ".keras"
    with tempfile.TemporaryDirectory(prefix="cifarkit-import-") as folder:
        path = Path(folder) / f"uploaded{suffix}"
        path.write_bytes(data)
        yield path, "the uploaded file"


def _load(path: Path, label: str) -> keras.Model:
    """predict.load_model (safe mode; .h5 configs checked first) for .keras and .h5 files."""
    if not path.is_file():
        raise ModelFileError(f"model file not found: {label}")
    if not zipfile.is_zipfile(path) and not h5scan.is_hdf5(path):
        raise ModelFileError(f"{label} is not a .keras model file (a zip archive) or an .h5 "
                             "model file (HDF5)")
    try:
        return predict.load_model(path)
    except ValueError as error:  # ModelFileError, h5scan.UnsafeModelError
        message = str(error).replace(str(path), label)
        raise ModelFileError(_legacy_hint(message)) from error


def _legacy_hint(message: str) -> str:
    """What to do when Keras 3 cannot read an old (TF 2 / Keras 2) .h5 file."""
    if "Unrecognized keyword arguments" not in message and "Could not locate" not in message:
        return message
    return (f"{message} (this .h5 file was written by an older Keras that Keras 3 cannot fully "
            "read: open it with the Keras that made it, e.g. `pip install tf_keras` and "
            "tf_keras.models.load_model, then save it with model.save('name.keras'))")


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
    to_model = _to_model(order)
    fine_to_coarse = None if dataset.fine_to_coarse is None else dataset.fine_to_coarse[order]
    return Predictions(y_true=to_model[dataset.y_test], probs=probs, class_names=names,
                       images=dataset.x_test, coarse_names=dataset.coarse_names,
                       fine_to_coarse=fine_to_coarse)


def _to_model(order: np.ndarray) -> np.ndarray:
    """Dataset class index -> model output index (the inverse of _align_classes' order)."""
    to_model = np.empty_like(order)
    to_model[order] = np.arange(len(order))
    return to_model


def _run_config(name: str, data: DataConfig, model: keras.Model) -> RunConfig:
    """The run's config: its data section is true; the model section only records input size
    (the architecture is whatever the file holds, see status.json "imported")."""
    size = model.inputs[0].shape[1]
    fits = size is not None and 32 <= size <= MAX_INPUT_SIZE  # scratch models' valid range
    model_config = ModelConfig(input_size=size) if fits else ModelConfig()
    return RunConfig(name=name, data=data, model=model_config).validate()


def _write_run(model: keras.Model, predictions: Predictions, config: RunConfig,
               root: str | Path | None, by: Person | None,
               extra: dict[str, Any]) -> runs.Run:
    """Fill a hidden staging folder, then rename it into place: the run appears complete or
    not at all (a half-written one would list as interrupted)."""
    staging = jobs.staging_dir(runs.KIND, root)
    try:
        model.save(staging / rundir.BEST_MODEL)
        results = save_test_results(staging, predictions)
        rundir.write_json_atomic(staging / rundir.STATUS,
                                 {**_status(model, predictions, results), **extra})
        return jobs.adopt(runs.KIND, staging, "imported", config, root, by=by)
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
