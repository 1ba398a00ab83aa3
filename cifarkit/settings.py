"""Where cifarkit reads and writes files, each overridable by an environment variable."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path | None:
    """A folder holding official CIFAR archives placed by hand (CIFARKIT_DATA_DIR), if set."""
    value = os.environ.get("CIFARKIT_DATA_DIR")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Where downloads are cached: Keras' own cache by default, so Keras users share it."""
    value = os.environ.get("CIFARKIT_CACHE_DIR")
    return Path(value).expanduser() if value else Path.home() / ".keras" / "datasets"


def runs_dir() -> Path:
    """The folder holding one sub-folder per training run (CIFARKIT_RUNS_DIR, default ./runs)."""
    return Path(os.environ.get("CIFARKIT_RUNS_DIR", "runs")).expanduser()


def uploads_dir() -> Path:
    """Where the app keeps uploaded files (one folder per owner) so worker processes can read
    them (CIFARKIT_UPLOADS_DIR, default uploads/ beside the runs folder)."""
    value = os.environ.get("CIFARKIT_UPLOADS_DIR")
    return Path(value).expanduser() if value else runs_dir().parent / "uploads"


def allowed_dirs() -> list[Path]:
    """Extra folders app users may read image folders from by typing a path
    (CIFARKIT_ALLOWED_DIRS, separated by os.pathsep); none unless the operator lists some."""
    value = os.environ.get("CIFARKIT_ALLOWED_DIRS", "")
    return [Path(part.strip()).expanduser() for part in value.split(os.pathsep) if part.strip()]


def searches_dir() -> Path:
    """The folder holding one sub-folder per hyperparameter search (CIFARKIT_SEARCHES_DIR)."""
    value = os.environ.get("CIFARKIT_SEARCHES_DIR")
    return Path(value).expanduser() if value else runs_dir().parent / "searches"
