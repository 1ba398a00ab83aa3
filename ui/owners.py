"""Whose jobs this browser session sees and may act on: the one filter every page uses.

The package decides (cifarkit.classroom.may_see / may_act) and enforces it again in the
lifecycle verbs; this module only asks it for the person signed in here, so a page never shows
another student's job unless the class allows it, nor offers buttons the package would refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from streamlit.delta_generator import DeltaGenerator

from cifarkit import classroom
from ui.identity import current_person


class HasStatus(Protocol):
    job_id: str
    info: dict[str, Any]  # status.json: owner and owner_name are recorded there at create


Job = TypeVar("Job", bound=HasStatus)


def visible(jobs: Iterable[Job]) -> list[Job]:
    """The jobs the person may see, in their order: their own, plus others' when the teacher
    lets students see each other's (or the person is a teacher)."""
    person = current_person()
    return [job for job in jobs if classroom.may_see(person, job.info)]


def may_act(job: HasStatus) -> bool:
    """True when the person may stop, resume or delete the job (its owner, or a teacher)."""
    return classroom.may_act(current_person(), job.info)


def is_own(job: HasStatus) -> bool:
    """True for the person's own job, and for one made before jobs had owners."""
    owner = job.info.get("owner")
    return owner is None or owner == current_person().key


def owner_label(job: HasStatus) -> str:
    """Who a job belongs to, as a table cell: "you", the owner's name, or "–" (no owner)."""
    if job.info.get("owner") is None:
        return "–"
    return "you" if is_own(job) else str(job.info.get("owner_name") or job.info["owner"])


def owner_suffix(job: HasStatus) -> str:
    """" · Alice's" after a picker label of someone else's job ("" for the person's own), so
    two students' runs of the same name can be told apart."""
    return "" if is_own(job) else f" · {owner_label(job)}'s"


def picker_labels(jobs: Iterable[Job], label: Callable[[Job], str]) -> dict[str, str]:
    """job id -> label(job), plus whose it is for someone else's job. Computed now, in the
    script run: a picker's format_func may be called later, outside it (AppTest does), where
    no person is known."""
    return {job.job_id: label(job) + owner_suffix(job) for job in jobs}


def read_only_note(job: HasStatus) -> str | None:
    """"belongs to Alice · read-only" where the person may look but not act; None where they
    may act."""
    if may_act(job):
        return None
    return f"belongs to {owner_label(job)} · read-only"


def show_read_only(container: DeltaGenerator, job: HasStatus) -> bool:
    """The lock line ("belongs to Alice · read-only") in place of buttons the person may not
    use; True when it was shown (the caller then offers none)."""
    note = read_only_note(job)
    if note:
        container.caption(f":material/lock: {note}")
    return bool(note)
