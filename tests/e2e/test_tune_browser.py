"""A two-trial hyperparameter search from the Tune page in headless Chromium.

Set a tiny search (2 trials, 1 epoch each, 150 digits), launch it, reload the tab while it runs
(the search lives on disk), wait for both trials in the table and the score chart, and save
artifacts/screenshots/6-tune.png.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_browser import PLOT, go_to, settle, shoot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEARCH_MINUTES = 5


def fill_number(page, label: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=label, exact=True)
    box.fill(str(value))
    box.press("Tab")


def test_two_trial_search_in_a_real_browser(page, app_url: str) -> None:
    page.goto(app_url)
    page.get_by_role("heading", name="cifarkit").first.wait_for()
    settle(page)

    go_to(page, "Tune")
    settle(page)
    fill_number(page, "Trials (at most)", 2)
    fill_number(page, "Epochs per trial", 1)
    fill_number(page, "Max training images (0 = all)", 150)
    page.get_by_role("textbox", name="Search name").fill("browser search")
    page.get_by_role("button", name="Start search").click()
    page.get_by_role("heading", name="browser search").first.wait_for()
    page.get_by_text("of 2 trials finished").first.wait_for()

    page.reload()  # the search runs in its own process; a new session finds it on disk
    page.get_by_role("heading", name="browser search").first.wait_for(timeout=60_000)
    page.get_by_text("2 of 2 trials finished").first.wait_for(timeout=SEARCH_MINUTES * 60_000)
    page.locator(PLOT).first.wait_for(timeout=60_000)
    settle(page)
    table = page.locator("[data-testid='stDataFrame']").first
    table.wait_for()
    train = page.get_by_role("button", name="Train these settings")
    train.wait_for(timeout=60_000)
    assert not page.get_by_text("Traceback").count()
    # Streamlit scrolls inside its own container, so a full-page shot is one viewport: make the
    # viewport tall enough for the table, the chart and "Train the best".
    page.set_viewport_size({"width": 1400, "height": 2000})
    train.scroll_into_view_if_needed()
    settle(page)
    shoot(page, "6-tune")
