"""The Runs page's import section: a model file from elsewhere becomes a run.

Moved out of pages/runs.py so the page stays thin; the scoring itself lives in
cifarkit.modelfiles.
"""

from __future__ import annotations

import streamlit as st

from cifarkit.config import DataConfig
from cifarkit.dataready import archive_missing
from cifarkit.labels import parse_names
from cifarkit.sources import source_title
from ui.nav import nav_link

TYPED = "typed"  # import choice: the user types the class names
# Import choices: key -> (label, the dataset whose test split scores the model and whose
# class names it takes). Typed names are matched to a built-in dataset by modelfiles.
IMPORT_CLASSES: dict[str, tuple[str, DataConfig | None]] = {
    "digits": (f"{source_title('digits')} (built in, 10 classes: 0–9)",
               DataConfig(source="digits")),
    "cifar10": (f"{source_title('cifar10')} (10 classes)", DataConfig(source="cifar10")),
    "cifar100": (f"{source_title('cifar100')} (100 fine classes)", DataConfig(source="cifar100")),
    "cifar100_coarse": (f"{source_title('cifar100')} (20 superclasses)",
                        DataConfig(source="cifar100", label_mode="coarse")),
    TYPED: ("Other: I type the class names", None),
}


def import_section() -> None:
    """Bring a .keras file in as a run: scored on a test set, then usable everywhere."""
    st.caption("A model trained elsewhere (or downloaded from this app) becomes a run like any "
               "other: it is scored on the test images of its dataset, then Errors and Predict "
               "can use it.")
    show_import_flash()
    upload = st.file_uploader(
        "Model file (.keras)", type=["keras"], key="runs_import_file",
        help="A model saved with model.save('name.keras') that takes square RGB images and ends "
        "in a softmax. For safety it is loaded in Keras' safe mode: a model that carries its "
        "own Python code (Lambda layers) is refused.")
    choice = st.selectbox(
        "Its classes", list(IMPORT_CLASSES), format_func=lambda key: IMPORT_CLASSES[key][0],
        key="runs_import_classes", help="What each output of the model means. A built-in "
        "dataset sets the class names and the test images the model is scored on.")
    names = None
    if choice == TYPED:
        text = st.text_area(
            "Class names", key="runs_import_names", placeholder="cat\ndog\nhorse",
            help="One per line, or separated by commas, in the order of the model's outputs "
            "(output 0 first). Names of a built-in dataset pick its test images; otherwise the "
            "class count does (10 → CIFAR-10, 20 → CIFAR-100 superclasses, 100 → CIFAR-100).")
        names = parse_names(text)
    else:
        data = IMPORT_CLASSES[choice][1]
        if data is not None and archive_missing(data):
            st.caption(f"The {source_title(data.source)} archive is not on this "
                       "computer yet: importing downloads it first (about 170 MB).")
    name = st.text_input("Run name", key="runs_import_name", max_chars=80,
                         placeholder="the model's own name",
                         help="How the run is listed. Empty: the name stored in the file.")
    if st.button("Import", key="runs_import", type="primary", icon=":material/upload_file:",
                 disabled=upload is None, help="Loads the model, scores it on the test set "
                 "(this can take a while for a large model) and adds it to the runs."):
        import_upload(upload.getvalue(), names, name.strip(), IMPORT_CLASSES[choice][1])


def import_upload(data: bytes, names: list[str] | None, name: str,
                  data_config: DataConfig | None) -> None:
    """modelfiles.import_model with a spinner; the outcome is shown after a rerun."""
    from cifarkit import modelfiles

    if names is not None and not names:
        st.error("Type the class names first: one per model output.")
        return
    try:
        with st.spinner("Loading the model and scoring it on the test images…"):
            run = modelfiles.import_model(data, names, name, data_config=data_config)
    except (ValueError, OSError) as error:  # ModelFileError and DatasetError are ValueErrors
        st.error(f"The model was not imported: {error}")
        return
    accuracy = run.info.get("test_accuracy")
    score = f" Test accuracy: **{accuracy:.1%}**." if isinstance(accuracy, float) else ""
    st.session_state["runs_import_flash"] = (
        f"Imported **{run.name}** ({run.info.get('test_images', 0):,} test images).{score} "
        "It is now in the table above and on the Errors and Predict pages.")
    st.session_state["selected_run"] = run.run_id
    st.rerun()


def show_import_flash() -> None:
    message = st.session_state.pop("runs_import_flash", None)
    if message:
        st.success(message, icon=":material/check_circle:")
        nav_link("pages/errors.py", "See its errors", icon=":material/error_med:")
        nav_link("pages/predict.py", "Try it on your pictures",
                        icon=":material/image_search:")
