"""Home: what the app does, which data is ready, what hardware trains, and the latest runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from cifarkit import compare, datasets, runs, system
from cifarkit.config import DataConfig
from cifarkit.dataready import where_to_put
from cifarkit.sources import describe_data
from ui.data import download_button
from ui.format import status_column
from ui.identity import current_person
from ui.legacy import enter_app
from ui.nav import nav_link
from ui.owners import is_own, owner_label, visible
from ui.state import current_data_config, use_digits

enter_app()  # first: if Streamlit ran this file alone, rerun it inside app.py

RECENT_RUNS = 8  # rows in the recent-runs table
# Sources that are the user's own files: nothing is there until they are picked on Data.
YOUR_OWN = {"folder": "upload a .zip on Data", "tfrecord": "choose its folder on Data"}

STEPS = (
    ("pages/data.py", "1 · Data", ":material/photo_library:",
     "Pick CIFAR-10, CIFAR-100 or your own images; look at samples and augmentation."),
    ("pages/train.py", "2 · Train", ":material/model_training:",
     "Choose a network, set the training knobs and watch the curves live."),
    ("pages/runs.py", "3 · Runs", ":material/monitoring:",
     "Compare finished runs: accuracy, speed and model size."),
    ("pages/errors.py", "4 · Errors", ":material/error_med:",
     "See which classes a model confuses, and the images it gets wrong."),
    ("pages/predict.py", "5 · Predict", ":material/image_search:",
     "Upload any photo and see what a trained model thinks it is."),
)


@st.cache_resource(show_spinner="Looking for a GPU…")
def device() -> dict[str, Any]:
    """Cached for the server's lifetime: hardware does not change while the app runs."""
    return system.device_summary()


def show_steps() -> None:
    for column, (page, label, icon, text) in zip(st.columns(len(STEPS)), STEPS, strict=True):
        with column.container(border=True, height="stretch"):
            nav_link(page, label, icon)
            st.caption(text)


def dataset_state(info: datasets.DatasetInfo, spec: DataConfig) -> str:
    """The badge beside a dataset: only what is true now. A user's own images are "ready" only
    once this session has picked a folder or zip of them on Data."""
    if info.key in YOUR_OWN:
        if spec.source == info.key and spec.path:
            return ":green-badge[:material/check: in use]"
        return f":gray-badge[:material/upload: {YOUR_OWN[info.key]}]"
    if info.available:
        return ":green-badge[:material/check: ready]"
    if info.problem:
        return ":red-badge[:material/error: broken]"
    return ":orange-badge[:material/cloud_download: not downloaded]"


def show_datasets() -> None:
    st.subheader("Datasets", anchor=False)
    spec = current_data_config()
    st.markdown(f"**In use:** {describe_data(spec)}")
    for info in datasets.catalog():
        with st.container(border=True):
            title, state = st.columns([3, 1], vertical_alignment="center")
            title.markdown(f"**{info.title}**" + (f" · {info.num_classes} classes"
                                                   if info.num_classes else ""))
            state.markdown(dataset_state(info, spec))
            st.caption(info.description)
            if info.location and info.key in datasets.ARCHIVE_SOURCES:
                st.caption(f"Found at `{info.location}`")
            if info.problem:
                st.caption(f"Cannot be used: it {info.problem}. Delete or replace that file.")
            elif not info.available and info.key in datasets.ARCHIVE_SOURCES:
                st.caption(f"No internet? {where_to_put(info.key)}")
                if download_button(info.key, key=f"home_download_{info.key}"):
                    st.rerun()
    if spec.source != "digits":
        st.button("Switch back to the built-in digits", key="home_use_digits",
                  on_click=use_digits, icon=":material/apps:",
                  help="Digits need no download: the quickest way to try everything out.")


def show_device() -> None:
    st.subheader("Computer", anchor=False)
    summary = device()
    with st.container(border=True):
        if summary["gpus"]:
            st.markdown(f":material/memory: **GPU:** {', '.join(summary['gpus'])}")
        else:
            st.markdown(":material/memory: **CPU only** (no GPU found): small models and "
                        "a few epochs train in minutes; large transfer models are slow.")
        st.caption(f"{summary['cpu_count']} CPU cores · TensorFlow {summary['tensorflow']} · "
                   f"Keras {summary['keras']} ({summary['backend']} backend)")


def _started(run: runs.Run) -> str:
    stamp = run.info.get("started") or run.info.get("created")
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M") if stamp else "–"


def _epochs(run: runs.Run) -> str:
    """"3 / 10" epochs done; an imported model file was never trained here."""
    if compare.is_imported(run):
        return "imported"
    return f"{run.info.get('epochs_run', 0)} / {run.config.training.epochs}"


def show_recent_runs() -> None:
    st.subheader("Recent runs", anchor=False)
    recent = visible(runs.list_runs())[:RECENT_RUNS]
    if not recent:
        st.info("No runs yet. Pick data on the **Data** page, then start one on **Train**.",
                icon=":material/rocket_launch:")
        return
    table = pd.DataFrame([{
        "run": run.name,
        "model": compare.model_label(run),
        "status": [run.status],
        "epochs": _epochs(run),
        "test accuracy": run.info.get("test_accuracy"),
        "started": _started(run),
        "owner": owner_label(run),
    } for run in recent])
    if all(is_own(run) for run in recent):
        table = table.drop(columns="owner")  # only the person's own: no one else to name
    st.dataframe(table, hide_index=True, key="home_recent_runs", column_config={
        "status": status_column(),
        "test accuracy": st.column_config.ProgressColumn(format="percent", min_value=0.0,
                                                         max_value=1.0)})
    nav_link("pages/runs.py", "All runs", ":material/monitoring:")


st.title("cifarkit", anchor=False)
current_person()  # a name (or a sign-in) first: recent runs are that person's
st.markdown("Explore the **CIFAR** image datasets, train **Keras** image classifiers on them "
            "(from scratch or by transfer learning), and find out where they go wrong. Training "
            "runs in the background: you can close this tab and come back.")
show_steps()
st.write("")
left, right = st.columns([3, 2], gap="large")
with left:
    show_datasets()
device_box = right.container()  # filled last: the first look for a GPU imports TensorFlow
show_recent_runs()
with device_box:
    show_device()
