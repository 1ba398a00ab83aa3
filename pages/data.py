"""Data: choose the dataset, look at its images and class balance, preview augmentation.

The choice is kept in the session (ui.state.choose_data) and in the URL's query, so a reload or a
new tab shows the same data; the augmentation in st.session_state[AUGMENT_CONFIG]. The Train page
starts from both.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import streamlit as st

from cifarkit import charts, datasets
from cifarkit.config import AugmentConfig, ConfigError, DataConfig, RunConfig
from cifarkit.dataready import archive_missing, where_to_put
from cifarkit.labels import builtin_label_names, class_number, display_name
from cifarkit.sources import CHOICES, recommended_augment, source_choice, source_title
from ui.augment import augment_controls, forget_widgets
from ui.data import download_button, load_dataset
from ui.images import enlarge
from ui.legacy import enter_app
from ui.nav import nav_link
from ui.state import (
    AUGMENT_CONFIG,
    DATA_SOURCE,
    choose_data,
    current_augment_config,
    current_data_config,
    use_digits,
)
from ui.uploads import readable, store_upload

enter_app()  # first: if Streamlit ran this file alone, rerun it inside app.py

GRID_COLUMNS = 8  # sample grid: images per row
GRID_ROWS = 3
PREVIEW_IMAGES = 4  # augmentation preview: images (rows) ...
PREVIEW_VARIANTS = 4  # ... and random variants of each (columns)
SUBSETS = {"all": "All classes", "names": "Pick classes by name", "count": "First N classes"}
ALL = "All classes"


# --- choosing the dataset


def _start_from(spec: DataConfig) -> None:
    """Widgets start from the stored choice (Streamlit forgets widget values on other pages)."""
    names = builtin_label_names(spec.source, spec.label_mode) or ()
    subset = "names" if spec.classes else "count" if spec.num_classes else "all"
    defaults = {
        DATA_SOURCE: spec.source, "data_label_mode": spec.label_mode, "data_subset": subset,
        "data_classes": list(spec.classes) or list(names[:5]),
        "data_num_classes": spec.num_classes or min(10, len(names) or 10),
        "data_path": spec.path or "", "data_image_size": spec.image_size,
        "data_max_train": spec.max_train_images or 0, "data_max_test": spec.max_test_images or 0,
        "data_validation": spec.validation_split,
    }
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


def choose_source() -> tuple[str, str]:
    source = st.selectbox(
        "Dataset", CHOICES, format_func=source_choice, key=DATA_SOURCE,
        help="CIFAR-10: 10 everyday classes (planes, cats, ships…). CIFAR-100: 100 finer "
        "classes grouped into 20 superclasses. Digits: small handwritten digits that ship with "
        "the app, for trying things out offline. Or bring your own photos.")
    label_mode = "fine"
    if source == "cifar100":
        label_mode = st.radio(
            "Labels", ["fine", "coarse"], key="data_label_mode", horizontal=True,
            format_func={"fine": "100 fine classes", "coarse": "20 superclasses"}.get,
            help="Each CIFAR-100 image has two labels: a fine class (e.g. 'maple_tree') and "
            "its superclass (e.g. 'trees'). Superclasses are an easier task: 20 choices.")
    return source, label_mode


def choose_folder() -> str | None:
    """An uploaded .zip (saved where training workers can read it) or a folder on this computer."""
    upload = st.file_uploader(
        "Upload a .zip of images", type=["zip"], key="data_upload",
        help="One sub-folder per class, named after the class (cats/, dogs/ …), optionally "
        "inside train/ and test/. Any image format and size; images are cropped square and "
        "resized.")
    if upload is not None and st.session_state.get("data_upload_saved") != upload.file_id:
        st.session_state["data_upload_saved"] = upload.file_id  # a new upload wins
        st.session_state["data_path"] = str(store_upload(upload))
    st.text_input("…or the path of a folder or .zip on this computer", key="data_path",
                  help="Handy for big folders: nothing is copied, training reads it in place. "
                  "Only folders the app may read: your uploads, and those the teacher set up.")
    st.slider("Image size (pixels)", 16, 128, step=8, key="data_image_size",
              help="Your images are resized to this square size. CIFAR uses 32; bigger shows "
              "more detail but trains slower.")
    return st.session_state["data_path"].strip() or None


def choose_tfrecord() -> str | None:
    """The path of a folder that `python -m cifarkit datasets export` wrote (no upload: its
    shards are big, and the worker reads them in place)."""
    st.text_input("Path of the TFRecord folder on this computer", key="data_path",
                  help="A folder holding manifest.json and .tfrecord shards, written by "
                  "`python -m cifarkit datasets export --format tfrecord`. Only folders the app "
                  "may read: your uploads, and those the teacher set up.")
    return st.session_state["data_path"].strip() or None


PATH_CHOOSERS = {"folder": choose_folder, "tfrecord": choose_tfrecord}  # sources read from a path
NEEDS_PATH = {"folder": "Upload a .zip of class folders, or type the path of a folder, to "
              "continue.",
              "tfrecord": "Type the path of a folder written by `python -m cifarkit datasets "
              "export --format tfrecord`, to continue."}


def choose_classes(source: str, label_mode: str) -> tuple[tuple[str, ...], int | None]:
    names = builtin_label_names(source, label_mode)
    if names is None:  # a folder: its classes are whatever sub-folders it has
        return (), None
    subset = st.radio("Classes", list(SUBSETS), format_func=SUBSETS.get, key="data_subset",
                      help="Fewer classes train faster and make the confusion matrix readable: "
                      "a good start for a lesson.")
    if subset == "names":
        kept = [name for name in st.session_state["data_classes"] if name in names]
        st.session_state["data_classes"] = kept or list(names[:5])
        chosen = st.multiselect("Which classes", names, key="data_classes",
                                format_func=display_name,
                                help="Type to search. The model learns only these classes, in "
                                "this order.")
        return tuple(chosen), None
    if subset == "count":
        st.session_state["data_num_classes"] = min(st.session_state["data_num_classes"],
                                                   len(names))
        count = st.slider("Number of classes", 2, len(names), key="data_num_classes",
                          help="Keeps the first N classes in the dataset's own order.")
        return (), count
    return (), None


def choose_limits() -> tuple[int | None, int | None, float]:
    max_train = st.number_input(
        "Max training images (0 = all)", 0, 100_000, step=500, key="data_max_train",
        help="A cap for quick experiments: the same balanced sample every time. A lesson demo "
        "with 2,000 images trains in about a minute on a laptop.")
    max_test = st.number_input(
        "Max test images (0 = all)", 0, 20_000, step=500, key="data_max_test",
        help="Test images are never trained on: they measure how well the model generalises.")
    validation = st.slider(
        "Validation share", 0.05, 0.5, step=0.05, key="data_validation",
        help="This share of the training images is held back each epoch to check progress on "
        "images the model has not learnt from (the dashed curves on the Train page).")
    return int(max_train) or None, int(max_test) or None, float(validation)


def choose_dataset() -> DataConfig:
    """The dataset widgets, returned as a validated DataConfig (or the page stops)."""
    _start_from(current_data_config())
    left, middle, right = st.columns([1, 1.6, 1], gap="large")
    with left:
        source, label_mode = choose_source()
        path = PATH_CHOOSERS[source]() if source in PATH_CHOOSERS else None
    with middle:
        classes, count = choose_classes(source, label_mode)
    with right:
        max_train, max_test, validation = choose_limits()
    if source in PATH_CHOOSERS and not path:
        st.info(NEEDS_PATH[source], icon=":material/upload:")
        st.stop()
    if path:
        checked = readable(path)  # only folders this session may read; else the page stops
        if checked is None:
            st.stop()
        path = str(checked)
    spec = DataConfig(source=source, label_mode=label_mode, classes=classes, num_classes=count,
                      path=path, image_size=st.session_state["data_image_size"]
                      if source == "folder" else 32, validation_split=validation,
                      max_train_images=max_train, max_test_images=max_test)
    try:
        RunConfig(data=spec).validate()
    except ConfigError as error:
        st.error(f"**{error.field}**: {error.reason}", icon=":material/error:")
        st.stop()
    return spec


def require_archive(spec: DataConfig) -> None:
    """CIFAR not on disk: say how to get it, offer digits instead, and stop the page."""
    if not archive_missing(spec):
        return
    title = source_title(spec.source)
    st.info(f"**{title} is not on this computer yet.** Download it once (needs internet), or "
            f"without internet: {where_to_put(spec.source)}", icon=":material/cloud_download:")
    if download_button(spec.source, key=f"data_download_{spec.source}", offer_digits=False):
        st.rerun()
    st.button("Use the built-in digits dataset instead", key="data_use_digits",
              on_click=use_digits, icon=":material/apps:")
    st.stop()


def load(spec: DataConfig) -> datasets.Dataset:
    try:
        return load_dataset(spec)
    except datasets.DatasetError as error:
        st.error(str(error), icon=":material/error:")
        st.stop()


# --- looking at it


def label_of(dataset: datasets.Dataset, label: int) -> str:
    """A class name, with its CIFAR-100 superclass when the dataset has fine labels."""
    name = display_name(dataset.class_names[label])  # lets long captions wrap at spaces
    if dataset.coarse_names is not None and dataset.fine_to_coarse is not None:
        coarse = display_name(dataset.coarse_names[dataset.fine_to_coarse[label]])
        return f"{name} ({coarse})"
    return name


def sample_indices(labels: np.ndarray, label: int | None, count: int, seed: int) -> np.ndarray:
    """A repeatable random pick of images, from one class or from all."""
    candidates = np.arange(len(labels)) if label is None else np.flatnonzero(labels == label)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(candidates, size=min(count, len(candidates)), replace=False))


def split_arrays(dataset: datasets.Dataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    return (dataset.x_train, dataset.y_train) if split == "train" else (dataset.x_test,
                                                                        dataset.y_test)


def show_summary(dataset: datasets.Dataset) -> None:
    cells = st.columns(4)
    cells[0].metric("Classes", dataset.num_classes)
    cells[1].metric("Training images", f"{len(dataset.y_train):,}",
                    help="Before the validation share is held back.")
    cells[2].metric("Test images", f"{len(dataset.y_test):,}")
    cells[3].metric("Image size", f"{dataset.x_train.shape[1]}×{dataset.x_train.shape[2]} px")
    if dataset.skipped:
        st.warning(f"{dataset.skipped} file(s) were skipped because they are not readable "
                   "images.", icon=":material/warning:")


def class_filter(dataset: datasets.Dataset, key: str) -> int | None:
    choice = st.selectbox("Class", [ALL, *dataset.class_names], key=key, format_func=display_name,
                          help="Show only the images of one class.")
    return None if choice == ALL else dataset.class_names.index(choice)


def show_samples(dataset: datasets.Dataset) -> None:
    controls = st.columns([1, 2, 1], vertical_alignment="bottom")
    split = controls[0].segmented_control("Split", ["train", "test"], default="train",
                                          key="data_split", required=True,
                                          help="Training images teach the model; test images "
                                          "only grade it.")
    with controls[1]:
        label = class_filter(dataset, "data_filter")
    if controls[2].button("Show other images", key="data_shuffle", icon=":material/shuffle:"):
        st.session_state["data_seed"] = st.session_state.get("data_seed", 0) + 1
    images, labels = split_arrays(dataset, split)
    picked = sample_indices(labels, label, GRID_COLUMNS * GRID_ROWS,
                            st.session_state.get("data_seed", 0))
    if not len(picked):
        st.info("No images of this class in this split.")
        return
    for start in range(0, len(picked), GRID_COLUMNS):
        for column, index in zip(st.columns(GRID_COLUMNS), picked[start:start + GRID_COLUMNS],
                                 strict=False):
            column.image(enlarge(images[index], 128), caption=label_of(dataset, labels[index]),
                         width="stretch")


def show_class_balance(dataset: datasets.Dataset) -> None:
    k = dataset.num_classes
    figure = charts.class_counts(dataset.class_names, np.bincount(dataset.y_train, minlength=k),
                                 np.bincount(dataset.y_test, minlength=k))
    st.plotly_chart(figure, key="data_counts")
    st.caption("A balanced dataset has bars of similar height. When one class has many more "
               "images, a model can score well by guessing it often: check per-class results "
               "on the Errors page.")


def show_one_image(dataset: datasets.Dataset) -> None:
    controls, picture, details = st.columns([1, 2, 2], gap="large")
    with controls:
        split = st.segmented_control("Split", ["train", "test"], default="train",
                                     key="data_one_split", required=True)
        images, labels = split_arrays(dataset, split)
        st.session_state["data_index"] = min(st.session_state.get("data_index", 0),
                                             len(labels) - 1)
        index = st.number_input("Image number", 0, len(labels) - 1, step=1, key="data_index",
                                help=f"0 to {len(labels) - 1:,}: its position in the split.")
    image, label = images[index], int(labels[index])
    picture.image(enlarge(image, 320), caption=f"{split} image #{index}")
    with details:
        st.markdown(f"### {display_name(dataset.class_names[label])}")
        if dataset.coarse_names is not None and dataset.fine_to_coarse is not None:
            coarse = dataset.coarse_names[dataset.fine_to_coarse[label]]
            st.markdown(f"Superclass: **{display_name(coarse)}**")
        st.markdown(f"Class number: **{class_number(label, dataset.num_classes)}**")
        st.markdown(f"Size: **{image.shape[1]}×{image.shape[0]}** pixels, 3 colour channels")
        st.caption("This is all the network sees: a grid of red, green and blue values from 0 to "
                   f"255, {image.size:,} numbers in all.")


@st.cache_data(show_spinner="Augmenting…", max_entries=32)
def augmented(images: np.ndarray, augment_json: str, seed: int) -> np.ndarray:
    """augment.preview, cached per settings: moving a slider back shows the same variants."""
    from cifarkit import augment  # imports Keras: only when this tab is first opened

    config = AugmentConfig(**json.loads(augment_json))
    return augment.preview(images, config, variants=PREVIEW_VARIANTS, seed=seed)


def _reset_augment() -> None:
    forget_widgets("aug_")
    st.session_state[AUGMENT_CONFIG] = recommended_augment(current_data_config().source)


def show_augmentation(dataset: datasets.Dataset) -> None:
    settings_column, preview_column = st.columns([1, 2], gap="large")
    with settings_column:
        st.markdown("**Random changes applied while training**")
        aug = augment_controls("aug_", current_augment_config())
        st.session_state[AUGMENT_CONFIG] = aug
        st.caption(f"Rotation up to ±{aug.rotation * 360:.0f}°. The Train page starts from "
                   "these settings.")
        st.button("Reset to the recommendation", key="aug_reset", on_click=_reset_augment,
                  icon=":material/restart_alt:", help="Mirroring and small shifts for photos; "
                  "small turns and shifts (no mirroring) for digits.")
        if st.button("New random variants", key="aug_shuffle", icon=":material/casino:"):
            st.session_state["aug_seed"] = st.session_state.get("aug_seed", 0) + 1
    picked = sample_indices(dataset.y_train, None, PREVIEW_IMAGES,
                            st.session_state.get("data_seed", 0))
    variants = augmented(dataset.x_train[picked], json.dumps(asdict(aug)),
                         st.session_state.get("aug_seed", 0))
    with preview_column:
        st.markdown("**Original, then what the network might see in four different epochs**")
        for index, row in zip(picked, variants, strict=True):
            pictures = [enlarge(dataset.x_train[index], 112)]
            pictures += [enlarge(variant, 112) for variant in row]
            captions = [label_of(dataset, dataset.y_train[index])]
            captions += [f"variant {number}" for number in range(1, len(row) + 1)]
            st.image(pictures, caption=captions, width=112)


st.title("Data", anchor=False)
st.caption("Choose what to train on and look at it first: a model can only be as good as its "
           "images and labels.")
spec = choose_dataset()
require_archive(spec)
dataset = load(spec)
choose_data(spec)  # for the other pages, and in the URL: a reload or new tab keeps it
st.success(f"**{dataset.name}** selected for training.", icon=":material/check_circle:")
show_summary(dataset)
TABS = {"Samples": show_samples, "Class balance": show_class_balance,
        "One image": show_one_image, "Augmentation": show_augmentation}
for tab, show in zip(st.tabs(list(TABS), key="data_tab", on_change="rerun"), TABS.values(),
                     strict=True):
    with tab:
        if tab.open:  # only the open tab is drawn: each one computes its own charts
            show(dataset)
st.divider()
nav_link("pages/train.py", "Next: train a model on this data", ":material/model_training:")
