"""Shared fixtures: every test is seeded, has its own runs folder, and finds the real samples."""

from __future__ import annotations

import io
import os
import random
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifarkit.config import ConfigError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def shared_data_dir() -> Path | None:
    """The folder with the real CIFAR sample archives (CIFARKIT_DATA_DIR), if it is there."""
    value = os.environ.get("CIFARKIT_DATA_DIR")
    return Path(value) if value and Path(value).is_dir() else None


def wait_for(predicate: Callable[[], object], timeout: float = 240.0,
             what: str = "condition") -> None:
    """Poll until predicate() is true (a worker process writes what it is waited on); the
    timeout is only a cap for a hung worker, never an assertion about speed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def assert_refused(call: Callable[[], object], field: str) -> ConfigError:
    """call() raises a ConfigError for `field`, and its message starts with that field (what the
    CLI and the pages print); returned for further checks of the reason."""
    with pytest.raises(ConfigError) as caught:
        call()
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    return caught.value


def class_zip(classes: tuple[str, ...], per_class: int = 3, seed: int = 0) -> bytes:
    """A .zip holding one folder of small random 8x8 PNGs per class, as a user would upload;
    the same arguments give the same bytes (uploads are named by their content hash)."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in classes:
            for index in range(per_class):
                png = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(png, "PNG")
                member = zipfile.ZipInfo(f"{name}/{index}.png", (2026, 1, 1, 0, 0, 0))
                archive.writestr(member, png.getvalue())  # fixed date: same bytes every call
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _seed_everything(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    random.seed(0)
    np.random.seed(0)
    monkeypatch.setenv("CIFARKIT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CIFARKIT_CACHE_DIR", str(tmp_path / "cache"))


def _archive(name: str) -> Path:
    folder = shared_data_dir()
    if folder is None or not (folder / name).is_file():
        pytest.skip(f"real sample {name} not found: set CIFARKIT_DATA_DIR to ../shared/data")
    return folder / name


@pytest.fixture
def cifar10_archive() -> Path:
    return _archive("cifar-10-python.tar.gz")


@pytest.fixture
def cifar100_archive() -> Path:
    return _archive("cifar-100-python.tar.gz")


# Fabricated runs and stand-in workers for every test folder (unit, app, reliability): defined
# with the page tests, registered here once.
from tests.app.conftest import fake_worker, run_factory  # noqa: E402, F401
