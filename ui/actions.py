"""Button actions on a job (stop or cancel, resume, delete): one table per kind, one way to
perform them, always on behalf of the person signed in (the package checks they may)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from streamlit.delta_generator import DeltaGenerator

from cifarkit import runs, searches
from cifarkit.classroom import Person
from cifarkit.jobs import JobError
from ui.identity import current_person

Action = Callable[[str, Person], str]  # (job id, who asks) -> the message to show when it worked


def perform(actions: Mapping[str, Action], action: str, job_id: str,
            by: Person | None = None) -> tuple[bool, str]:
    """(True, the action's message) or (False, why not). Only the listed actions exist: an
    unknown name is refused, never taken for a delete. `by` defaults to the person signed in;
    the package refuses someone who may not act on the job (classroom.NotAllowed)."""
    if action not in actions:
        return False, f"unknown action {action!r}"
    try:
        return True, actions[action](job_id, by or current_person())
    except (JobError, OSError) as error:
        return False, str(error)


def cancel_button(container: DeltaGenerator, noun: str, job_id: str, key: str,
                  act: Callable[[str, str], None]) -> None:
    """Cancel for a job still waiting in line: `act("stop", job_id)`, since a stop reaching a
    queued job ends it "cancelled" (resumable) before it trains."""
    container.button("Cancel", key=key, icon=":material/cancel:", on_click=act,
                     args=("stop", job_id),
                     help=f"Takes the {noun} out of the queue; Resume puts it back in line.")


def stop_run(run_id: str, by: Person) -> str:
    """Stop a running run, or cancel a queued one (it leaves the line as "cancelled")."""
    run = runs.stop(run_id, by=by)
    if run.status == "queued":
        return f"Cancelled **{run.name}**: it leaves the queue. Resume puts it back in line."
    return f"Asked **{run.name}** to stop; it finishes the current batch first."


def resume_run(run_id: str, by: Person) -> str:
    run = runs.resume(run_id, by=by)
    return f"Resumed **{run.name}**: it is in line for the next free slot."


def delete_run(run_id: str, by: Person) -> str:
    try:
        name = runs.load(run_id).name
    except runs.RunError:  # a damaged run has no readable name
        name = run_id
    runs.delete(run_id, by=by)
    return f"Deleted **{name}**."


def stop_search(search_id: str, by: Person) -> str:
    search = searches.stop_search(search_id, by=by)
    if search.status == "queued":
        return "Cancelled the search: it leaves the queue. Resume puts it back in line."
    return "Stopping after the current batch; finished trials are kept."


def resume_search(search_id: str, by: Person) -> str:
    searches.resume_search(search_id, by=by)
    return "Resumed: finished trials are kept, a cut-short trial runs again."


def delete_search(search_id: str, by: Person) -> str:
    searches.delete_search(search_id, by=by)
    return "Deleted the search."


RUN_ACTIONS: dict[str, Action] = {"stop": stop_run, "resume": resume_run, "delete": delete_run}
SEARCH_ACTIONS: dict[str, Action] = {"stop": stop_search, "resume": resume_search,
                                     "delete": delete_search}
