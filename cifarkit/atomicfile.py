"""Replacing a file in one step: readers (other processes, other sessions) never see half of it.

A temporary file in the same folder is written, then os.replace'd over the target; on any
failure (a full disk) the temporary file is removed and the old file stays as it was. Its name
starts with ".<target name>." so cifarkit.failures can find what a killed writer left.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def write_atomic(path: Path, write: Callable[[IO[Any]], Any], binary: bool = False,
                 suffix: str = "") -> None:
    """write(file) into a temporary file beside `path`, then replace `path` with it."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(handle, "wb" if binary else "w") as file:
            write(file)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
