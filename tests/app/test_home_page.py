"""Home page: datasets and their download, the hardware in use, and the latest runs."""

from __future__ import annotations

import functools
import http.server
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cifarkit import datasets, settings
from cifarkit.config import DataConfig
from tests.app.conftest import STATUSES, assert_clean, mark_imported, open_page, page_path

PAGE = page_path("pages/home.py")


def open_home(data_config: DataConfig | None = None) -> AppTest:
    return open_page(PAGE, 90, **({} if data_config is None else {"data_config": data_config}))


def texts(elements) -> str:
    return "\n".join(element.value for element in elements)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hand-placed archives (the per-test cache folder is empty, see tests/conftest.py)."""
    monkeypatch.delenv("CIFARKIT_DATA_DIR", raising=False)


def serve_with(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Make the page's download fetch from `url` instead of the official server."""
    monkeypatch.setattr(datasets, "ensure_archive",
                        functools.partial(datasets.ensure_archive, url=url))


@pytest.fixture
def file_server(cifar10_archive: Path) -> Iterator[str]:
    """A local HTTP server holding the real CIFAR-10 sample archive; yields its URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(cifar10_archive.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{cifar10_archive.name}"
    server.shutdown()
    server.server_close()


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"


def test_without_runs_home_explains_the_app_and_the_datasets(offline: None) -> None:
    at = open_home()
    assert at.title[0].value == "cifarkit"
    markdown = texts(at.markdown)
    for title in ("Digits (built in, works offline)", "CIFAR-10", "CIFAR-100", "1 · Data",
                  "2 · Train"):
        assert title in markdown
    assert "**In use:** Digits" in markdown
    assert "not downloaded" in markdown
    captions = texts(at.caption)
    assert "cifar-10-python.tar.gz" in captions and "cifar-100-python.tar.gz" in captions
    assert str(settings.cache_dir()) in captions
    assert f"{os.cpu_count()} CPU cores" in captions
    assert {button.key for button in at.button} >= {"home_download_cifar10",
                                                     "home_download_cifar100"}
    assert "No runs yet" in at.info[0].value


def test_home_lists_recent_runs_with_their_status(run_factory) -> None:
    made = [run_factory(status) for status in STATUSES]
    at = open_home()
    table = at.dataframe[0].value.set_index("run")
    assert sorted(table.index) == sorted(run.name for run in made)
    for run in made:
        assert run.status in table.loc[run.name, "status"]
    completed = made[STATUSES.index("completed")]
    assert table.loc[completed.name, "test accuracy"] == pytest.approx(
        completed.info["test_accuracy"])
    assert table.loc[completed.name, "epochs"] == "3 / 3"


def test_an_imported_model_is_labelled_imported_not_untrained(run_factory) -> None:
    imported = mark_imported(run_factory("completed", name="brought in"), model_name="resnet")
    at = open_home()
    row = at.dataframe[0].value.set_index("run").loc[imported.name]
    assert row["model"] == "imported (resnet)" and row["epochs"] == "imported"


def test_an_archive_in_the_data_dir_is_ready(cifar10_archive: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFARKIT_DATA_DIR", str(cifar10_archive.parent))
    at = open_home()
    assert f"Found at `{cifar10_archive}`" in texts(at.caption)
    assert "home_download_cifar10" not in {button.key for button in at.button}


def test_offline_download_says_where_to_put_it_and_offers_digits(
        offline: None, monkeypatch: pytest.MonkeyPatch) -> None:
    serve_with(monkeypatch, closed_port_url())
    at = open_home(DataConfig(source="cifar10"))
    assert "**In use:** CIFAR-10" in texts(at.markdown)
    at.button(key="home_download_cifar10").click().run()
    assert_clean(at)
    warning = at.warning[0].value
    assert "cifar-10-python.tar.gz" in warning and str(settings.cache_dir()) in warning
    assert "CIFARKIT_DATA_DIR" in warning
    at.button(key="home_download_cifar10_digits").click().run()
    assert_clean(at)
    assert at.session_state["data_config"].source == "digits"
    assert "**In use:** Digits" in texts(at.markdown)


def test_download_button_fetches_the_archive(file_server: str, offline: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    serve_with(monkeypatch, file_server)
    at = open_home()
    at.button(key="home_download_cifar10").click().run()
    assert_clean(at)
    archive = settings.cache_dir() / "cifar-10-python.tar.gz"
    assert archive.is_file()
    assert f"Found at `{archive}`" in texts(at.caption)
    assert "home_download_cifar10" not in {button.key for button in at.button}
    assert "home_download_cifar100" in {button.key for button in at.button}


def test_your_own_images_are_not_called_ready_before_any_are_picked(offline: None) -> None:
    markdown = texts(open_home().markdown)
    assert ":gray-badge[:material/upload: upload a .zip on Data]" in markdown
    assert ":gray-badge[:material/upload: choose its folder on Data]" in markdown
    assert markdown.count("check: ready]") == 1  # Digits only: nothing downloaded or uploaded


def test_your_own_images_in_use_say_so(offline: None, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    markdown = texts(open_home(DataConfig(source="folder", path=str(folder))).markdown)
    assert ":green-badge[:material/check: in use]" in markdown
    assert "upload a .zip on Data" not in markdown
