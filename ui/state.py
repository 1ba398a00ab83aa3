"""Session keys that more than one page reads or writes, each named once, and their readers."""

from __future__ import annotations

import streamlit as st

from cifarkit.config import AugmentConfig, DataConfig
from cifarkit.sources import recommended_augment

DATA_CONFIG = "data_config"  # DataConfig chosen on the Data page
AUGMENT_CONFIG = "augment_config"  # AugmentConfig chosen on the Data page
DATA_SOURCE = "data_source"  # the Data page's source picker (re-read from DATA_CONFIG if absent)
SELECTED_RUN = "selected_run"  # run id the Runs, Errors, Predict and Train pages focus on
TRAIN_RUN = "train_run"  # run launched from Train or Tune
TRAIN_GOTO_LIVE = "train_goto_live"  # open the Train page on its live tab once
UPLOAD_OWNER = "upload_owner"  # whose uploads this browser session may read
UPLOAD_PATHS = "upload_paths"  # Streamlit file id -> saved path


def current_data_config() -> DataConfig:
    """The dataset chosen on the Data page (digits until the user picks another)."""
    return st.session_state.get(DATA_CONFIG) or DataConfig()


def current_augment_config() -> AugmentConfig:
    """The augmentation chosen on the Data page, else the recommendation for the dataset."""
    return (st.session_state.get(AUGMENT_CONFIG)
            or recommended_augment(current_data_config().source))


def use_digits() -> None:
    """Button callback: switch the app to the embedded offline dataset."""
    st.session_state[DATA_CONFIG] = DataConfig(source="digits")
    st.session_state.pop(AUGMENT_CONFIG, None)
    st.session_state.pop(DATA_SOURCE, None)  # the Data page re-reads DATA_CONFIG


def focus_run(run_id: str) -> None:
    """A run just launched (from Train or Tune): every page picks it, Train opens live."""
    st.session_state[TRAIN_RUN] = run_id
    st.session_state[SELECTED_RUN] = run_id
    st.session_state[TRAIN_GOTO_LIVE] = True
