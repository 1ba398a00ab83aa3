"""Links between pages, and the run picker that carries the chosen run from page to page."""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from cifarkit import runs
from ui.format import run_label
from ui.owners import picker_labels, visible
from ui.state import SELECTED_RUN


def nav_link(page: str, label: str, icon: str | None = None) -> None:
    """st.page_link, or a plain hint when the page runs on its own (no st.navigation around it)."""
    try:
        st.page_link(page, label=label, icon=icon)
    except StreamlitPageNotFoundError:
        st.markdown(f"{icon or '→'} **{label}** (in the menu)")


def pick_run(label: str, key: str, with_predictions: bool = True,
             help: str | None = None) -> runs.Run | None:
    """A selectbox of runs (newest first); an info box and None when there are none."""
    candidates = [run for run in visible(runs.list_runs())  # the person's, or shared
                  if run.has_predictions or not with_predictions]
    if not candidates:
        st.info("No finished runs yet. Train one on the **Train** page first.")
        return None
    chosen = st.session_state.get(SELECTED_RUN)
    ids = [run.run_id for run in candidates]
    index = ids.index(chosen) if chosen in ids else 0
    labels = picker_labels(candidates, run_label)  # with the owner of someone else's run
    run = st.selectbox(label, candidates, index=index, format_func=lambda run: labels[run.run_id],
                       key=key, help=help)
    st.session_state[SELECTED_RUN] = run.run_id
    return run
