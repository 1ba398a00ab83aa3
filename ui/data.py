"""The dataset in use: its line with a link to change it, the download button, cached loading."""

from __future__ import annotations

import json
from dataclasses import asdict

import streamlit as st

from cifarkit import datasets
from cifarkit.config import DataConfig, RunConfig
from cifarkit.dataready import archive_missing, where_to_put
from cifarkit.sources import describe_data, source_title
from ui.nav import nav_link
from ui.state import use_digits


@st.cache_data(show_spinner="Loading images…", max_entries=4)
def _load_dataset(spec_json: str) -> datasets.Dataset:
    return datasets.load(RunConfig.from_dict({"data": json.loads(spec_json)}).data)


def load_dataset(spec: DataConfig) -> datasets.Dataset:
    """datasets.load, cached per DataConfig: parsing a CIFAR archive takes seconds."""
    return _load_dataset(json.dumps(asdict(spec), sort_keys=True))


def download_button(source: str, key: str, offer_digits: bool = True) -> bool:
    """A download button with a progress bar; True once the archive is on disk.

    A failed download (offline) leaves its message, which says where to put the archive by hand,
    and (with offer_digits) a button that switches to the built-in digits instead.
    """
    title = source_title(source)
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
