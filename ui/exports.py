"""The model downloads the Runs page offers: one table of formats, cached conversions.

cifarkit.modelfiles imports TensorFlow, so it is imported only when a file is prepared.
"""

from __future__ import annotations

from typing import NamedTuple

from cifarkit import rundir, runs
from ui.cache import by_file


class Export(NamedTuple):
    label: str  # button label
    suffix: str  # appended to the run name
    mime: str
    help: str  # for a learner


EXPORTS: dict[str, Export] = {
    "tflite": Export(
        "TFLite file", ".tflite", "application/octet-stream",
        "TensorFlow Lite: a compact file for phones, Raspberry Pis and other small "
        "devices (Android, iOS, LiteRT). Pixels 0–255 in, class probabilities out."),
    "saved_model": Export(
        "SavedModel (.zip)", "-saved_model.zip", "application/zip",
        "A TensorFlow SavedModel folder (zipped) for TensorFlow Serving or "
        "tf.saved_model.load: no Keras or cifarkit code needed to run it."),
}


@by_file(max_entries=4)  # a big model's export is 100+ MB
def _export(path: str, kind: str) -> bytes:
    from cifarkit import modelfiles

    if kind == "tflite":
        return modelfiles.tflite_bytes(path)
    return modelfiles.saved_model_zip(path)


def export_bytes(run: runs.Run, kind: str) -> bytes:
    """A run's model as a TFLite file or a zipped SavedModel, cached per model file version."""
    if kind not in EXPORTS:
        raise ValueError(f"export kind must be one of {tuple(EXPORTS)}, got {kind!r}")
    return _export(run.path / rundir.BEST_MODEL, kind)


def bundle_bytes(run: runs.Run) -> bytes:
    """model.keras + labels.txt + config.json + eval.json in one zip (modelfiles.export_zip)."""
    from cifarkit import modelfiles

    return modelfiles.export_zip(run.path)
