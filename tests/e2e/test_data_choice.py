"""Issue 8 items 3 and 6 in the real browser: the chosen dataset survives a reload and a new tab
(it lives in the URL), and Elapsed runs from the first batch of epoch 1 and survives a reload."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cifarkit import rundir
from tests.e2e.conftest import AppServer
from tests.e2e.test_browser import settle, shoot, train_by_epochs
from tests.e2e.test_server_restart import (
    eventually,
    fill_number,
    kill_leftover_workers,
    the_run,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DATA_LINE = re.compile(r"Data:\s*CIFAR-10")
SHOWN_SECONDS = re.compile(r"^(?:(\d+)h )?(\d+)m (\d+)s$")  # ui.format.format_seconds
NAME = "watch the clock"
STEPS = 5000  # batches per epoch (the data repeats): minutes, far longer than the test watches


def open_page(tab, url: str, path: str, heading: str) -> None:
    tab.goto(f"{url}{path}")
    tab.get_by_role("heading", name=heading, exact=True).first.wait_for()
    settle(tab)


def data_line(tab) -> str:
    """The Train page's data header ("Data: CIFAR-10 · …")."""
    line = tab.locator("[data-testid='stMarkdownContainer'] p").filter(has_text="Data:")
    return line.first.inner_text()


def test_the_chosen_dataset_survives_a_reload_and_a_new_tab(
        app_server: AppServer, browser_tab, cifar10_archive: Path) -> None:
    tab = browser_tab
    open_page(tab, app_server.url, "/data", "Data")
    tab.locator(".st-key-data_source").get_by_role("button", name="Open").click()
    tab.get_by_role("option", name="CIFAR-10", exact=True).click()
    tab.get_by_text(re.compile(r"CIFAR-10.* selected for training")).first.wait_for()
    settle(tab)
    assert "source=cifar10" in tab.url
    tab.get_by_role("link", name="Train", exact=True).first.click()
    tab.get_by_role("heading", name="Train", exact=True).first.wait_for()
    settle(tab)
    assert DATA_LINE.search(data_line(tab)), data_line(tab)
    tab.reload()
    tab.get_by_role("heading", name="Train", exact=True).first.wait_for()
    settle(tab)
    assert DATA_LINE.search(data_line(tab)), data_line(tab)  # a reload is a new session
    address = tab.url
    assert "source=cifar10" in address
    other = tab.context.browser.new_context().new_page()  # no cookies or storage shared
    other.goto(address)
    other.get_by_role("heading", name="Train", exact=True).first.wait_for()
    settle(other)
    assert DATA_LINE.search(data_line(other)), data_line(other)
    shoot(other, "8-train-data-from-the-url")


def elapsed_shown(tab) -> float | None:
    """Seconds on the live card's Elapsed metric; None while it shows '–'."""
    metric = tab.locator("[data-testid='stMetric']").filter(has_text="Elapsed").first
    text = metric.locator("[data-testid='stMetricValue']").inner_text().strip()
    match = SHOWN_SECONDS.match(text)
    if match is None:
        return None
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return 3600 * hours + 60 * minutes + seconds


def test_elapsed_runs_through_epoch_1_and_survives_a_reload(
        app_server: AppServer, browser_tab, tmp_path: Path) -> None:
    """Digits with epochs of STEPS batches: epoch 1 lasts long enough to watch the clock."""
    tab, root = browser_tab, tmp_path / "runs"
    try:
        open_page(tab, app_server.url, "/train", "Train")
        train_by_epochs(tab)
        fill_number(tab, "Epochs", 50)
        tab.get_by_role("textbox", name="Run name").fill(NAME)
        fill_number(tab, "Steps per epoch (0 = one full pass)", STEPS)
        tab.get_by_role("button", name="Start training").click()
        tab.get_by_role("heading", name=NAME).first.wait_for(timeout=120_000)
        eventually(lambda: elapsed_shown(tab) is not None, "Elapsed shows a time")
        first = elapsed_shown(tab)
        eventually(lambda: (elapsed_shown(tab) or 0) > first, f"Elapsed grows past {first} s")
        run = the_run(root)
        assert run.config.training.steps_per_epoch == STEPS
        assert rundir.epoch_rows(run.path) == []  # still in epoch 1
        before = elapsed_shown(tab)
        tab.reload()
        tab.get_by_role("heading", name=NAME).first.wait_for()
        eventually(lambda: elapsed_shown(tab) is not None, "Elapsed shows a time after reload")
        assert elapsed_shown(tab) >= before
        shoot(tab, "9-train-elapsed-after-reload")
    finally:
        kill_leftover_workers(root)
