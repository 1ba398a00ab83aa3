"""The real app (`streamlit run app.py`) driven by Debian's headless Chromium through Playwright."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cifarkit import classroom, settings
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium")


def skip_or_fail(reason: str) -> None:
    """Under CI a missing browser is a failure: the browser test must really run there."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true requires the browser test to run)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(url: str, server: subprocess.Popen, timeout: float = 90.0) -> None:
    """Poll Streamlit's health endpoint (with the suite's one wait_for); a server that has
    exited fails at once with its exit code instead of waiting out the timeout."""

    def serving() -> bool:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    wait_for(serving, timeout, what=f"streamlit to answer at {url}")


class AppServer:
    """`streamlit run SCRIPT` on a loopback port, with its own runs and uploads folders.

    Stop and start again on the same port and folders to restart the server under a live page.
    """

    def __init__(self, folder: Path, script: Path = ROOT / "app.py") -> None:
        self.folder, self.script, self.port = folder, script, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "CIFARKIT_RUNS_DIR": str(self.folder / "runs"),
               "CIFARKIT_CLASS_DIR": str(settings.class_dir()),  # the test's people, one class
               "CIFARKIT_UPLOADS_DIR": str(self.folder / "uploads"), "TF_CPP_MIN_LOG_LEVEL": "2"}
        with open(self.folder / "streamlit.log", "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", str(self.script),
                 "--server.headless", "true", "--server.port", str(self.port),
                 "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until_serving(self.url, self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def app_server(tmp_path: Path) -> Iterator[AppServer]:
    """The real app, serving for the length of one test."""
    server = AppServer(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def app_url(app_server: AppServer) -> str:
    return app_server.url


# Pages ask who is there first (ui.identity); a tab of browser_tab is already someone: this
# script puts a registered person's key into every address it opens that names nobody, as a
# bookmark with ?me= would.
NAME_IN_URL = """(() => {
  if (window.top !== window || !location.protocol.startsWith("http")) return;
  const url = new URL(location.href);
  if (url.searchParams.has("me")) return;
  url.searchParams.set("me", %s);
  history.replaceState(history.state, "", url);
})();"""
TESTER = "Tester"  # the name browser_tab's tabs go by


@pytest.fixture
def chromium():
    """Debian's headless Chromium (never a downloaded browser), closed after the test."""
    executable = chromium_path()
    if executable is None:
        skip_or_fail("Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright Python package is not installed")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def new_tab(browser, name_key: str | None = None):
    """A tab in a context of its own (no cookies or storage shared); with name_key, every page
    it opens is that registered person's."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    if name_key is not None:
        context.add_init_script(NAME_IN_URL % json.dumps(name_key))
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    return tab


@pytest.fixture
def browser_tab(chromium):
    """A tab of the headless Chromium, not yet on any page, going by the name TESTER (registered
    in the class folder every AppServer of the test shares)."""
    return new_tab(chromium, classroom.register(TESTER).key)


@pytest.fixture
def page(app_url: str, browser_tab):
    """A browser tab with the real app serving (the server outlives the browser)."""
    return browser_tab
