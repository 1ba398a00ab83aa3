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


def test_the_tab_icon_is_served_locally_not_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamlit turns a ":material/...:" page_icon into a fonts.gstatic.com URL the browser
    fetches (offline: no icon); an image file is served from this server's /media/."""
    import streamlit
    from PIL import Image
    from streamlit.commands.page_config import _get_favicon_string

    icons: list[object] = []
    urls: list[str] = []
    real = streamlit.set_page_config

    def spy(*args: object, **kwargs: object) -> None:
        icons.append(kwargs["page_icon"])
        urls.append(_get_favicon_string(kwargs["page_icon"]))  # what the browser is sent
        real(*args, **kwargs)

    monkeypatch.setattr(streamlit, "set_page_config", spy)
    open_app()
    assert icons == [REPO_ROOT / "assets" / "favicon.png"]
    assert Image.open(icons[0]).size == (64, 64)
    assert "/media/" in urls[0] and urls[0].endswith(".png")  # AppTest's media root: /mock
    assert not urls[0].startswith(("http", ":"))  # nothing the browser fetches from elsewhere
    assert _get_favicon_string(":material/photo_library:") == ":material/photo_library:"
