"""Streamlit helpers shared by the pages: run pickers, status badges, formatting.

Widgets only; anything computational belongs in the cifarkit package.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st
from PIL import Image
from streamlit.errors import StreamlitPageNotFoundError

from cifarkit import compare, datasets, predict, rundir, runs, settings, uploads
from cifarkit.config import AugmentConfig, DataConfig, RunConfig
from cifarkit.evaluation import Predictions

if TYPE_CHECKING:
    from pathlib import Path

    from streamlit.runtime.uploaded_file_manager import UploadedFile

    from cifarkit.gradcam import GradCam

STATUS_ICONS = {
    "queued": "⏳", "running": "🏃", "completed": "✅", "failed": "❌",
    "stopped": "⏹️", "interrupted": "⚠️",
}


def status_label(status: str) -> str:
    return f"{STATUS_ICONS.get(status, '❔')} {status}"


def run_label(run: runs.Run) -> str:
    """How a run is named in pickers: name, architecture (or "imported"), status, accuracy."""
    accuracy = run.info.get("test_accuracy")
    score = f" · acc {accuracy:.3f}" if isinstance(accuracy, float) else ""
    return f"{run.name} · {compare.model_label(run)} · {status_label(run.status)}{score}"


def pick_run(label: str, key: str, with_predictions: bool = True,
             help: str | None = None) -> runs.Run | None:
    """A selectbox of runs (newest first); an info box and None when there are none."""
    candidates = [run for run in runs.list_runs() if run.has_predictions or not with_predictions]
    if not candidates:
        st.info("No finished runs yet. Train one on the **Train** page first.")
        return None
    chosen = st.session_state.get("selected_run")
    ids = [run.run_id for run in candidates]
    index = ids.index(chosen) if chosen in ids else 0
    run = st.selectbox(label, candidates, index=index, format_func=run_label, key=key, help=help)
    st.session_state["selected_run"] = run.run_id
    return run


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


# --- navigation, datasets and images (added for the Home, Data and Train pages)

SOURCE_TITLES = {"digits": "Digits (built in, works offline)", "cifar10": "CIFAR-10",
                 "cifar100": "CIFAR-100", "folder": "My own images (folder or .zip)"}


def nav_link(page: str, label: str, icon: str | None = None) -> None:
    """st.page_link, or a plain hint when the page runs on its own (no st.navigation around it)."""
    try:
        st.page_link(page, label=label, icon=icon)
    except StreamlitPageNotFoundError:
        st.markdown(f"{icon or '→'} **{label}** (in the menu)")


def current_data_config() -> DataConfig:
    """The dataset chosen on the Data page (digits until the user picks another)."""
    return st.session_state.get("data_config") or DataConfig()


def use_digits() -> None:
    """Button callback: switch the app to the embedded offline dataset."""
    st.session_state["data_config"] = DataConfig(source="digits")
    st.session_state.pop("augment_config", None)
    st.session_state.pop("data_source", None)  # the Data page re-reads data_config


def upload_owner() -> str:
    """Whose uploads this browser session may read: a random key kept for the session (user
    accounts can take its place). Streamlit's own session id is not public API."""
    return st.session_state.setdefault("upload_owner", secrets.token_hex(8))


def store_upload(upload: UploadedFile) -> Path:
    """Save an upload in this session's own folder (uploads.save), where workers can read it;
    once per upload, since pages rerun on every click and hashing a big file takes a while."""
    saved = st.session_state.setdefault("upload_paths", {})  # Streamlit's file id -> path
    if upload.file_id not in saved or not saved[upload.file_id].is_file():
        saved[upload.file_id] = uploads.save(upload.getbuffer(), upload.name, upload_owner())
    return saved[upload.file_id]


def archive_missing(spec: DataConfig) -> bool:
    """A CIFAR source with no archive on disk yet (loading it would start a download)."""
    return spec.source in datasets.ARCHIVE_SOURCES and not spec.path and datasets.find_archive(
        spec.source) is None


