"""Job folders: what runs, searches and imported models share.

A job is a folder <root>/<id>/ holding its config (the kind's marker file) and status.json,
written by a worker process that the UI only watches. Users name jobs by id (CLI arguments, page
buttons), so an id is checked before any path is built from it: nothing outside the root can be
read, resumed or deleted. A folder whose config cannot be read is not hidden but listed as
damaged, so it can be seen and deleted.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cifarkit import rundir
from cifarkit.config import check_types

ACTIVE = ("queued", "running")
RESUMABLE = ("stopped", "interrupted", "failed")
STATUSES = (*ACTIVE, "completed", "failed", "stopped")  # what a worker writes to status.json
DAMAGED = "damaged"
# <YYYYmmdd>-<HHMMSS>-<label>-<4 hex>, see new_job_id. The label is an architecture or algorithm
# name; it may hold letters, digits, "_" and "-", never "/" or ".", so an id is one plain name.
ID_PATTERN = re.compile(r"\d{8}-\d{6}-[A-Za-z0-9_-]{1,64}-[0-9a-f]{4}")


class JobError(ValueError):
    """A job that does not exist, is not a job id, or cannot do what was asked."""


@dataclass(frozen=True)
class JobKind:
    """What tells runs and searches apart here: their word, config file, error and proof of
    completion (an artifact only a finished job has, for a status.json that was lost)."""

    noun: str  # "run" | "search", in messages
    marker: str  # the config file that makes a folder a job of this kind
    config: Any  # its config class: .load(path) reads the marker file
    error: type[JobError]
    finished_marker: str | None = None


@dataclass
class Damaged:
    """A job folder whose config cannot be read: listed with the reason so it can be deleted."""

    job_id: str
    path: Path
    reason: str
    info: dict[str, Any] = field(default_factory=dict)  # status.json, as far as it reads
    status: str = DAMAGED


def new_job_id(label: str) -> str:
    """Sortable by time, readable, and unique even for two launches in the same second."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{label}-{secrets.token_hex(2)}"


def new_job_dir(root: Path, label: str) -> Path:
    """Make <root>/<new id>/ with a queued status."""
    path = root / new_job_id(label)
    path.mkdir(parents=True)
    rundir.update_status(path, status="queued", created=time.time())
    return path


def job_dir(job: str | Path, root: Path, kind: JobKind) -> Path:
    """The folder of a job named by id, or by the Path of a folder directly inside root.

    Raises kind.error for anything else (`../x`, an absolute path, a symlink leading out of
    root) before touching the file system outside root, and when no such job exists.
    """
    name = job.name if isinstance(job, Path) and _inside(job.parent, root) else str(job)
    path = root / name
    if not ID_PATTERN.fullmatch(name) or not _inside(path.resolve().parent, root):
        raise kind.error(f"not a {kind.noun} id: {str(job)!r}")
    if not (path / kind.marker).is_file():
        raise kind.error(f"no {kind.noun} {name!r} in {root}")
    return path


def _inside(folder: Path, root: Path) -> bool:
    """True if folder is root itself (both resolved: symlinks and '..' followed)."""
    return folder.resolve() == root.resolve()


def job_dirs(root: Path, kind: JobKind) -> list[Path]:
    """Every job folder under root, newest first: ids only, none leading outside root."""
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.iterdir(), reverse=True):
        try:
            found.append(job_dir(path, root, kind))
        except JobError:
            continue
    return found


def open_job(job: str | Path, root: Path, kind: JobKind) -> tuple[Path, Any, dict[str, Any], str]:
    """(folder, config, status.json, effective status) of a job; kind.error when it is not a
    job id, does not exist, or is damaged (its config cannot be read)."""
    path = job_dir(job, root, kind)
    config, problem = read_config(path, kind)
    if config is None:
        raise kind.error(f"{kind.noun} {path.name} is damaged: {problem}")
    info = rundir.read_status(path)
    return path, config, info, effective_status(path, info, kind)


