"""Streamlit's clean-up after every script run, without its full garbage collection.

After each run of each session (a fragment's 2 s update included) Streamlit calls
keras.backend.clear_session() once Keras is imported in the server (by Predict, Errors or
Train's model size), and that runs gc.collect() over a heap holding TensorFlow: about 0.23 s
of CPU per run on the class server, more than the Train page itself, taken from the training
runs. The reset Streamlit wants (Keras' global names, pyplot figures) stays; only the
collection goes, which Python's own collector does in small steps anyway.
"""

from __future__ import annotations

import sys
from typing import Any

from streamlit.runtime.scriptrunner import script_runner


def clean() -> None:
    """What Streamlit's _clean_problem_modules does, with clear_session(free_memory=False)."""
    keras: Any = sys.modules.get("keras")
    if keras is not None:
        keras.backend.clear_session(free_memory=False)
    pyplot: Any = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


def install() -> None:
    """Use clean() after every script run in this server process (idempotent). Where a
    Streamlit release renames the hook nothing changes (tests/unit/test_script_cleanup.py
    says so)."""
    if hasattr(script_runner, "_clean_problem_modules"):
        script_runner._clean_problem_modules = clean
