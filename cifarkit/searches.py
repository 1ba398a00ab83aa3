"""Hyperparameter searches: the search kind of job (cifarkit.jobs), and reading its trials.

A search lives like a training run: its own worker process, a folder that is the only shared
state (cifarkit.searchdir), a STOP file, and a dead worker shown as "interrupted". No Keras here,
so the Tune page can poll progress cheaply.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cifarkit import jobs, rundir, searchdir, settings
from cifarkit.config import RunConfig
from cifarkit.jobs import ACTIVE, RESUMABLE, SearchError
from cifarkit.tuneconfig import TuneConfig, config_for

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ACTIVE", "KIND", "RESUMABLE", "Search", "SearchError", "best_run_config",
           "create_search", "delete_search", "launch_search", "list_damaged", "list_searches",
           "load_search", "resume_search", "search_progress", "stop_search", "trial_run_config",
           "trials_table", "wait_search"]
FINISHED_TRIALS = ("completed", "failed")


class Search(jobs.Job):
    """A search directory as seen right now."""

    config: TuneConfig  # narrowed for readers; the fields are jobs.Job's

    @property
    def search_id(self) -> str:
        return self.job_id


# keras-tuner reloads its oracle on resume (overwrite=False): finished trials are kept, and a
# trial that was cut short runs again from its start with the same hyperparameters.
KIND = jobs.JobKind(
    "search", "searches", searchdir.TUNE, TuneConfig, SearchError, Search,
    settings.searches_dir, label=lambda tune: tune.algorithm,
    worker=("tune", "--search-dir"), log=searchdir.LOG)

root_dir = KIND.root
(create_search, launch_search, load_search, list_searches, list_damaged, stop_search,
 resume_search, wait_search, delete_search) = jobs.lifecycle(KIND)


def trials_table(search: Search | str | Path) -> pd.DataFrame:
    """Every trial on disk, one row each (columns: see searchdir.trial_row)."""
    import pandas as pd  # not at the top: a worker waiting in the queue imports this module

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
