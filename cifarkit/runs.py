"""Runs as OS processes: launch, list, stop, resume, delete.

Training never happens in the caller's process, so a closed browser tab, a Streamlit rerun or a
UI crash cannot lose a run; the run directory (cifarkit.rundir) is the only shared state.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cifarkit import rundir, settings
from cifarkit.config import RunConfig

ACTIVE = ("queued", "running")
RESUMABLE = ("stopped", "interrupted", "failed")


class RunError(ValueError):
    """A run that does not exist or cannot do what was asked (e.g. resume a running run)."""


@dataclass
class Run:
    """A run directory as seen right now."""

    run_id: str
    path: Path
    config: RunConfig
    status: str  # queued | running | completed | failed | stopped | interrupted
    info: dict[str, Any] = field(default_factory=dict)  # status.json

    @property
    def name(self) -> str:
        return self.config.name or self.run_id

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def can_resume(self) -> bool:
        return self.status in RESUMABLE

    @property
    def has_model(self) -> bool:
        return (self.path / rundir.BEST_MODEL).is_file()

    @property
    def has_predictions(self) -> bool:
        return (self.path / rundir.PREDICTIONS).is_file()


def root_dir(root: str | Path | None = None) -> Path:
    return Path(root) if root is not None else settings.runs_dir()


def create(config: RunConfig, root: str | Path | None = None) -> Path:
    """Make runs/<id>/ with a validated config.json and a queued status."""
    config.validate()
    run_dir = rundir.new_job_dir(root_dir(root), config.model.architecture.lower())
    config.save(run_dir / rundir.CONFIG)
    return run_dir


def launch(config: RunConfig, root: str | Path | None = None) -> Run:
    """Create a run and start its worker process; returns at once."""
    run_dir = create(config, root)
    start_worker(run_dir)
    return load(run_dir)


def start_worker(run_dir: Path, resume: bool = False) -> int:
    """Start `python -m cifarkit train --run-dir ...` detached from this process."""
    arguments = ["train", "--run-dir", str(run_dir.resolve())]
    if resume:
        arguments.append("--resume")
    return spawn_worker(run_dir, arguments, rundir.LOG)


def spawn_worker(folder: Path, arguments: list[str], log_name: str) -> int:
    """Start `python -m cifarkit <arguments>` detached, logging to folder/log_name.

    Shared by runs and searches (cifarkit.searches): both mark folder/status.json queued with the
    pid, and effective_status() recognises the worker by the folder name in its command line.
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


def load(run: str | Path, root: str | Path | None = None) -> Run:
    """A run by id (under root) or by path."""
    path = rundir.find_job_dir(run, root_dir(root), rundir.CONFIG)
    if path is None:
        raise RunError(f"no run {str(run)!r} in {root_dir(root)}")
    info = rundir.read_status(path)
    return Run(path.name, path, RunConfig.load(path / rundir.CONFIG), effective_status(path, info),
               info)


def list_runs(root: str | Path | None = None) -> list[Run]:
    """Every run, newest first; unreadable folders are skipped, not fatal."""
    found = []
    for path in rundir.job_dirs(root_dir(root), rundir.CONFIG):
        try:
            found.append(load(path))
        except ValueError:
            continue
    return found


def effective_status(path: Path, info: dict[str, Any]) -> str:
    """A queued/running status whose process is gone means the run was interrupted."""
    status = info.get("status", "queued")
    if status in ACTIVE and not _worker_alive(info.get("pid"), info.get("pid_started")):
        return "interrupted"
    return status


def process_identity(pid: int) -> dict[str, Any]:
    """pid plus its start time: together they name one process even after pids are reused."""
    return {"pid": pid, "pid_started": _start_ticks(pid)}


def _start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot), from /proc; None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19]) if fields[0] not in ("Z", "X") else None


def _worker_alive(pid: Any, started: Any) -> bool:
    """True if pid is still the very process that recorded itself (not a zombie, not reused)."""
    if not isinstance(pid, int):
        return False
    if Path("/proc").is_dir():
        ticks = _start_ticks(pid)
        return ticks is not None and (started is None or ticks == started)
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def stop(run: str | Path, root: str | Path | None = None) -> Run:
    """Ask a run to stop between batches; it keeps its best model and can be resumed."""
    current = load(run, root)
    if not current.is_active:
        raise RunError(f"run {current.run_id} is {current.status}, not running")
    rundir.request_stop(current.path)
    return current


def wait(run: str | Path, timeout: float = 600.0, root: str | Path | None = None) -> Run:
    """Block until the run leaves queued/running (for the CLI and tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = load(run, root)
        if not current.is_active:
            return current
        time.sleep(0.5)
    raise TimeoutError(f"run {run} still active after {timeout:.0f} s")


def resume(run: str | Path, root: str | Path | None = None) -> Run:
    """Continue a stopped, interrupted or failed run from its last checkpoint in a new process."""
    current = load(run, root)
    if not current.can_resume:
        raise RunError(f"run {current.run_id} is {current.status}; only "
                       f"{', '.join(RESUMABLE)} runs can be resumed")
    rundir.clear_stop(current.path)
    start_worker(current.path, resume=True)
    return load(current.path)


def delete(run: str | Path, root: str | Path | None = None) -> None:
    """Remove a run directory; an active run must be stopped first."""
    current = load(run, root)
    if current.is_active:
        raise RunError(f"run {current.run_id} is {current.status}: stop it before deleting")
    shutil.rmtree(current.path)
