"""An uncaught error, served with the repo's .streamlit/config.toml, shows students no details.

The script raises an error whose message names a server path; the browser must show only the
error's type and Streamlit's generic notice, while the server's log keeps the full message.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import AppServer

pytestmark = pytest.mark.e2e

SECRET = "/srv/class/students/alice/photos.zip"
SCRIPT = f"""
import streamlit as st

st.title("Broken page")
raise FileNotFoundError("cannot open {SECRET}")
"""


@pytest.fixture
def broken_server(tmp_path: Path) -> Iterator[AppServer]:
    """A server for one failing script, started from the repo so it reads the repo's config."""
    script = tmp_path / "broken_page.py"
    script.write_text(SCRIPT)
    server = AppServer(tmp_path, script)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_an_uncaught_error_shows_its_type_but_no_message_or_traceback(
        broken_server: AppServer, browser_tab, tmp_path: Path) -> None:
    browser_tab.goto(broken_server.url)
    browser_tab.get_by_role("heading", name="Broken page").first.wait_for()
    shown = browser_tab.locator("[data-testid='stException']").first.inner_text()
    assert "FileNotFoundError" in shown
    assert "This app has encountered an error" in shown
    for detail in (SECRET, "cannot open", "Traceback", "broken_page.py", str(tmp_path)):
        assert detail not in shown, detail
    broken_server.stop()
    assert f"cannot open {SECRET}" in (tmp_path / "streamlit.log").read_text()