def where_to_put(source: str) -> str:
    """Where a hand-copied archive is found, for users without internet."""
    folder = settings.data_dir() or settings.cache_dir()
    archive = datasets.archive_file_name(source)
    return (f"Copy the official archive `{archive}` into `{folder}` (or point the "
            "`CIFARKIT_DATA_DIR` environment variable at the folder that holds it), then reload.")


def download_button(source: str, key: str, offer_digits: bool = True) -> bool:
    """A download button with a progress bar; True once the archive is on disk.

    A failed download (offline) leaves its message, which says where to put the archive by hand,
    and (with offer_digits) a button that switches to the built-in digits instead.
    """
    title = SOURCE_TITLES[source]
    error_key = f"{key}_error"
    if st.button(f"Download {title}", key=key, icon=":material/download:", type="primary",
                 help="Fetches the official archive (about 170 MB) once; later runs reuse it."):
        st.session_state.pop(error_key, None)
        bar = st.progress(0.0, text=f"Downloading {title}…")

        def report(done: int, total: int | None) -> None:
            size = f"{done / 2**20:.0f} MB" + (f" of {total / 2**20:.0f} MB" if total else "")
            bar.progress(min(done / total, 1.0) if total else 0.0,
                         text=f"Downloading {title}: {size}")

        try:
            datasets.ensure_archive(source, progress=report)
        except datasets.DatasetError as error:
            st.session_state[error_key] = str(error)
        else:
            bar.progress(1.0, text=f"{title} is ready.")
            return True
        bar.empty()
    if error_key in st.session_state:
        st.warning(st.session_state[error_key], icon=":material/wifi_off:")
    if error_key in st.session_state and offer_digits:
        st.button("Use the built-in digits dataset instead", key=f"{key}_digits",
                  on_click=use_digits, icon=":material/apps:")
    return False


@st.cache_data(show_spinner="Loading images…", max_entries=4)
def _load_dataset(spec_json: str) -> datasets.Dataset:
    return datasets.load(RunConfig.from_dict({"data": json.loads(spec_json)}).data)


def load_dataset(spec: DataConfig) -> datasets.Dataset:
    """datasets.load, cached per DataConfig: parsing a CIFAR archive takes seconds."""
    return _load_dataset(json.dumps(asdict(spec), sort_keys=True))


def enlarge(image: np.ndarray, side: int) -> Image.Image:
    """Blow a tiny image up with square pixels (a browser would blur a 32×32 image)."""
    return Image.fromarray(image).resize((side, side), Image.Resampling.NEAREST)


def describe_data(spec: DataConfig) -> str:
    """One line naming a dataset choice, e.g. "CIFAR-100 (fine labels) · 5 classes"."""
    parts = [SOURCE_TITLES.get(spec.source, spec.source).split(" (")[0]]
    if spec.source == "cifar100":
        parts[0] += f" ({spec.label_mode} labels)"
    if spec.source == "folder" and spec.path:
        parts.append(f"`{spec.path}`")
    if spec.classes:
        shown = ", ".join(spec.classes[:6]) + (" …" if len(spec.classes) > 6 else "")
        parts.append(f"{len(spec.classes)} classes: {shown}")
    elif spec.num_classes:
        parts.append(f"first {spec.num_classes} classes")
    if spec.max_train_images:
        parts.append(f"at most {spec.max_train_images:,} training images")
    return " · ".join(parts)


def recommended_augment(source: str) -> AugmentConfig:
    """Augmentation that helps each dataset; no flips for digits (a mirrored 2 is no 2)."""
    if source == "digits":
        return AugmentConfig(horizontal_flip=False, rotation=0.03, shift=0.1)
    return AugmentConfig(horizontal_flip=True, shift=0.1)


def current_augment_config() -> AugmentConfig:
    """The augmentation chosen on the Data page, else the recommendation for the dataset."""
    return (st.session_state.get("augment_config")
            or recommended_augment(current_data_config().source))


# --- run artifacts (added for the Runs, Errors and Predict pages)

@st.cache_data(show_spinner="Reading test-set predictions…", max_entries=8)
def _load_predictions(path: str, mtime: float) -> Predictions:
    return Predictions.load(path)


