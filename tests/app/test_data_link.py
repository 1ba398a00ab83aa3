"""The data choice lives in the URL: a reload or a new tab (a new session) shows the same data
on Data and Train, and a folder in a link is checked like a typed one."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cifarkit.classroom import Person
from cifarkit.config import DataConfig
from tests.app.conftest import PERSON_KEY, open_page, page_path, page_person, rerun
from tests.app.test_data_page import spy_on_loading
from tests.conftest import class_zip

DATA, TRAIN = page_path("pages/data.py"), page_path("pages/train.py")
CIFAR10_THREE = {"source": "cifar10", "num_classes": "3", "max_train_images": "300"}


def open_with_query(page: str, query: dict[str, str], person: Person | None = None) -> AppTest:
    """A fresh session (a reload or a new tab) opening `page` at a URL with this query, as
    `person` (default: the page tests' person)."""
    at = AppTest.from_file(page, default_timeout=120)
    at.query_params.update(query)
    at.session_state[PERSON_KEY] = person or page_person()
    return rerun(at)


def shown(at: AppTest) -> str:
    return "\n".join(element.value for element in at.markdown)


def test_a_link_opens_data_and_train_on_its_data(cifar10_archive: Path) -> None:
    expected = DataConfig(source="cifar10", num_classes=3, max_train_images=300)
    data = open_with_query(DATA, CIFAR10_THREE)
    assert data.session_state["data_config"] == expected
    assert data.selectbox(key="data_source").value == "cifar10"
    assert next(item.value for item in data.metric if item.label == "Classes") == "3"
    train = open_with_query(TRAIN, CIFAR10_THREE)
    assert "**Data:** CIFAR-10 · first 3 classes · at most 300 training images" in shown(train)


def test_choosing_on_data_writes_the_choice_into_the_url(cifar10_archive: Path) -> None:
    at = open_page(DATA, 120)
    assert dict(at.query_params) == {}  # digits: the defaults need no query
    at.selectbox(key="data_source").select("cifar10")
    rerun(at)
    assert dict(at.query_params) == {"source": "cifar10"}
    train = open_with_query(TRAIN, {"source": "cifar10"})  # that URL in a new tab
    assert "**Data:** CIFAR-10" in shown(train)


def test_a_bad_value_in_the_link_is_named_and_digits_shown() -> None:
    at = open_with_query(TRAIN, {"source": "cifar10", "num_classes": "many"})
    assert at.warning[0].value.startswith("The link's data choice cannot be used "
                                          "(**data.num_classes**: must be a number, got 'many')")
    assert at.session_state["data_config"] == DataConfig()
    assert "**Data:** Digits" in shown(at)


def test_another_sessions_upload_in_a_link_is_refused_unread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    owner = open_page(DATA, 120)
    owner.selectbox(key="data_source").select("folder")
    rerun(owner)
    owner.file_uploader(key="data_upload").set_value(("pets.zip", class_zip(("cats", "dogs"), 4),
                                                      "application/zip"))
    rerun(owner)
    path = owner.session_state["data_config"].path
    assert dict(owner.query_params)["path"] == path
    asked = spy_on_loading(monkeypatch)
    # The link in another person's session, on Train (which types no path: the link alone is
    # checked). The same person's reload may read it: see test_identity.
    other = open_with_query(TRAIN, {"source": "folder", "path": path}, Person("other", "Other"))
    assert other.error[0].value.startswith(f"{path} is outside the folders this app may read")
    assert path not in asked
    assert other.session_state["data_config"] == DataConfig()
    assert "**Data:** Digits" in shown(other)


@pytest.mark.parametrize("page", ["pages/runs.py", "pages/errors.py", "pages/predict.py"])
def test_pages_without_a_data_picker_keep_the_choice_in_their_url(page: str) -> None:
    """A browser drops the query when the menu switches pages; app.py writes the choice back on
    every page, so reloading Runs and then opening Train still trains the chosen data."""
    at = open_with_query(page_path("app.py"), {"source": "cifar10"})
    at.switch_page(page)
    at.query_params.clear()  # what the browser's URL holds after a menu click
    rerun(at)
    assert dict(at.query_params) == {"source": "cifar10"}
    assert at.session_state["data_config"] == DataConfig(source="cifar10")
