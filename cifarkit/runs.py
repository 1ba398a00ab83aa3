"""Runs as OS processes: launch, list, stop, resume, delete.

Training never happens in the caller's process, so a closed browser tab, a Streamlit rerun or a
UI crash cannot lose a run; the run directory (cifarkit.rundir) is the only shared state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cifarkit import jobs, rundir, settings
from cifarkit.config import RunConfig
from cifarkit.jobs import ACTIVE, RESUMABLE, process_identity, spawn_worker

__all__ = ["ACTIVE", "RESUMABLE", "Run", "RunError", "create", "delete", "launch", "list_damaged",
           "list_runs", "load", "process_identity", "resume", "resume_refusal", "root_dir",
           "spawn_worker", "start_worker", "stop", "wait"]


class RunError(jobs.JobError):
    """A run that does not exist or cannot do what was asked (e.g. resume a running run)."""


KIND = jobs.JobKind("run", rundir.CONFIG, RunConfig, RunError, finished_marker=rundir.EVAL)


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
    run_dir = jobs.new_job_dir(root_dir(root), config.model.architecture.lower())
    config.save(run_dir / rundir.CONFIG)
    return run_dir


def launch(config: RunConfig, root: str | Path | None = None) -> Run:
    """Create a run and start its worker process; returns at once."""
    run_dir = create(config, root)
    start_worker(run_dir)
    return load(run_dir, root)


def start_worker(run_dir: Path, resume: bool = False) -> int:
    """Start `python -m cifarkit train --run-dir ...` detached from this process."""
    arguments = ["train", "--run-dir", str(run_dir.resolve())]
    if resume:
        arguments.append("--resume")
    return spawn_worker(run_dir, arguments, rundir.LOG)


def load(run: str | Path, root: str | Path | None = None) -> Run:
    """A run by id, or by the path of its folder directly inside root (see jobs.job_dir).

    A run whose config cannot be read raises RunError naming the damage (see list_damaged).
    """
    path, config, info, status = jobs.open_job(run, root_dir(root), KIND)
    return Run(path.name, path, config, status, info)


def list_runs(root: str | Path | None = None) -> list[Run]:
    """Every readable run, newest first; damaged ones are in list_damaged, not here."""
    found = []
    for path in jobs.job_dirs(root_dir(root), KIND):
        try:
            found.append(load(path, root))
        except RunError:
            continue
    return found


def list_damaged(root: str | Path | None = None) -> list[jobs.Damaged]:
    """Run folders whose config cannot be read, with the reason (see jobs.damaged_jobs)."""
    return jobs.damaged_jobs(root_dir(root), KIND)


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
    refusal = resume_refusal(current.path)
    if refusal:
        raise RunError(refusal)
    rundir.clear_stop(current.path)
    start_worker(current.path, resume=True)
    return load(current.path, root)


def resume_refusal(run_dir: Path) -> str | None:
    """Why a worker must not resume this run, or None.

    A scored run (eval.json) that trained epochs but whose checkpoint epoch is lost (status.json
    blanked) or whose last.keras is gone would retrain from epoch 1 and replace its best model.
    Checked by runs.resume and again by the worker (training.train) before it touches anything.
    """
    if not (run_dir / rundir.EVAL).is_file() or rundir.completed_epochs(run_dir) == 0:
        return None
    epoch = rundir.read_status(run_dir).get("checkpoint_epoch")
    if epoch and (run_dir / rundir.LAST_MODEL).is_file():
        return None
    return (f"run {run_dir.name} was already scored ({rundir.EVAL}) and has no resume "
            "checkpoint: resuming would retrain it from epoch 1 over its best model")


def delete(run: str | Path, root: str | Path | None = None) -> None:
    """Remove a run directory, damaged ones included; an active run must be stopped first."""
    jobs.delete_job(run, root_dir(root), KIND)
