"""How a worker process (training run or search) ends when something goes wrong.

One wrapper for both workers: any failure becomes status "failed" with a one-line error, and a
full disk, the failure most likely to strike a shared classroom server, is named as such. The
wrapper must still work on a full disk, so it removes the worker's temporary files before it
writes the (small) status, and gives up with one log line if even that cannot be written: the
liveness check then shows the job as interrupted.
"""

from __future__ import annotations

import errno
import os
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cifarkit import rundir

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)  # no space left; disk quota exceeded
PARTIAL_PREFIX = ".partial-"  # a model file being written; os.replace'd into place when whole
# What cut-short saves leave: partial models, Predictions.save's "<name>.partial", and
# rundir.write_json_atomic's ".<name>.json.<random>".
TEMP_PATTERNS = (f"{PARTIAL_PREFIX}*", "*.partial", ".*.json.*")


class DiskFull(OSError):
    """A save that ran out of space; says what was being saved and where."""

    def __init__(self, what: str, path: Path) -> None:
        super().__init__(errno.ENOSPC, f"disk full while saving {what} ({path})")
        self.what = what
        self.path = path

    def __str__(self) -> str:
        return str(self.strerror)


def disk_full_cause(error: BaseException) -> OSError | None:
    """The full-disk (or quota) error that error is or was raised from; a DiskFull first."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    full = [item for item in chain
            if isinstance(item, OSError) and item.errno in DISK_FULL_ERRNOS]
    named = [item for item in full if isinstance(item, DiskFull)]
    return (named or full or [None])[0]


def is_disk_full(error: BaseException) -> bool:
    """True if error, or any error it was raised from, is a full disk or an exceeded quota."""
    return disk_full_cause(error) is not None


@contextmanager
def saving(what: str, path: Path) -> Iterator[None]:
    """Turn a full disk while writing `path` into DiskFull naming `what` (other errors pass)."""
    try:
        yield
    except DiskFull:
        raise
    except OSError as error:
        if error.errno in DISK_FULL_ERRNOS:
            raise DiskFull(what, path) from error
        raise


def partial_path(path: Path) -> Path:
    """Where `path` is written before it replaces the real file (keeps its suffix for Keras)."""
    return path.with_name(f"{PARTIAL_PREFIX}{path.name}")


def save_atomic(path: Path, what: str, write: Callable[[Path], Any]) -> None:
    """write(temp) then replace `path` in one step: a failed save leaves the old file intact."""
    partial = partial_path(path)
    try:
        with saving(what, path):
            write(partial)
            os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def save_status(folder: Path, **changes: Any) -> dict[str, Any]:
    """rundir.update_status, with a full disk named as such (DiskFull)."""
    with saving("the status", folder / rundir.STATUS):
        return rundir.update_status(folder, **changes)


def error_line(error: BaseException, folder: Path) -> str:
    """The one line a failed job shows: "disk full while saving …" or "Type: message"."""
    cause = disk_full_cause(error)
    if isinstance(cause, DiskFull):
        return str(cause)
    if cause is not None:  # raised by a library's own saving (keras-tuner's trial files)
        return f"disk full while saving files ({cause.filename or folder})"
    return f"{type(error).__name__}: {error}"


def remove_temporary_files(folder: Path) -> None:
    """Delete what cut-short saves left in folder (partial models, temporary status files)."""
    for pattern in TEMP_PATTERNS:
        for path in folder.glob(pattern):
            path.unlink(missing_ok=True)


def record_failure(folder: Path, error: BaseException) -> dict[str, Any]:
    """Mark the job failed with its error line; return the status (unwritten if the disk is full).

    The log gets one line `error: …`; any error but a full disk keeps its traceback above it,
    since the Train page shows the log's tail.
    """
    line = error_line(error, folder)
    if not is_disk_full(error):
        traceback.print_exc()
    remove_temporary_files(folder)
    changes = {"status": "failed", "finished": time.time(), "error": line}
    try:
        status = rundir.update_status(folder, **changes)
    except OSError as status_error:
        remove_temporary_files(folder)
        print(f"error: {line}; not recorded in {folder / rundir.STATUS} "
              f"({status_error.strerror or status_error})", flush=True)
        return {**changes, "recorded": False}
    print(f"error: {line}", flush=True)
    return status


def run_recorded(folder: Path, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """work() -> its final status; any exception is recorded by record_failure instead."""
    try:
        return work()
    except Exception as error:  # a worker must record any failure before it exits
        return record_failure(folder, error)
