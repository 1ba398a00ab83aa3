"""This browser session's uploaded files, saved where the worker processes can read them."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import streamlit as st

from cifarkit import uploads
from ui.identity import known_person
from ui.state import UPLOAD_OWNER, UPLOAD_PATHS

if TYPE_CHECKING:
    from pathlib import Path

    from streamlit.runtime.uploaded_file_manager import UploadedFile


def upload_owner() -> str:
    """Whose uploads this browser session may read: the person's key, so a reload or another tab
    of the same person still reads them; a random key for this session alone while no one is
    known (a page run on its own, outside app.py)."""
    person = known_person()
    if person is not None:
        st.session_state[UPLOAD_OWNER] = person.key
        return person.key
    return st.session_state.setdefault(UPLOAD_OWNER, secrets.token_hex(8))


def store_upload(upload: UploadedFile) -> Path:
    """Save an upload in this session's own folder (uploads.save), where workers can read it;
    once per upload, since pages rerun on every click and hashing a big file takes a while."""
    saved = st.session_state.setdefault(UPLOAD_PATHS, {})
    if upload.file_id not in saved or not saved[upload.file_id].is_file():
        saved[upload.file_id] = uploads.save(upload.getbuffer(), upload.name, upload_owner())
    return saved[upload.file_id]


def readable(text: str) -> Path | None:
    """A typed or linked path if this session may read it (uploads.readable_path); else None,
    with the refusal shown (which folders it may read)."""
    try:
        return uploads.readable_path(text, upload_owner())
    except uploads.PathRefused as error:
        st.error(str(error), icon=":material/block:")
        return None
