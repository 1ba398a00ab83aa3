"""Session keys that more than one page reads or writes, each named once, and their readers."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from cifarkit import datalink
from cifarkit.config import AugmentConfig, ConfigError, DataConfig
from cifarkit.sources import recommended_augment

DATA_CONFIG = "data_config"  # DataConfig chosen on the Data page
AUGMENT_CONFIG = "augment_config"  # AugmentConfig chosen on the Data page
DATA_SOURCE = "data_source"  # the Data page's source picker (re-read from DATA_CONFIG if absent)
SELECTED_RUN = "selected_run"  # run id the Runs, Errors, Predict and Train pages focus on
TRAIN_RUN = "train_run"  # run launched from Train or Tune
TRAIN_GOTO_LIVE = "train_goto_live"  # open the Train page on its live tab once
UPLOAD_OWNER = "upload_owner"  # whose uploads this browser session may read
UPLOAD_PATHS = "upload_paths"  # Streamlit file id -> saved path
PERSON = "person"  # classroom.Person using this session (ui.identity sets and reads it)


def current_data_config() -> DataConfig:
    """The dataset chosen on the Data page, else the one the URL names, else digits.

    The choice is written back into the URL, so a reload or the same link in a new tab (a new
    session) shows the same data.
    """
    if st.session_state.get(DATA_CONFIG) is None:
        st.session_state[DATA_CONFIG] = _data_from_url() or DataConfig()
    spec = st.session_state[DATA_CONFIG]
    _show_in_url(spec)
    return spec


def choose_data(spec: DataConfig) -> None:
    """The Data page's choice: kept for the other pages and in the URL."""
    st.session_state[DATA_CONFIG] = spec
    _show_in_url(spec)


def _data_from_url() -> DataConfig | None:
    """The data the URL names; None (the reason shown) when it names none or cannot be used.
    A folder in the URL is checked like a typed one: only folders this session may read."""
    from ui.uploads import readable  # ui.uploads imports this module's keys

    try:
        spec = datalink.from_query(st.query_params.to_dict())
    except ConfigError as error:
        st.warning(f"The link's data choice cannot be used (**{error.field}**: {error.reason}); "
                   "showing the built-in digits.", icon=":material/link_off:")
        return None
    if spec is None or not spec.path:
        return spec
    path = readable(spec.path)
    return None if path is None else replace(spec, path=str(path))


def _show_in_url(spec: DataConfig) -> None:
    """Put the data choice in the URL's query (other parameters kept), without a rerun."""
    wanted = datalink.to_query(spec)
    shown = {key: st.query_params[key] for key in datalink.FIELDS if key in st.query_params}
    if shown == wanted:
        return
    for key in set(shown) - set(wanted):
        del st.query_params[key]
    st.query_params.update(wanted)


def current_augment_config() -> AugmentConfig:
    """The augmentation chosen on the Data page, else the recommendation for the dataset."""
    return (st.session_state.get(AUGMENT_CONFIG)
            or recommended_augment(current_data_config().source))


def use_digits() -> None:
    """Button callback: switch the app to the embedded offline dataset."""
    choose_data(DataConfig(source="digits"))
    st.session_state.pop(AUGMENT_CONFIG, None)
    st.session_state.pop(DATA_SOURCE, None)  # the Data page re-reads DATA_CONFIG


def focus_run(run_id: str) -> None:
    """A run just launched (from Train or Tune): every page picks it, Train opens live."""
    st.session_state[TRAIN_RUN] = run_id
    st.session_state[SELECTED_RUN] = run_id
    st.session_state[TRAIN_GOTO_LIVE] = True
