"""The Runs page's import section: a model file from elsewhere becomes a run.

Moved out of pages/runs.py so the page stays thin; loading, the input convention and the
scoring live in cifarkit.modelfiles (imported on click: it loads TensorFlow). The scoring runs
in this process with a real progress bar rather than in a job worker: an import is one pass
over a test set (seconds for the models students bring, minutes at worst), and the user waits
for its answer (the convention comparison) before doing anything with the run.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from cifarkit import conventions
from cifarkit.config import PATH_SOURCES, DataConfig
from cifarkit.dataready import archive_missing
from cifarkit.labels import parse_names
from cifarkit.sources import describe_data, source_title
from ui.identity import current_person
from ui.nav import nav_link
from ui.state import current_data_config

TYPED = "typed"  # import choice: the user types the class names (or gives a labels.txt)
DATA_PAGE = "data"  # import choice: the image folder chosen on the Data page
# Import choices: key -> (label, the dataset whose test split scores the model and whose
# class names it takes). Typed names are matched to a built-in dataset by modelfiles.
IMPORT_CLASSES: dict[str, tuple[str, DataConfig | None]] = {
    "digits": (f"{source_title('digits')} (built in, 10 classes: 0–9)",
               DataConfig(source="digits")),
    "cifar10": (f"{source_title('cifar10')} (10 classes)", DataConfig(source="cifar10")),
    "cifar100": (f"{source_title('cifar100')} (100 fine classes)", DataConfig(source="cifar100")),
    "cifar100_coarse": (f"{source_title('cifar100')} (20 superclasses)",
                        DataConfig(source="cifar100", label_mode="coarse")),
    TYPED: ("Other: I type the class names or give a labels.txt", None),
}
CONVENTION_LABELS = {conventions.AUTO: f"Find out: try each on {conventions.SAMPLE} test "
                     "images and take the clearly best",
                     **{key: c.label for key, c in conventions.CONVENTIONS.items()},
                     conventions.MEAN_STD: "Per-channel mean and std (I type them)"}
FLASH = "runs_import_flash"


def import_section() -> None:
    """Bring a .keras or .h5 file in as a run: scored on a test set, then usable everywhere."""
    st.caption("A model trained elsewhere (a notebook, a tutorial, Teachable Machine, or this "
               "app) becomes a run like any other: it is scored on test images, then Errors and "
               "Predict can use it.")
    show_import_flash()
    upload = st.file_uploader(
        "Model file (.keras or .h5)", type=["keras", "h5", "hdf5"], key="runs_import_file",
        help="A model saved with model.save('name.keras') or model.save('name.h5') that takes "
        "square RGB images and ends in a softmax. For safety a model that carries its own "
        "Python code (Lambda layers, custom classes) is refused before anything in it runs.")
    choice, data = _classes_choice()
    names = _class_names(choice)
    convention = _convention_choice()
    cap = st.number_input(
        "Test images to score (empty: all)", min_value=100, value=None, step=500,
        key="runs_import_cap", help="A cap for a quick first look at a large model: a "
        "stratified sample of the test images. Leave empty to score them all.")
    name = st.text_input("Run name", key="runs_import_name", max_chars=80,
                         placeholder="the model's own name",
                         help="How the run is listed. Empty: the name stored in the file.")
    if st.button("Import", key="runs_import", type="primary", icon=":material/upload_file:",
                 disabled=upload is None, help="Loads the model, finds its input scale, scores "
                 "it on the test set (with a progress bar) and adds it to the runs."):
        import_upload(upload.getvalue(), names, name.strip(), data, convention=convention,
                      max_images=cap)


def _classes_choice() -> tuple[str, DataConfig | None]:
    """What the outputs mean and which test images score them; the Data page's image folder
    is offered when one is chosen there (a Teachable Machine project's photos, say)."""
    options = dict(IMPORT_CLASSES)
    chosen = current_data_config()
    if chosen.source in PATH_SOURCES and chosen.path:
        options = {DATA_PAGE: (f"The images chosen on the Data page: {describe_data(chosen)}",
                               chosen), **options}
    choice = st.selectbox(
        "Its classes", list(options), format_func=lambda key: options[key][0],
        key="runs_import_classes", help="What each output of the model means. A built-in "
        "dataset or an image folder sets the class names and the test images the model is "
        "scored on.")
    data = options[choice][1]
    if data is not None and data.source not in PATH_SOURCES and archive_missing(data):
        st.caption(f"The {source_title(data.source)} archive is not on this computer yet: "
                   "importing downloads it first (about 170 MB).")
    return choice, data


def _class_names(choice: str) -> list[str] | None:
    """Typed names or a labels.txt, in output order; None: the dataset's own names."""
    if choice not in (TYPED, DATA_PAGE):
        return None
    labels = st.file_uploader(
        "labels.txt (optional)", type=["txt"], key="runs_import_labels",
        help="One class name per line in the order of the model's outputs; Teachable "
        "Machine's '0 cat' lines are read too. It wins over typed names.")
    if labels is not None:
        from cifarkit.modelfiles import read_labels

        return read_labels(labels.getvalue().decode("utf-8", errors="replace"))
    if choice == DATA_PAGE:
        st.caption("Without names the folder's class names are taken in their sorted order.")
        return None
    text = st.text_area(
        "Class names", key="runs_import_names", placeholder="cat\ndog\nhorse",
        help="One per line, or separated by commas, in the order of the model's outputs "
        "(output 0 first). Names of a built-in dataset pick its test images; otherwise the "
        "class count does (10 → CIFAR-10, 20 → CIFAR-100 superclasses, 100 → CIFAR-100).")
    return parse_names(text)


def _convention_choice() -> str | conventions.Convention | None:
    """The input scale the user picks (AUTO by default); None after a bad mean/std, shown."""
    key = st.selectbox(
        "Input scale", conventions.CHOICES, format_func=CONVENTION_LABELS.get,
        key="runs_import_convention", help="What the model was trained on: many notebooks "
        "divide the pixels by 255 before training, outside the model, so fed raw pixels the "
        "model scores far below its worth. The chosen scale becomes part of the imported "
        "model, so Errors, Predict, Grad-CAM, ensembles and exports all use it.")
    if key != conventions.MEAN_STD:
        return key
    mean = st.text_input("Mean (R, G, B in 0…1)", key="runs_import_mean",
                         placeholder="0.4914, 0.4822, 0.4465")
    std = st.text_input("Std (R, G, B in 0…1)", key="runs_import_std",
                        placeholder="0.2470, 0.2435, 0.2616")
    try:
        return conventions.get(key, conventions.parse_numbers(mean),
                               conventions.parse_numbers(std))
    except ValueError as error:
        st.caption(f"Mean and std: {error}")
        return None


def import_upload(data: bytes, names: list[str] | None, name: str,
                  data_config: DataConfig | None,
                  convention: str | conventions.Convention | None = conventions.AUTO,
                  max_images: int | None = None) -> None:
    """modelfiles.import_model with a progress bar; the outcome is shown after a rerun."""
    from cifarkit import modelfiles

    if names is not None and not names:
        st.error("Type the class names first (or give a labels.txt): one per model output.")
        return
    if convention is None:
        st.error("Give the mean and the std as three numbers each, e.g. 0.49, 0.48, 0.45.")
        return
    bar = st.progress(0.0, text="Loading the model and comparing input scales…")

    def show(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Scoring test images: {done:,} of {total:,}")

    try:
        run = modelfiles.import_model(data, names, name, data_config=data_config,
                                      convention=convention, progress=show,
                                      max_images=None if max_images is None else int(max_images),
                                      by=current_person())  # the student's run
    except (ValueError, OSError) as error:  # ModelFileError and DatasetError are ValueErrors
        bar.empty()
        st.error(f"The model was not imported: {error}")
        return
    st.session_state[FLASH] = _outcome(run.name, run.info)
    st.session_state["selected_run"] = run.run_id
    st.rerun()


def _outcome(name: str, info: dict[str, Any]) -> tuple[str, str, str | None]:
    """(success line, input-scale line, a caution about the scale or None)."""
    accuracy = info.get("test_accuracy")
    score = f" Test accuracy: **{accuracy:.1%}**." if isinstance(accuracy, float) else ""
    success = (f"Imported **{name}** ({info.get('test_images', 0):,} test images).{score} "
               "It is now in the table above and on the Errors and Predict pages.")
    comparison = info.get("convention_comparison", {})
    chosen = info.get("input_convention", {})
    scale = (f"Input scale: **{chosen.get('label')}**. Accuracy on {comparison.get('images')} "
             f"test images under each: {comparison.get('text')}.")
    return success, scale, _caution(comparison, chosen.get("key"))


def _caution(comparison: dict[str, Any], chosen: str | None) -> str | None:
    """Why the scale used may be wrong, in words; None when it was clearly the best."""
    short = conventions.SHORT.get
    tied = comparison.get("tied", [])
    if not comparison.get("above_chance"):
        return ("No scale scored clearly above a constant guess: is the model trained, and are "
                "these test images of its classes?")
    if chosen not in tied:
        return (f"The model scored clearly better with {short(comparison.get('best'))}: import "
                "it again with that scale unless you are sure of yours.")
    if len(tied) > 1:
        return (f"{', '.join(short(key, key) for key in tied)} scored about the same on these "
                f"images, and {short(chosen, chosen)} was used: if you know how the model was "
                "trained, import it again choosing its scale.")
    return None


def show_import_flash() -> None:
    """The last import's outcome: its score, the scale used and how the scales compared."""
    outcome = st.session_state.pop(FLASH, None)
    if not outcome:
        return
    success, scale, caution = outcome
    st.success(success, icon=":material/check_circle:")
    if caution is None:
        st.info(scale, icon=":material/tune:")
    else:
        st.warning(f"{scale} {caution}", icon=":material/warning:")
    nav_link("pages/errors.py", "See its errors", icon=":material/error_med:")
    nav_link("pages/predict.py", "Try it on your pictures", icon=":material/image_search:")
