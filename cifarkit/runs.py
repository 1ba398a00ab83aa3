"""Training runs: the run kind of job (cifarkit.jobs), and what only runs have.

Training never happens in the caller's process, so a closed browser tab, a Streamlit rerun or a
UI crash cannot lose a run; the run directory (cifarkit.rundir) is the only shared state.
"""

from __future__ import annotations

from cifarkit import jobs, rundir, settings
from cifarkit.config import RunConfig
from cifarkit.jobs import ACTIVE, RESUMABLE, RunError

__all__ = ["ACTIVE", "KIND", "RESUMABLE", "Run", "RunError", "create", "delete", "launch",
           "list_damaged", "list_runs", "load", "resume", "root_dir", "stop", "wait"]


class Run(jobs.Job):
    """A run directory as seen right now."""

    config: RunConfig  # narrowed for readers; the fields are jobs.Job's

    @property
    def run_id(self) -> str:
        return self.job_id

    @property
    def has_model(self) -> bool:
        return (self.path / rundir.BEST_MODEL).is_file()

    @property
    def has_predictions(self) -> bool:
        return (self.path / rundir.PREDICTIONS).is_file()


KIND = jobs.JobKind(
    "run", "runs", rundir.CONFIG, RunConfig, RunError, Run, settings.runs_dir,
    label=lambda config: config.model.architecture.lower(), worker=("train", "--run-dir"),
    log=rundir.LOG, finished_marker=rundir.EVAL, resume_refusal=rundir.resume_refusal)

root_dir = KIND.root
(create, launch, load, list_runs, list_damaged, stop, resume, wait,
 delete) = jobs.lifecycle(KIND)

