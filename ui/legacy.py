"""Keep every page inside app.py's st.navigation, also on a fresh server's first request.

Streamlit (checked on 1.67) treats an app whose folder has `pages/` as a legacy multipage app
until some session reaches `st.navigation`: the first session of the process sets the class flag
`PagesManager.uses_pages_directory`, and while it is set the script runner runs the requested page
file alone (`script_runner._mpa_v1`), with the raw file list as the menu and without app.py's
frame. A deep link such as /train as the server's first request lands there. The page calls
`enter_app()` first; it clears the flag (as `st.navigation` itself does) and reruns, so app.py runs
and its navigation opens the same page: page hashes come from the URL path in both modes.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

# The private class attribute this guard reads and clears; Streamlit's own st.navigation,
# st.switch_page and script runner use the same name (streamlit/runtime/pages_manager.py).
LEGACY_FLAG = "uses_pages_directory"


def running_alone() -> bool:
    """Whether Streamlit ran this page file in legacy pages/ mode, outside app.py's navigation.

    False when the attribute is gone (a Streamlit without the legacy mode) and under AppTest on a
    page file, whose folder has no pages/ of its own.
    """
    return bool(getattr(PagesManager, LEGACY_FLAG, False))


def enter_app() -> None:
    """Rerun through app.py when this page runs alone; nothing otherwise. Call it first.

    The rerun keeps the requested page and the query string, so a deep link opens that page
    inside the app's frame, not Home. Clearing the flag first makes the rerun happen once.
    """
    if running_alone():
        setattr(PagesManager, LEGACY_FLAG, False)
        st.rerun()
