"""A teacher's path through the real app in headless Chromium, with a screenshot of each page.

Open Data, launch a tiny training on Train, watch an epoch appear (and survive a reload), open the
run in Errors, upload an image in Predict and see the top-5. Screenshots land in
artifacts/screenshots/ (not committed).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.e2e.conftest import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PLOT = "[data-testid='stPlotlyChart']"
TRAINING_MINUTES = 5


def go_to(page, name: str) -> None:
    page.get_by_role("link", name=name, exact=True).first.click()
    page.get_by_role("heading", name=name, exact=True).first.wait_for()


def settle(page) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=120_000)


def train_by_epochs(page) -> None:
    """The Train page trains for 2 minutes by default; these tests count epochs instead."""
    page.get_by_text("A number of epochs", exact=True).click()
    settle(page)


def shoot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def digit_png() -> bytes:
    """A hand-drawn-looking '1' on black, like the digits dataset."""
    image = Image.new("RGB", (64, 64), "black")
    ImageDraw.Draw(image).line([(32, 8), (32, 56)], fill="white", width=8)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_data_train_errors_predict_in_a_real_browser(page, app_url: str,
                                                     tmp_path: Path) -> None:
    page.goto(app_url)
    page.get_by_role("heading", name="cifarkit").first.wait_for()
    settle(page)
    shoot(page, "1-home")

    go_to(page, "Data")
    limit = page.get_by_role("spinbutton", name="Max training images (0 = all)")
    limit.fill("300")
    limit.press("Enter")
    settle(page)
    page.locator("[data-testid='stImage']").first.wait_for()
    shoot(page, "2-data")

    go_to(page, "Train")
    train_by_epochs(page)
    epochs = page.get_by_role("spinbutton", name="Epochs", exact=True)
    epochs.fill("2")
    epochs.press("Tab")
    page.get_by_role("button", name="Start training").click()
    page.locator(PLOT).first.wait_for(timeout=TRAINING_MINUTES * 60_000)  # epoch 1 finished
    page.reload()  # the run lives on disk, not in this browser session
    page.get_by_role("tab", name="Live training").click()
    page.locator(PLOT).first.wait_for(timeout=60_000)
    page.get_by_text("finished and").first.wait_for(timeout=TRAINING_MINUTES * 60_000)
    shoot(page, "3-train")

    go_to(page, "Errors")
    page.get_by_role("heading", name="Confusion matrix").first.wait_for()
    settle(page)
    assert page.locator(PLOT).count() >= 2  # per-class bars and the confusion heatmap
    shoot(page, "4-errors")

    go_to(page, "Predict")
    image_path = tmp_path / "one.png"
    image_path.write_bytes(digit_png())
    page.locator("input[type='file']").first.set_input_files(str(image_path))
    page.get_by_text("one.png").first.wait_for()
    page.locator(PLOT).first.wait_for(timeout=120_000)
    settle(page)
    shoot(page, "5-predict")
    assert not page.get_by_text("Traceback").count()
