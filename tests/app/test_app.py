"""app.py: the router opens on Home and every page in the menu renders inside it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import REPO_ROOT, STATUSES, assert_clean, open_page, page_path

APP = page_path("app.py")
PAGES = {"pages/data.py": "Data", "pages/train.py": "Train", "pages/tune.py": "Tune"}


def open_app() -> AppTest:
    return open_page(APP, 120)


def test_app_opens_on_home_with_working_page_links() -> None:
    at = open_app()
    assert at.title[0].value == "cifarkit"
    links = {link.proto.page for link in at.get("page_link")}
    # Inside st.navigation the links resolve to real pages (url paths), not fallback hints.
    assert {"data", "train", "runs", "errors", "predict"} <= links
    assert not any("(in the menu)" in item.value for item in at.markdown)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_menu_pages_render_inside_the_app(page: str) -> None:
    at = open_app()
    at.switch_page(page)
    at.run()
    assert_clean(at)
    assert at.title[0].value == PAGES[page]


def test_pages_and_app_never_import_keras_or_tensorflow() -> None:
    """Pages hold widgets; anything touching a model lives in cifarkit (and its processes)."""
    scripts = [REPO_ROOT / "app.py", *sorted((REPO_ROOT / "pages").glob("*.py"))]
    for script in scripts:
        tree = ast.parse(Path(script).read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import) for alias in node.names}
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)}
        assert not imported & {"keras", "tensorflow"}, script


def test_my_pages_render_with_runs_of_every_status(run_factory) -> None:
    for status in STATUSES:
        run_factory(status)
    at = open_app()
    assert len(at.dataframe[0].value) == len(STATUSES)  # Home's recent runs
    for page, title in PAGES.items():
        at.switch_page(page)
        at.run()
        assert_clean(at)
        assert at.title[0].value == title
