"""ui.legacy.enter_app: a page that Streamlit ran alone in legacy pages/ mode reruns inside app.py.

AppTest resets Streamlit's legacy flag on every run and sets it again from the script's folder, so
an AppTest of an entry script beside a pages/ folder starts each run the way a fresh server's
first request does; an AppTest of a page file itself never does (its folder has no pages/).
"""

from __future__ import annotations

import ast
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

from tests.app.conftest import REPO_ROOT, assert_clean, open_page, page_path
from ui import legacy

ROUTER = """
import streamlit as st
st.session_state["router_runs"] = st.session_state.get("router_runs", 0) + 1
st.navigation([st.Page("pages/first.py", default=True), st.Page("pages/second.py")]).run()
"""
PAGE = """
import streamlit as st
from ui.legacy import enter_app
enter_app()
st.session_state["{name}_runs"] = st.session_state.get("{name}_runs", 0) + 1
st.title("{name}")
"""


def make_app(folder: Path) -> Path:
    """An entry script with st.navigation over two guarded pages in its pages/ folder."""
    (folder / "pages").mkdir()
    for name in ("first", "second"):
        (folder / "pages" / f"{name}.py").write_text(PAGE.format(name=name))
    (folder / "app.py").write_text(ROUTER)
    return folder / "app.py"


def test_streamlit_still_has_the_legacy_mode_the_guard_undoes() -> None:
    """If this fails, Streamlit changed its legacy pages/ mode: re-check ui/legacy.py."""
    assert hasattr(PagesManager, legacy.LEGACY_FLAG)
    assert callable(script_runner._mpa_v1)


def test_page_opened_alone_reruns_once_through_the_router(tmp_path: Path) -> None:
    at = AppTest.from_file(str(make_app(tmp_path))).run()
    at.switch_page("pages/second.py")
    at.run()  # starts in legacy mode: Streamlit runs pages/second.py without the router
    assert_clean(at)
    assert at.title[0].value == "second"
    assert PagesManager.uses_pages_directory is False
    # The router ran for both runs; the page body ran once, after the rerun, inside it.
    assert (at.session_state["router_runs"], at.session_state["second_runs"]) == (2, 1)


def test_page_file_run_directly_runs_once(tmp_path: Path) -> None:
    make_app(tmp_path)
    at = AppTest.from_file(str(tmp_path / "pages" / "first.py")).run()
    assert_clean(at)
    assert at.title[0].value == "first"
    assert at.session_state["first_runs"] == 1
    assert "router_runs" not in at.session_state


def test_real_page_opened_from_the_app_runs_inside_it() -> None:
    at = open_page(page_path("app.py"), 120)  # as someone: app.py asks for a name first
    at.switch_page("pages/runs.py")
    at.run()
    assert_clean(at)
    assert at.title[0].value == "Runs"
    assert PagesManager.uses_pages_directory is False  # app.py's st.navigation ran


def test_every_page_calls_enter_app_before_anything_else() -> None:
    """Any file in pages/ can be a legacy-mode page, so each one starts with the guard."""
    for script in sorted((REPO_ROOT / "pages").glob("*.py")):
        body = [node for node in ast.parse(script.read_text()).body
                if not isinstance(node, (ast.Import, ast.ImportFrom))
                and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
        first = ast.unparse(body[0]) if body else ""
        assert first == "enter_app()", f"{script.name} starts with {first!r}"