def load_predictions(run: runs.Run) -> Predictions:
    """A run's predictions.npz, cached until the file changes (a resumed run rewrites it)."""
    path = run.path / rundir.PREDICTIONS
    return _load_predictions(str(path), path.stat().st_mtime)


@st.cache_resource(show_spinner="Loading the model…", max_entries=6)
def _load_model(path: str, mtime: float) -> Any:
    return predict.load_model(path)


def load_model(run: runs.Run) -> Any:
    """A run's best model (a keras.Model), loaded once per file version and shared by sessions."""
    path = run.path / rundir.BEST_MODEL
    return _load_model(str(path), path.stat().st_mtime)


# --- Grad-CAM and model exports (Predict, Errors and Runs pages). cifarkit.gradcam and
# cifarkit.modelfiles import TensorFlow, so they are imported only when first used.

# Grad-CAM re-wires the shared, cached model on first use of a layer; one at a time is safe.
_GRADCAM_LOCK = threading.Lock()
GRADCAM_HELP = ("Grad-CAM colours the parts of the picture that pushed the model towards a "
                "class: red = strong evidence, blue = none. It follows the gradient of that "
                "class's score back to the last convolutional layer, whose feature maps still "
                "know *where* things are in the image.")
LAYER_HELP = ("The convolutional layer whose feature maps are weighed. The default is the last "
              "one that still has a spatial grid: it sees whole objects. Earlier layers give "
              "sharper but more literal maps (edges, colours); later ones coarser blobs.")


@st.cache_data(show_spinner=False, max_entries=32)
def _gradcam_layers(path: str, mtime: float) -> tuple[list[str], str | None]:
    from cifarkit import gradcam

    model = _load_model(path, mtime)
    names = gradcam.conv_layer_names(model)
    return names, gradcam.default_layer_name(model) if names else None


def gradcam_layers(run: runs.Run) -> tuple[list[str], str | None]:
    """The layers Grad-CAM can use in a run's model and the automatic pick ([] and None when
    the model has no convolution). Raises ModelFileError when the model cannot be loaded."""
    path = run.path / rundir.BEST_MODEL
    return _gradcam_layers(str(path), path.stat().st_mtime)


@st.cache_data(show_spinner=False, max_entries=512)
def _grad_cam(path: str, mtime: float, image: np.ndarray, class_index: int,
              layer: str) -> GradCam:
    from cifarkit import gradcam

    model = _load_model(path, mtime)
    with _GRADCAM_LOCK:
        return gradcam.gradcam(model, image, class_index, layer)


def grad_cam(run: runs.Run, image: np.ndarray, class_index: int, layer: str) -> GradCam:
    """gradcam.gradcam with the run's model, cached per model file, image, class and layer:
    a page redraws on every click and a heatmap costs a forward and a backward pass."""
    path = run.path / rundir.BEST_MODEL
    return _grad_cam(str(path), path.stat().st_mtime, image, int(class_index), layer)


def cam_view(image: np.ndarray, heatmap: np.ndarray, side: int) -> np.ndarray:
    """The heatmap over the image enlarged to `side` pixels (square pixels, smooth heat)."""
    from cifarkit import gradcam

    return gradcam.overlay(np.asarray(enlarge(image, side)), heatmap)


EXPORTS = ("tflite", "saved_model")


@st.cache_data(show_spinner=False, max_entries=4)  # a big model's export is 100+ MB
def _export(path: str, mtime: float, kind: str) -> bytes:
    from cifarkit import modelfiles

    if kind == "tflite":
        return modelfiles.tflite_bytes(path)
    return modelfiles.saved_model_zip(path)


def export_bytes(run: runs.Run, kind: str) -> bytes:
    """A run's model as a TFLite file or a zipped SavedModel, cached per model file version."""
    if kind not in EXPORTS:
        raise ValueError(f"export kind must be one of {EXPORTS}, got {kind!r}")
    path = run.path / rundir.BEST_MODEL
    return _export(str(path), path.stat().st_mtime, kind)


def bundle_bytes(run: runs.Run) -> bytes:
    """model.keras + labels.txt + config.json + eval.json in one zip (modelfiles.export_zip)."""
    from cifarkit import modelfiles

    return modelfiles.export_zip(run.path)


