"""Hyperparameter searches as OS processes: launch, list, progress, stop, resume, best, delete.

A search runs like a training run (cifarkit.runs): its own worker process, a folder that is the
only shared state (cifarkit.searchdir), a STOP file, and a dead worker shown as "interrupted".
No Keras here, so the Tune page can poll progress cheaply.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cifarkit import jobs, rundir, searchdir, settings
from cifarkit.config import RunConfig
from cifarkit.jobs import ACTIVE, RESUMABLE
from cifarkit.tuneconfig import TuneConfig, config_for

__all__ = ["ACTIVE", "RESUMABLE", "Search", "SearchError", "best_run_config", "create_search",
           "delete_search", "launch_search", "list_damaged", "list_searches", "load_search",
           "resume_search", "search_progress", "stop_search", "trial_run_config", "trials_table",
           "wait_search"]
FINISHED_TRIALS = ("completed", "failed")


class SearchError(jobs.JobError):
    """A search that does not exist or cannot do what was asked (e.g. resume a running one)."""


KIND = jobs.JobKind("search", searchdir.TUNE, TuneConfig, SearchError)


@dataclass
class Search:
    """A search directory as seen right now."""

    search_id: str
    path: Path
    config: TuneConfig
    status: str  # queued | running | completed | failed | stopped | interrupted
    info: dict[str, Any] = field(default_factory=dict)  # status.json

    @property
    def name(self) -> str:
        return self.config.name or self.search_id

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def can_resume(self) -> bool:
        return self.status in RESUMABLE


def root_dir(root: str | Path | None = None) -> Path:
    return Path(root) if root is not None else settings.searches_dir()


def create_search(tune: TuneConfig, root: str | Path | None = None) -> Path:
    """Make searches/<id>/ with a validated tune.json and a queued status."""
    tune.validate()
    path = jobs.new_job_dir(root_dir(root), tune.algorithm)
    tune.save(path / searchdir.TUNE)
    return path


def launch_search(tune: TuneConfig, root: str | Path | None = None) -> Search:
    """Create a search and start its worker process; returns at once."""
    path = create_search(tune, root)
    start_worker(path)
    return load_search(path, root)


def start_worker(path: Path, resume: bool = False) -> int:
    """Start `python -m cifarkit tune --search-dir ...` detached from this process."""
    arguments = ["tune", "--search-dir", str(path.resolve())]
    if resume:
        arguments.append("--resume")
    return jobs.spawn_worker(path, arguments, searchdir.LOG)


def load_search(search: str | Path, root: str | Path | None = None) -> Search:
    """A search by id, or by the path of its folder directly inside root (see jobs.job_dir).

    A search whose tune.json cannot be read raises SearchError naming the damage.
    """
    path, config, info, status = jobs.open_job(search, root_dir(root), KIND)
    return Search(path.name, path, config, status, info)


def list_searches(root: str | Path | None = None) -> list[Search]:
    """Every readable search, newest first; damaged ones are in list_damaged, not here."""
    found = []
    for path in jobs.job_dirs(root_dir(root), KIND):
        try:
            found.append(load_search(path, root))
        except SearchError:
            continue
    return found


def list_damaged(root: str | Path | None = None) -> list[jobs.Damaged]:
    """Search folders whose tune.json cannot be read, with the reason (jobs.damaged_jobs)."""
    return jobs.damaged_jobs(root_dir(root), KIND)


def stop_search(search: str | Path, root: str | Path | None = None) -> Search:
    """Ask a search to stop between batches; finished trials are kept and it can be resumed."""
    current = load_search(search, root)
    if not current.is_active:
        raise SearchError(f"search {current.search_id} is {current.status}, not running")
    rundir.request_stop(current.path)
    return current


def resume_search(search: str | Path, root: str | Path | None = None) -> Search:
    """Continue a stopped, interrupted or failed search in a new process.

    keras-tuner reloads its oracle (overwrite=False): finished trials are kept, and a trial that
    was cut short is run again from its start with the same hyperparameters.
    """
    current = load_search(search, root)
    if not current.can_resume:
        raise SearchError(f"search {current.search_id} is {current.status}; only "
                          f"{', '.join(RESUMABLE)} searches can be resumed")
    rundir.clear_stop(current.path)
    start_worker(current.path, resume=True)
    return load_search(current.path, root)


def wait_search(search: str | Path, timeout: float = 600.0,
                root: str | Path | None = None) -> Search:
    """Block until the search leaves queued/running (for the CLI and tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = load_search(search, root)
        if not current.is_active:
            return current
        time.sleep(0.5)
    raise TimeoutError(f"search {search} still active after {timeout:.0f} s")


def delete_search(search: str | Path, root: str | Path | None = None) -> None:
    """Remove a search directory, damaged ones included; an active search must be stopped first."""
    jobs.delete_job(search, root_dir(root), KIND)


def trials_table(search: Search | str | Path) -> pd.DataFrame:
    """Every trial on disk, one row each (columns: see searchdir.trial_row)."""
    search = _loaded(search)
    names = search.config.hyperparameters()
    rows = [searchdir.trial_row(trial, names, search.config.epochs_per_trial)
            for trial in searchdir.read_trials(search.path)]
    columns = ["trial", "status", *names, "epochs", "score", "val_accuracy", "val_loss", "error"]
    return pd.DataFrame(rows, columns=columns)


def search_progress(search: Search | str | Path) -> dict[str, Any]:
    """Everything a progress view shows, read from disk in one call.

    Keys: status, error, objective, direction, planned (N), trial (k: the one running, or the
    number finished), finished, table (DataFrame of finished trials), best (row dict or None),
    current (the running trial's values with epoch/epochs/step/steps, or None) and unfinished
    (ids of trials a stop or crash cut short: not scored, re-run by a resume).
    """
    search = load_search(search.path if isinstance(search, Search) else search)  # fresh status
    table = trials_table(search)
    finished = table[table["status"].isin(FINISHED_TRIALS)].reset_index(drop=True)
    pending = table[~table["status"].isin(FINISHED_TRIALS)]
    current = _current_trial(search, pending) if search.is_active else None
    return {
        "status": search.status, "error": search.info.get("error"),
        "objective": search.config.objective, "direction": search.config.direction,
        "planned": int(search.info.get("planned_trials") or search.config.max_trials),
        "trial": len(finished) + (1 if current else 0), "finished": len(finished),
        "table": finished, "best": _best_row(finished, search.config.direction),
        "current": current,
        "unfinished": [] if search.is_active else [int(t) for t in pending["trial"]],
    }


def _best_row(finished: pd.DataFrame, direction: str) -> dict[str, Any] | None:
    scored = finished.dropna(subset=["score"])
    if scored.empty:
        return None
    index = scored["score"].idxmax() if direction == "max" else scored["score"].idxmin()
    return scored.loc[index].to_dict()


def _current_trial(search: Search, pending: pd.DataFrame) -> dict[str, Any] | None:
    """The running trial's hyperparameters and how far its training is (metrics.jsonl)."""
    if pending.empty:
        return None
    current = pending.iloc[-1].to_dict()
    batch = rundir.latest_batch(search.path) or {}
    current.update(epoch=batch.get("epoch"), epochs=search.info.get("trial_epochs"),
                   step=batch.get("step"), steps=batch.get("steps"))
    return current


def trial_run_config(search: Search | str | Path, trial: int) -> RunConfig:
    """The RunConfig that trains one trial's hyperparameters for the base's full epochs."""
    search = _loaded(search)
    for raw in searchdir.read_trials(search.path):
        if int(raw["trial_id"]) == trial:
            values = raw.get("hyperparameters", {}).get("values", {})
            name = f"{search.name} trial {trial}"
            return config_for(values, search.config).with_updates(name=name)
    raise SearchError(f"search {search.search_id} has no trial {trial}")


def best_run_config(search: Search | str | Path) -> RunConfig:
    """config_for on the best finished trial, ready for runs.launch ("train the best")."""
    search = _loaded(search)
    best = search_progress(search)["best"]
    if best is None:
        raise SearchError(f"search {search.search_id} has no finished trial with a score yet")
    return trial_run_config(search, int(best["trial"]))


def _loaded(search: Search | str | Path) -> Search:
    return search if isinstance(search, Search) else load_search(search)