def read_config(path: Path, kind: JobKind) -> tuple[Any | None, str]:
    """The job's config, or None and why it cannot be used (unreadable, or wrong types)."""
    try:
        config = kind.config.load(path / kind.marker)
        # A hand-edited file can hold an object where a name belongs: readers would then fail
        # far from the cause (a page for everyone), so such a job counts as damaged too.
        check_types(config)
    except (OSError, ValueError) as error:  # ConfigError and UnicodeDecodeError are ValueErrors
        # Pages show the reason to students: the file is named, not its place on the server.
        detail = str(error).replace(f"{path / kind.marker}: ", "")
        return None, f"{kind.marker} cannot be read ({detail})"
    return config, ""


def damaged_jobs(root: Path, kind: JobKind) -> list[Damaged]:
    """Job folders whose config cannot be read, newest first, with the reason: listed so that
    pages and the CLI can show and delete them instead of losing them from view."""
    damaged = []
    for path in job_dirs(root, kind):
        config, problem = read_config(path, kind)
        if config is None:
            damaged.append(Damaged(path.name, path, problem, rundir.read_status(path)))
    return damaged


def delete_job(job: str | Path, root: Path, kind: JobKind) -> None:
    """Remove a job folder, damaged or not (never what a symlink points to); a job whose worker
    is alive is refused: it must be stopped first."""
    path = job_dir(job, root, kind)
    info = rundir.read_status(path)
    config, _ = read_config(path, kind)
    status = DAMAGED if config is None else effective_status(path, info, kind)
    alive = info.get("status") in ACTIVE and _worker_alive(info.get("pid"), info.get("pid_started"))
    if status in ACTIVE or (status == DAMAGED and alive):
        raise kind.error(f"{kind.noun} {path.name} is {status}: stop it before deleting")
    shutil.rmtree(path)


def effective_status(path: Path, info: dict[str, Any], kind: JobKind) -> str:
    """The job's status as it really is: a queued/running job whose process is gone was
    interrupted, and a status.json that is missing or unreadable is recovered from artifacts."""
    status = info.get("status")
    if status not in STATUSES:
        return recovered_status(path, kind)
    if status in ACTIVE and not _worker_alive(info.get("pid"), info.get("pid_started")):
        return "interrupted"
    return status


def recovered_status(path: Path, kind: JobKind) -> str:
    """What the artifacts prove without status.json: scored means completed (or stopped, when
    the STOP file that ended it is still there); anything less ends as interrupted."""
    if kind.finished_marker and (path / kind.finished_marker).is_file():
        return "stopped" if rundir.stop_requested(path) else "completed"
    return "interrupted"


# --- worker processes: started detached, recognised later by pid and start time


def spawn_worker(folder: Path, arguments: list[str], log_name: str) -> int:
    """Start `python -m cifarkit <arguments>` detached, logging to folder/log_name.

    Marks folder/status.json queued with the worker's identity (process_identity), by which
    effective_status() later tells a live worker from a dead one.
    """
    command = [sys.executable, "-m", "cifarkit", *arguments]
    rundir.update_status(folder, status="queued", error=None)
    with open(folder / log_name, "a") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   cwd=Path.cwd(), env=_worker_env())
    rundir.update_status(folder, **process_identity(process.pid))
    # Reap the child when it exits so it never lingers as a zombie that looks alive.
    threading.Thread(target=process.wait, daemon=True).start()
    return process.pid


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return env


def process_identity(pid: int) -> dict[str, Any]:
    """pid plus its start time: together they name one process even after pids are reused."""
    return {"pid": pid, "pid_started": _start_ticks(pid)}


def _start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot), from /proc; None where unavailable."""
    try:
        fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields_[19]) if fields_[0] not in ("Z", "X") else None


def _worker_alive(pid: Any, started: Any) -> bool:
    """True if pid is still the very process that recorded itself (not a zombie, not reused)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if Path("/proc").is_dir():
        ticks = _start_ticks(pid)
        return ticks is not None and (started is None or ticks == started)
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
