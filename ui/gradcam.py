"""Grad-CAM for the Predict and Errors pages: help texts, layer choice, cached heatmaps.

cifarkit.gradcam imports TensorFlow, so it is imported only when a map is first drawn.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from cifarkit import rundir, runs
from ui.cache import by_file
from ui.images import enlarge
from ui.runfiles import model_file

if TYPE_CHECKING:
    from PIL import Image

    from cifarkit.gradcam import GradCam

# Grad-CAM re-wires the shared, cached model on first use of a layer; one at a time is safe.
_LOCK = threading.Lock()
GRADCAM_HELP = ("Grad-CAM colours the parts of the picture that pushed the model towards a "
                "class: red = strong evidence, blue = none. It follows the gradient of that "
                "class's score back to the last convolutional layer, whose feature maps still "
                "know *where* things are in the image.")
LAYER_HELP = ("The convolutional layer whose feature maps are weighed. The default is the last "
              "one that still has a spatial grid: it sees whole objects. Earlier layers give "
              "sharper but more literal maps (edges, colours); later ones coarser blobs.")


@by_file(max_entries=32)
def _layers(path: str) -> tuple[list[str], str | None]:
    from cifarkit import gradcam

    model = model_file(Path(path))
    names = gradcam.conv_layer_names(model)
    return names, gradcam.default_layer_name(model) if names else None


@by_file(max_entries=512)
def _heatmap(path: str, image: np.ndarray, class_index: int, layer: str) -> GradCam:
    from cifarkit import gradcam

    model = model_file(Path(path))
    with _LOCK:
        return gradcam.gradcam(model, image, class_index, layer)


def gradcam_layers(run: runs.Run) -> tuple[list[str], str | None]:
    """The layers Grad-CAM can use in a run's model and the automatic pick ([] and None when
    the model has no convolution). Raises ModelFileError when the model cannot be loaded."""
    return _layers(run.path / rundir.BEST_MODEL)


def grad_cam(run: runs.Run, image: np.ndarray, class_index: int, layer: str) -> GradCam:
    """gradcam.gradcam with the run's model, cached per model file, image, class and layer:
    a page redraws on every click and a heatmap costs a forward and a backward pass."""
    return _heatmap(run.path / rundir.BEST_MODEL, image, int(class_index), layer)


def members_heatmap(members: Sequence[tuple[runs.Run, str]], picture: Image.Image,
                    class_index: int) -> np.ndarray:
    """The Grad-CAM map of one class averaged over (run, layer) members: an ensemble's answer
    averages its members' probabilities, so its evidence is the mean of their maps
    (gradcam.average_heatmaps). Each member sees the picture at its own input size, and each
    map is cached by grad_cam; one member gives its own map."""
    from cifarkit import gradcam, predict

    maps = [grad_cam(run, predict.to_input(picture, run.config.data.image_size), class_index,
                     layer).heatmap for run, layer in members]
    return maps[0] if len(maps) == 1 else gradcam.average_heatmaps(maps)


def cam_view(image: np.ndarray, heatmap: np.ndarray, side: int) -> np.ndarray:
    """The heatmap over the image enlarged to `side` pixels (square pixels, smooth heat)."""
    from cifarkit import gradcam

    return gradcam.overlay(np.asarray(enlarge(image, side)), heatmap)


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