# Augmentation strengths: (config field, label, slider max, step, help for a learner).
AUGMENT_SLIDERS = (
    ("rotation", "Rotation", 0.25, 0.01,
     "Turns each image by a random angle, up to this fraction of a full turn "
     "(0.05 ≈ ±18°). Teaches the network that a tilted object is the same object."),
    ("zoom", "Zoom", 0.5, 0.05,
     "Zooms in or out at random by up to this fraction of the image side (0.1 = ±10 %)."),
    ("shift", "Shift", 0.3, 0.02,
     "Moves the picture up/down/left/right at random by up to this fraction of its side; the "
     "gap is filled by mirroring the edge. Objects are not always centred."),
    ("contrast", "Contrast", 0.8, 0.05,
     "Changes the contrast at random by up to ± this fraction: dull or punchy photos."),
    ("brightness", "Brightness", 0.5, 0.05,
     "Brightens or darkens at random by up to this fraction of the pixel range: "
     "photos taken in different light."),
)


def augment_controls(prefix: str, initial: AugmentConfig, columns: int = 1) -> AugmentConfig:
    """Toggles and strength sliders for random augmentation; keys start with `prefix`.

    Used on the Data page (with a live preview) and in the Train form, so both speak the same
    words. Widget values start from `initial` the first time the widgets appear.
    """
    for name in ("horizontal_flip", "vertical_flip", *(row[0] for row in AUGMENT_SLIDERS)):
        st.session_state.setdefault(f"{prefix}{name}", getattr(initial, name))
    cells = st.columns(columns) if columns > 1 else [st.container()]
    cells[0].toggle("Mirror left ↔ right", key=f"{prefix}horizontal_flip",
                    help="Flips half of the images left–right at random. A car facing left is "
                    "still a car, so this doubles the variety for free (but a mirrored digit "
                    "or letter is not the same symbol).")
    cells[0].toggle("Flip upside down", key=f"{prefix}vertical_flip",
                    help="Flips half of the images top–bottom at random. Rarely right for photos "
                    "(the sky is up); fine for e.g. microscope or satellite images.")
    for index, (name, label, top, step, text) in enumerate(AUGMENT_SLIDERS):
        top = max(top, float(st.session_state[f"{prefix}{name}"]))  # a config may go further
        cells[(index + 1) % len(cells)].slider(label, 0.0, top, step=step, key=f"{prefix}{name}",
                                               help=text + " 0 switches it off.")
    return AugmentConfig(**{name: st.session_state[f"{prefix}{name}"]
                            for name in ("horizontal_flip", "vertical_flip",
                                         *(row[0] for row in AUGMENT_SLIDERS))})


def forget_widgets(prefix: str) -> None:
    """Drop widget values whose key starts with `prefix`, so they restart from their defaults."""
    for key in [key for key in st.session_state if str(key).startswith(prefix)]:
        del st.session_state[key]


def data_line(spec: DataConfig) -> bool:
    """The dataset in use with a link to change it; False (reason shown) while it is missing."""
    line, link = st.columns([4, 1], vertical_alignment="center")
    line.markdown(f":material/photo_library: **Data:** {describe_data(spec)}")
    with link:
        nav_link("pages/data.py", "Change data", ":material/edit:")
    if archive_missing(spec):
        st.info(f"The chosen dataset is not downloaded yet: download it on the Home or Data page. "
                f"Without internet: {where_to_put(spec.source)}", icon=":material/cloud_download:")
        return False
    return True


def usable_gradcam_layers(run: runs.Run) -> tuple[list[str], str] | None:
    """The model's Grad-CAM layers and the automatic pick; None, with the reason shown, if none."""
    try:
        layers, default = gradcam_layers(run)
    except (ValueError, OSError) as error:  # ModelFileError is a ValueError
        st.error(f"The model could not be opened for Grad-CAM: {error}")
        return None
    if default is None:
        st.info(f"**{run.name}** has no convolutional layer, so Grad-CAM cannot show where it "
                "looked: it needs feature maps that still keep the picture's layout.")
        return None
    return layers, default
