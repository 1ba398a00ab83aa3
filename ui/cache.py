"""One cache for everything read from a run's files, keyed by the file's path and version.

A page redraws on every click, and loading a model, its predictions, a Grad-CAM map or an
export takes seconds; keying on the file's version (modification time and size) drops an entry
as soon as a resumed run rewrites its file, or a worker appends to it. Entries are shared by
all sessions (st.cache_resource): models are big, and the cached values are only read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st

T = TypeVar("T")


def by_file(max_entries: int, spinner: str | bool = False
            ) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator: `load(path: str, *args)` becomes `load(path: Path, *args)`, cached per path,
    file version and arguments (at most `max_entries` of them)."""
    def wrap(load: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(load)  # Streamlit names each cache after the wrapped loader
        def versioned(path: str, mtime_ns: int, size: int, *args: Any) -> T:
            return load(path, *args)

        cached = st.cache_resource(show_spinner=spinner, max_entries=max_entries)(versioned)

        @functools.wraps(load)
        def call(path: Path, *args: Any) -> T:
            version = path.stat()
            return cached(str(path), version.st_mtime_ns, version.st_size, *args)

        return call
    return wrap
