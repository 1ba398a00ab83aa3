"""A freshly started server's very first request opens the asked page inside the app's frame.

Streamlit decides legacy pages/ mode on the process's first session (ui/legacy.py), and AppTest
resets that decision on every run, so only a new server process and a real browser show it: the
first request is a deep link, and the menu must be app.py's navigation (sections, titles, the asked
page current), never the raw file list of pages/ (app, common, data, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import ARTIFACTS, AppServer

pytestmark = pytest.mark.e2e

NAV = "[data-testid='stSidebarNav']"
SECTIONS = ["Learn", "Analyse"]  # app.py's section headers; the legacy menu has none
MENU = ["Home", "Data", "Train", "Tune", "Runs", "Errors", "Predict"]


@dataclass
class Menu:
    sections: list[str]
    links: list[str]
    current: list[str]


def link_title(text: str) -> str:
    """A menu link's text is its Material icon's name, then its title."""
    return text.split("\n")[-1].strip()


def first_visit(tab, tmp_path: Path, path: str, heading: str) -> Menu:
    """Start a new server, make /`path` its very first request, wait for `heading`; the menu."""
    server = AppServer(tmp_path)
    try:
        server.start()
        tab.goto(f"{server.url}/{path}")
        tab.get_by_role("heading", name=heading, exact=True).first.wait_for()
        tab.locator(NAV).get_by_text(SECTIONS[-1], exact=True).wait_for()
        tab.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=120_000)
        tab.screenshot(path=str(ARTIFACTS / f"fresh-server-{path.split('?')[0] or 'home'}.png"))
        nav = tab.locator(NAV)
        return Menu(
            sections=[text.strip() for text in
                      nav.locator("[data-testid='stNavSectionHeader']").all_inner_texts()],
            links=[link_title(text) for text in nav.get_by_role("link").all_inner_texts()],
            current=[link_title(text) for text in
                     nav.locator("[aria-current='page']").all_inner_texts()])
    finally:
        server.stop()


# A neutral query parameter rides along: the rerun into app.py must keep the link's query string.
@pytest.mark.parametrize(("path", "heading"),
                         [("train?lesson=3", "Train"), ("runs?lesson=3", "Runs")])
def test_deep_link_as_first_request_opens_the_page_inside_the_app(
        browser_tab, tmp_path: Path, path: str, heading: str) -> None:
    menu = first_visit(browser_tab, tmp_path, path, heading)
    assert menu.sections == SECTIONS
    assert menu.links == MENU  # so no "app" or "common" entry
    assert menu.current == [heading]
    # Same page, same query string (and the tester's ?me=, which browser_tab adds).
    assert re.sub(r"&me=[0-9a-f]+$", "", browser_tab.url).endswith(f"/{path}")
    assert browser_tab.get_by_role("heading", name=heading, exact=True).count() == 1


def test_root_as_first_request_still_opens_home(browser_tab, tmp_path: Path) -> None:
    menu = first_visit(browser_tab, tmp_path, "", "cifarkit")
    assert menu.sections == SECTIONS
    assert menu.links == MENU
    assert menu.current == ["Home"]
