"""Issue 9 in the real browser: a typed name is remembered across a reload (its key rides in the
address as ?me=), a second browser context is a different person, and the Class page joins the
menu once the teacher's passcode is given (AppTest cannot see the menu). The key's write-back after
the menu switches pages is checked under AppTest (tests/app/test_identity.py)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from cifarkit import classroom
from tests.e2e.conftest import TESTER, AppServer, new_tab
from tests.e2e.test_browser import settle, shoot

pytestmark = pytest.mark.e2e
PASSCODE = "owl-7"


def key_in(url: str) -> str:
    return parse_qs(urlparse(url).query)["me"][0]


def signed_in(tab, name: str) -> None:
    """Wait for the sidebar's "Signed in as <name>" and for the page to settle."""
    sidebar = tab.locator("[data-testid='stSidebar']")
    sidebar.get_by_text(re.compile(rf"Signed in as {re.escape(name)}$")).wait_for()
    settle(tab)


def give_name(tab, url: str, name: str) -> str:
    """Open the app as nobody yet, type a name; the key the address then carries."""
    tab.goto(url)
    box = tab.get_by_label("Your name", exact=True)
    box.fill(name)
    tab.get_by_role("button", name="Continue").click()
    signed_in(tab, name)
    tab.get_by_role("heading", name="cifarkit", exact=True).first.wait_for()
    return key_in(tab.url)


def test_a_typed_name_survives_a_reload_and_another_browser_is_someone_else(
        app_server: AppServer, chromium) -> None:
    tab = new_tab(chromium)
    key = give_name(tab, app_server.url, "Alice")
    assert classroom.person(key) == classroom.Person(key, "Alice")
    tab.reload()
    signed_in(tab, "Alice")
    assert tab.get_by_label("Your name", exact=True).count() == 0  # not asked again
    assert key_in(tab.url) == key
    shoot(tab, "9-signed-in-after-reload")
    other = new_tab(chromium)  # no cookies, storage or address shared: nobody yet
    other_key = give_name(other, app_server.url, "Bob")
    assert other_key != key
    assert classroom.person(other_key) == classroom.Person(other_key, "Bob")
    signed_in(tab, "Alice")  # Bob signing in elsewhere changes nothing in Alice's tab


@pytest.fixture
def passcode_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets naming a teacher passcode, in the environment a server started later inherits."""
    (tmp_path / "secrets.toml").write_text(f'[cifarkit]\nteacher_passcode = "{PASSCODE}"\n')
    monkeypatch.setenv("CIFARKIT_SECRETS", str(tmp_path / "secrets.toml"))


@pytest.fixture
def class_server(passcode_secrets: None, app_server: AppServer) -> AppServer:
    """The real app on a server whose secrets name a teacher passcode (set before it starts)."""
    return app_server


def menu(tab) -> list[str]:
    """The menu's page titles (a link's text is its Material icon's name, then its title)."""
    links = tab.locator("[data-testid='stSidebarNav']").get_by_role("link").all_inner_texts()
    return [text.split("\n")[-1].strip() for text in links]


def test_the_class_page_is_in_the_menu_only_once_signed_in_as_teacher(
        class_server: AppServer, browser_tab) -> None:
    tab = browser_tab
    tab.goto(class_server.url)
    signed_in(tab, TESTER)
    assert "Class" not in menu(tab)
    tab.get_by_text("Teacher sign-in").click()
    tab.get_by_label("Teacher passcode").fill(PASSCODE)
    tab.get_by_role("button", name="Sign in as teacher").click()
    signed_in(tab, f"{TESTER} (teacher)")
    assert menu(tab)[-1] == "Class"
    tab.locator("[data-testid='stSidebarNav']").get_by_role("link", name="Class").click()
    tab.get_by_role("button", name="Save class limits").wait_for()
    settle(tab)
    shoot(tab, "9-class-page")
