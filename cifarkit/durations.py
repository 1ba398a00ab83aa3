"""How long a job will hold a device slot, learnt from the jobs that finished on this machine.

The queue's wait estimates need a duration for each job ahead in line before it has trained a
single batch. The best guide is this machine's own record: completed runs of the same
architecture (on the same data and input size, when there are some) give seconds per epoch and
the fixed cost around training (loading data, testing). Read from status.json and the config
files only, cached briefly: pages ask every few seconds, and finished runs change rarely.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cifarkit import rundir, searchdir, settings
from cifarkit.config import RunConfig
from cifarkit.tuneconfig import TuneConfig

CACHE_SECONDS = 30.0  # finished jobs are read again after this long
_cache: dict[Path, tuple[float, History]] = {}


@dataclass(frozen=True)
class Pace:
    """One finished run: its recipe and how long it took."""

    architecture: str
    recipe: str  # data section and input size, as text: runs of one recipe compare best
    per_epoch: float  # training seconds per epoch
    overhead: float  # seconds in the slot around training (data loading, testing, saving)


@dataclass
class History:
    """The finished runs of one runs folder, and the estimates made from them."""

    paces: list[Pace] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path | None = None) -> History:
        """The completed runs under root (settings.runs_dir()), cached for CACHE_SECONDS."""
        from cifarkit import jobs, runs  # runs -> jobs -> queue -> this module

        root = (root or settings.runs_dir()).resolve()
        cached = _cache.get(root)
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        folders = jobs.job_dirs(runs.KIND, root)  # run ids only, nothing leading outside root
        history = cls([pace for pace in map(_pace, folders) if pace is not None])
        _cache[root] = (time.monotonic(), history)
        return history

    def pace(self, config: RunConfig) -> tuple[float, float] | None:
        """(seconds per epoch, overhead) for a run config: the median over finished runs of
        its recipe, else of its architecture; None when none finished here."""
        architecture, recipe = _recipe(config)
        same = [pace for pace in self.paces if pace.architecture == architecture]
        alike = [pace for pace in same if pace.recipe == recipe] or same
        if not alike:
            return None
        return (statistics.median(pace.per_epoch for pace in alike),
                statistics.median(pace.overhead for pace in alike))

    def expected_seconds(self, kind: str, folder: Path) -> float | None:
        """How long the job in folder will hold its slot, from the start; None when unknown.

        A run: its epochs at its recipe's pace. A search: every planned trial's epochs at the
        pace of its base model (trials vary the model's size, so this is rougher).
        """
        if kind == "search":
            tune = _config(TuneConfig, folder / searchdir.TUNE)
            base, epochs = (tune.base, tune.max_trials * tune.epochs_per_trial) if tune \
                else (None, 0)
        else:
            base = _config(RunConfig, folder / rundir.CONFIG)
            epochs = base.training.epochs if base else 0
        pace = self.pace(base) if base else None
        return None if pace is None else pace[1] + epochs * pace[0]


def planned_epochs(folder: Path) -> int | None:
    """The epochs a run's config asks for; None when it cannot be read."""
    config = _config(RunConfig, folder / rundir.CONFIG)
    return config.training.epochs if config else None


def _config(config_class: Any, path: Path) -> Any:
    """A run's or search's config, or None when it cannot be read (listed as damaged)."""
    try:
        return config_class.load(path)
    except (OSError, ValueError):
        return None


def _pace(folder: Path) -> Pace | None:
    """A completed, trained run's pace from status.json; None for anything else."""
    info = rundir.read_status(folder)
    epochs, seconds = info.get("epochs_run"), info.get("train_seconds")
    if info.get("status") != "completed" or not epochs or not seconds or info.get("imported"):
        return None
    config = _config(RunConfig, folder / rundir.CONFIG)
    if config is None:
        return None
    # Time in the slot: from taking it (TensorFlow's import included) or, for runs from
    # before the queue, from the start of training, to the end of testing.
    started = info.get("slot_taken") or info.get("started")
    finished = info.get("finished")
    wall = finished - started if started and finished and finished > started else seconds
    return Pace(*_recipe(config), seconds / epochs, max(wall - seconds, 0.0))


def _recipe(config: RunConfig) -> tuple[str, str]:
    """(architecture, its data section and input size as text): what makes two runs' paces
    comparable."""
    return config.model.architecture, repr((config.data, config.model.input_size))
