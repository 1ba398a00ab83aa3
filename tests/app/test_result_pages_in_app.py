"""The Runs, Errors and Predict pages also render inside app.py's navigation, with every status."""

from __future__ import annotations

import pytest

from tests.app.conftest import STATUSES, assert_clean, open_page, page_path

TITLES = {"pages/runs.py": "Runs", "pages/errors.py": "Errors", "pages/predict.py": "Predict"}


@pytest.mark.parametrize("page", sorted(TITLES))
def test_page_renders_inside_the_app(run_factory, page: str) -> None:
    for status in STATUSES:
        run_factory(status)
    run_factory("completed", cifar100=True, num_classes=6)
    at = open_page(page_path("app.py"), 120)
    at.switch_page(page)
    at.run()
    assert_clean(at)
    assert at.title[0].value == TITLES[page]
