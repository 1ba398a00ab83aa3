"""Predict page: show a trained model (or an ensemble) new pictures; see its five best guesses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
from PIL import Image
from streamlit.delta_generator import DeltaGenerator

from cifarkit import charts, compare, predict, runs
from cifarkit.advice import outside_classes_note
from cifarkit.labels import display_name
from ui.format import run_label
from ui.gradcam import GRADCAM_HELP, LAYER_HELP, cam_view, members_heatmap, usable_gradcam_layers
from ui.identity import current_person
from ui.images import enlarge
from ui.legacy import enter_app
from ui.nav import nav_link
from ui.owners import picker_labels, visible
from ui.runfiles import load_model, load_predictions

enter_app()  # first: if Streamlit ran this file alone, rerun it inside app.py

ENSEMBLE_MAP = "ensemble"  # "Look inside" choice: all members' maps averaged
IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp"]
TOP_K = 5
SHOWN_SIZE = 180  # pixels for the picture beside its bars
TEST_SAMPLE_MAX = 12
MIRROR_NOTE = "Averaged with its mirror image (the run's flip test-time augmentation)."


@dataclass
class CamSettings:
    """Grad-CAM is on: the (run, layer) members whose maps are averaged (one: that model's map)."""

    members: list[tuple[runs.Run, str]]

    @property
    def is_ensemble(self) -> bool:
        return len(self.members) > 1


@dataclass
class Picture:
    """One image to classify: its name, the picture itself and, for test images, the answer."""

    name: str
    image: Image.Image
    true_label: str | None = None


def choose_runs() -> list[runs.Run]:
    """One run, or several with the same classes for an ensemble; [] after explaining why."""
    usable = {run.run_id: run for run in visible(runs.list_runs())
              if run.has_model and run.has_predictions}
    if not usable:
        st.info("No trained model yet. Train one on the **Train** page, then come back here.")
        nav_link("pages/train.py", "Go to Train", icon=":material/model_training:")
        nav_link("pages/runs.py", "Or import a .keras model file (Runs page)",
                        icon=":material/upload_file:")
        return []
    best = compare.best_run(list(usable.values()))  # not the newest: often a 1-epoch trial
    chosen = st.multiselect(
        "Model", list(usable), default=[best.run_id],
        format_func=picker_labels(usable.values(), run_label).get, key="predict_runs",
        help="Pick one run, or several to average their predictions (an ensemble). Runs in an "
        "ensemble must know the same classes. A .keras model from elsewhere can be imported "
        "on the Runs page (“Import a model”) and then appears here.")
    if not chosen:
        st.info("Pick at least one model.")
        return []
    picked = [usable[run_id] for run_id in chosen]
    try:
        names = [load_predictions(run).class_names for run in picked]
    except (ValueError, OSError) as error:
        st.error(f"The class names of a chosen run cannot be read: {error}")
        return []
    if any(other != names[0] for other in names[1:]):
        st.warning("These runs know different classes, so their guesses cannot be averaged. "
                   "Pick runs trained on the same classes.")
        return []
    return picked


def uploaded_pictures() -> list[Picture]:
    """The dropped files that are readable images; a warning names each file that is not."""
    files = st.file_uploader(
        "Drop images here", type=IMAGE_TYPES, accept_multiple_files=True, key="predict_upload",
        help="Any photo works (PNG, JPEG, WebP, GIF, BMP). It is cropped to a square and shrunk "
        "to the model's input size, just like the training images.")
    pictures = []
    for file in files or []:
        try:
            pictures.append(Picture(file.name, predict.read_image(file)))
        except predict.ImageError as error:
            st.warning(f"Skipped **{file.name}**: {error}", icon=":material/broken_image:")
    return pictures


def sample_test_pictures(run: runs.Run) -> list[Picture]:
    """A few random test images of the run (never seen in training), with their true labels."""
    pred = load_predictions(run)
    if pred.images is None:
        st.info("This run did not keep its test images; upload your own instead.")
        return []
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    count = left.slider("How many", 1, min(TEST_SAMPLE_MAX, len(pred.y_true)), 4,
                        key="predict_count", help="Test images are held out from training: the "
                        "model sees them here for the first time.")
    if right.button("Shuffle", icon=":material/shuffle:", key="predict_shuffle",
                    help="Draw other test images."):
        st.session_state["predict_seed"] = st.session_state.get("predict_seed", 0) + 1
    rng = np.random.default_rng(st.session_state.get("predict_seed", 0))
    picks = rng.choice(len(pred.y_true), size=count, replace=False)
    return [Picture(f"test image #{index}", Image.fromarray(pred.images[index]),
                    pred.class_names[pred.y_true[index]]) for index in picks]


def classify(chosen: list[runs.Run], pictures: list[Picture]) -> np.ndarray | None:
    """Class probabilities (N, C) from the chosen model(s), each with its run's Inference (flip
    TTA, temperature) as its test predictions were made; None after showing an error."""
    size = max(run.config.data.image_size for run in chosen)
    batch = np.stack([predict.to_input(picture.image, size) for picture in pictures])
    try:
        models = [load_model(run) for run in chosen]
        with st.spinner("Thinking…"):
            return predict.predict_probs(models, batch, inference=inferences(chosen))
    except (predict.ModelFileError, ValueError) as error:
        st.error(f"The model could not make a prediction: {error}")
        return None


def inferences(chosen: list[runs.Run]) -> list[predict.Inference]:
    return [predict.run_inference(run.path) for run in chosen]


def mirror_note(chosen: list[runs.Run]) -> str | None:
    """What to say under a result when flip TTA shaped it (all members, or some of them)."""
    flips = [each.flip_tta for each in inferences(chosen)]
    if all(flips):
        return MIRROR_NOTE
    if any(flips):
        return f"{sum(flips)} of the {len(flips)} models average each picture with its mirror."
    return None


def gradcam_settings(chosen: list[runs.Run]) -> CamSettings | None:
    """The Grad-CAM toggle and, when on, whose map (the ensemble's by default) and which layer;
    None when off or unusable."""
    if not st.toggle("Show where the model looked (Grad-CAM)", key="predict_gradcam",
                     help=GRADCAM_HELP + " Slow models take a second per picture."):
        return None
    members = chosen
    if len(chosen) > 1:
        by_id = {member.run_id: member for member in chosen}
        pick = st.selectbox(
            "Look inside", [ENSEMBLE_MAP, *by_id], key="predict_cam_run",
            format_func=lambda key: ("All members (ensemble)" if key == ENSEMBLE_MAP
                                     else run_label(by_id[key])),
            help="The ensemble's map averages its members' maps for the ensemble's class, as "
            "its answer averages their probabilities. The members may each rely on different "
            "parts of the picture: pick one to see its own map.")
        members = chosen if pick == ENSEMBLE_MAP else [by_id[pick]]
    found = [usable_gradcam_layers(run) for run in members]
    if any(layers is None for layers in found):
        return None
    if len(members) == 1:
        layers, default = found[0]
        with st.expander("Advanced: which layer Grad-CAM looks at"):
            layer = st.selectbox("Layer", layers, index=layers.index(default),
                                 key=f"predict_cam_layer_{members[0].run_id}", help=LAYER_HELP)
        found = [(layers, layer)]
    st.caption("Red: what spoke for the class; blue: what did not count. The second heatmap "
               "explains any class you pick, e.g. the right answer when the model was wrong."
               + (" Heatmaps explain the picture as shown, not its mirror image."
                  if mirror_note(members) else ""))
    return CamSettings([(run, layer) for run, (_, layer) in zip(members, found, strict=True)])


def other_class(top: list[tuple[str, float]], picture: Picture) -> str:
    """The class to contrast with the prediction: the right answer if missed, else the runner-up."""
    if picture.true_label is not None and picture.true_label != top[0][0]:
        return picture.true_label
    return top[1][0] if len(top) > 1 else top[0][0]


def cam_caption(name: str, cam: CamSettings, predicted: bool) -> str:
    """Whose evidence a heatmap shows: one model's, or the ensemble's average."""
    seen = (f"Where the ensemble saw “{display_name(name)}” (average of its "
            f"{len(cam.members)} models' maps)" if cam.is_ensemble
            else f"Where it saw “{display_name(name)}”")
    return seen + (" (predicted)" if predicted else "")


def show_gradcam(picture: Picture, top: list[tuple[str, float]], class_names: list[str],
                 cam: CamSettings, columns: list[DeltaGenerator], key: str) -> None:
    """Two heatmaps: for the predicted class, and for a class picked under the second one."""
    size = max(run.config.data.image_size for run, _ in cam.members)
    image = predict.to_input(picture.image, size)
    predicted_col, picked_col = columns
    with picked_col:  # the pick comes first: its heatmap is drawn above it
        heat_slot = st.empty()
        fallback = other_class(top, picture)
        picked = st.selectbox("Explain class", class_names, index=class_names.index(fallback),
                              key=key, format_func=display_name,
                              help="Which class to show the evidence for. Pick the right answer "
                              "to see whether the model noticed it at all.")
    for slot, name, predicted in ((predicted_col, top[0][0], True), (heat_slot, picked, False)):
        heat = members_heatmap(cam.members, picture.image, class_names.index(name))
        slot.image(cam_view(image, heat, SHOWN_SIZE), caption=cam_caption(name, cam, predicted),
                   width=SHOWN_SIZE)


def show(picture: Picture, probs: np.ndarray, class_names: list[str], key: str,
         cam: CamSettings | None = None, note: str | None = None) -> None:
    top = predict.top_k(probs, class_names, TOP_K)
    best, confidence = top[0]
    widths = [1, 2] if cam is None else [1, 1, 1, 2]
    image_col, *cam_cols, bars_col = st.columns(widths, vertical_alignment="center")
    shown = picture.image
    if max(shown.size) < SHOWN_SIZE:  # tiny test images: square pixels, not a blur
        shown = enlarge(np.asarray(shown), SHOWN_SIZE)
    image_col.image(shown, caption=picture.name, width=SHOWN_SIZE)
    if cam is not None:
        try:
            with st.spinner("Computing Grad-CAM…"):
                show_gradcam(picture, top, class_names, cam, cam_cols,
                             key=f"{key}_cam_class_{picture.name}")
        except ValueError as error:  # e.g. a layer this model cannot explain from
            cam_cols[0].warning(f"Grad-CAM failed: {error}")
    with bars_col:
        verdict = ""
        if picture.true_label is not None:
            verdict = (" :green[:material/check_circle: right]" if best == picture.true_label
                       else f" :red[:material/cancel: wrong, it is "
                       f"**{display_name(picture.true_label)}**]")
        st.markdown(f"**{display_name(best)}** ({confidence:.0%}){verdict}")
        st.plotly_chart(charts.topk_bars(top, picture.true_label), key=key)
        if note:
            st.caption(note)


st.title("Predict")
current_person()  # a name (or a sign-in) first: the picker offers that person's runs
st.caption("Show a trained model a picture and see its five best guesses with their "
           "probabilities. Several models can vote together (an ensemble).")
selected = choose_runs()
if not selected:
    st.stop()
source = st.radio("Images", ["Upload your own", "Test images"], horizontal=True,
                  key="predict_source", help="Your own photos, or random images from the test set "
                  "of the (first) chosen run, whose right answers are known.")
classes = load_predictions(selected[0]).class_names
if source == "Upload your own":
    st.caption(outside_classes_note(len(classes)))
pictures = uploaded_pictures() if source == "Upload your own" else sample_test_pictures(selected[0])
if not pictures:
    if source == "Upload your own":
        st.caption("Tip: a photo where the object fills most of the frame works best — the "
                   "model was trained on small, centred pictures.")
    st.stop()
probabilities = classify(selected, pictures)
if probabilities is None:
    st.stop()
if probabilities.shape[1] != len(classes):
    st.error(f"The model answers with {probabilities.shape[1]} classes but its run lists "
             f"{len(classes)} class names: its files do not belong together.")
    st.stop()
if len(selected) > 1:
    st.caption(f"Ensemble of {len(selected)} models: their probabilities are averaged.")
cam_settings = gradcam_settings(selected)
mirrored = mirror_note(selected)
for number, (picture, row) in enumerate(zip(pictures, probabilities, strict=True)):
    st.divider()
    show(picture, row, classes, key=f"predict_bars_{number}", cam=cam_settings, note=mirrored)
