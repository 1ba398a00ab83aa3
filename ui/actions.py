"""Button actions on a job (stop, resume, delete): a table per page, one way to perform them."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cifarkit.jobs import JobError

Action = Callable[[str], str]  # job id -> the message to show when it worked


def perform(actions: Mapping[str, Action], action: str, job_id: str) -> tuple[bool, str]:
    """(True, the action's message) or (False, why not). Only the listed actions exist: an
    unknown name is refused, never taken for a delete."""
    if action not in actions:
        return False, f"unknown action {action!r}"
    try:
        return True, actions[action](job_id)
    except (JobError, OSError) as error:
        return False, str(error)
