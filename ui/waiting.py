"""A queued job's place in line, worded the same on Train, Tune and Runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cifarkit import queue


def in_line(job: Any) -> str | None:
    """"queued, 3rd in line, about 4 min" for a job waiting for a device slot; None for a job
    that is not waiting."""
    return places([job])[0]


def places(jobs: Sequence[Any]) -> list[str | None]:
    """in_line for each job, from one look at the line (a table of many jobs); the queue is
    not read at all when none of them is queued."""
    if not any(job.status == "queued" for job in jobs):
        return [None] * len(jobs)
    texts = queue.wait_texts()
    return [texts.get(job.path.resolve()) if job.status == "queued" else None for job in jobs]
