"""The Streamlit server restarts while a run trains: the run lives on, and the page finds it again.

Start a long digits run from the Train page (so the worker is the server's child), see its live
curves, stop the server, check the worker still trains, start a new server on the same runs
folder, reload, and watch the epoch shown keep growing; then stop the run from the new server.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cifarkit import rundir, runs
from tests.e2e.conftest import AppServer
from tests.e2e.test_browser import PLOT, settle, shoot, train_by_epochs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EPOCHS = 300  # far more than the test waits for: the run is stopped long before its end
STEPS = 2  # batches per epoch, so epochs are short and the count moves every few seconds
NAME = "survives a restart"
EPOCH_SHOWN = re.compile(rf"Epoch (\d+) of {EPOCHS}")
WAIT_S = 120  # the longest any one step may take on a busy 2-core machine


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.5)


def fill_number(page, label: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=label, exact=True)
    box.fill(str(value))
    box.press("Tab")


def start_long_run(page, url: str) -> None:
    """Digits, resnet_fast, short epochs, no early stopping: trains until it is stopped."""
    page.goto(f"{url}/train")
    page.get_by_role("heading", name="Train", exact=True).first.wait_for()
    settle(page)
    train_by_epochs(page)
    fill_number(page, "Epochs", EPOCHS)
    fill_number(page, "Steps per epoch (0 = one full pass)", STEPS)
    early = page.get_by_role("switch", name="Early stopping", exact=True)
    if early.is_checked():  # off in the default recipe; a config may have it on
        early.locator("xpath=ancestor::label").click()  # the input itself is a 1 px hidden box
    assert not early.is_checked()
    page.get_by_role("textbox", name="Run name").fill(NAME)
    page.get_by_role("button", name="Start training").click()


def shown_epoch(page) -> int:
    """The epoch on the run's progress bar ("Epoch 7 of 300")."""
    text = page.get_by_text(EPOCH_SHOWN).first.inner_text()
    return int(EPOCH_SHOWN.search(text).group(1))


def the_run(root: Path) -> runs.Run:
    (run,) = runs.list_runs(root)
    return run


def kill_leftover_workers(root: Path) -> None:
    """Teardown: a run this test left active is killed by its recorded pid."""
    for run in runs.list_runs(root) if root.is_dir() else []:
        if run.is_active:
            os.kill(run.info["pid"], signal.SIGKILL)


def test_a_run_survives_a_server_restart_and_the_page_finds_it(
        app_server: AppServer, page, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    try:
        start_long_run(page, app_server.url)
        page.get_by_role("heading", name=NAME).first.wait_for(timeout=WAIT_S * 1000)
        page.locator(PLOT).first.wait_for(timeout=WAIT_S * 1000)  # epoch 1 is on the curves
        before = shown_epoch(page)
        worker = the_run(root).info["pid"]

        app_server.stop()
        run = the_run(root)
        assert (run.status, run.info["pid"]) == ("running", worker)  # not the server's to end
        done = len(rundir.epoch_rows(run.path))
        eventually(lambda: len(rundir.epoch_rows(run.path)) > done,
                   "an epoch finished while no server ran")

        app_server.start()
        page.reload()
        page.get_by_role("heading", name=NAME).first.wait_for()
        page.locator(PLOT).first.wait_for()
        after = shown_epoch(page)
        assert after > before  # found, with the epochs trained while no server ran
        eventually(lambda: shown_epoch(page) > after, f"the page moves on from epoch {after}")
        shoot(page, "7-train-after-restart")
        stop = page.locator(f".st-key-train_stop_{run.run_id}")  # this run's own Stop button
        stop.get_by_role("button", name="Stop").click()  # a role skips a hidden stale copy
        stopped = runs.wait(run.run_id, timeout=WAIT_S, root=root)
        assert stopped.status == "stopped"
        assert stopped.info["pid"] == worker  # the same process trained throughout
        assert stopped.info["epochs_run"] >= after
        assert not page.get_by_text("Traceback").count()
    finally:
        kill_leftover_workers(root)
