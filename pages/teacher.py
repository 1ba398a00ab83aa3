"""Class: the teacher's page. The device queue (cancel, move), every student's runs and searches
(stop, delete) and the class limits; the package checks each action again (teacher only)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from cifarkit import classroom, jobs, queue, runs, searches
from cifarkit.config import ConfigError
from cifarkit.models.catalog import MODELS
from ui.actions import RUN_ACTIONS, SEARCH_ACTIONS, perform
from ui.format import status_cells, status_column
from ui.identity import current_person
from ui.legacy import enter_app

enter_app()  # first: if Streamlit ran this file alone, rerun it inside app.py

KINDS = {"run": (runs.KIND, RUN_ACTIONS), "search": (searches.KIND, SEARCH_ACTIONS)}
FLASH = "class_flash"  # (ok, text) of the last action, shown after the callback's rerun
QUEUE_FLASH = "class_queue_flash"  # the same for the queue's buttons, shown in its fragment
QUEUE_REFRESH_SECONDS = 5  # the line redraws itself: jobs start, finish and join meanwhile
REFUSAL = ("This page is for the teacher. Sign in with the teacher passcode (sidebar) or a "
           "teacher's account.")
NO_TEACHER = ("This page is for the teacher, and this server names none: set teacher_passcode "
              "(or teacher_emails) under [cifarkit] in .streamlit/secrets.toml.")


def show_flash(key: str = FLASH) -> None:
    flash = st.session_state.pop(key, None)
    if flash:
        (st.success if flash[0] else st.error)(flash[1])


def act(kind: str, action: str, job_id: str, flash: str = FLASH) -> None:
    """Stop (a queued job: cancel) or delete a job as the teacher (a button callback)."""
    st.session_state[flash] = perform(KINDS[kind][1], action, job_id, by=current_person())


def move(job_id: str, position: int) -> None:
    """Put a waiting job at `position` in the line (a button callback); the queue refuses a
    job that has left the line meanwhile, or a position outside it."""
    try:
        queue.move(job_id, position, by=current_person())
        st.session_state[QUEUE_FLASH] = (True, f"Moved {job_id} to position {position}.")
    except jobs.JobError as error:
        st.session_state[QUEUE_FLASH] = (False, str(error))


def job_name(kind: str, entry: queue.QueueEntry) -> str:
    """The job's own name for the queue table; its id when its folder cannot be read."""
    try:
        return jobs.load(KINDS[kind][0], entry.path).name
    except (jobs.JobError, OSError):
        return entry.job_id


@st.fragment(run_every=QUEUE_REFRESH_SECONDS)
def queue_section() -> None:
    """The line, redrawn every few seconds on its own (its buttons rerun only this part)."""
    st.subheader("Queue")
    show_flash(QUEUE_FLASH)
    line = queue.entries()
    if not line:
        st.info("No job is waiting or running.", icon=":material/hourglass_empty:")
        return
    waits = queue.waits(line)
    st.dataframe(pd.DataFrame([{
        "Position": entry.position or "running", "Job": job_name(entry.kind, entry),
        "Owner": entry.owner_name or "–", "Kind": entry.kind, "State": entry.state,
        "Wait": wait_cell(entry, waits.get(entry.job_id))} for entry in line]),
        hide_index=True, width="stretch")
    queue_actions(line)


def wait_cell(entry: queue.QueueEntry, seconds: float | None) -> str:
    if entry.state == "running":
        return f"in slot {entry.slot}"
    return queue.about(seconds) if seconds is not None else "unknown"


def queue_actions(line: list[queue.QueueEntry]) -> None:
    """Pick a job in the line: cancel it, or move it up, down or to the front."""
    waiting = [entry for entry in line if entry.position is not None]
    if not waiting:
        return
    entry = st.selectbox("Waiting job", waiting, key="class_queue_job",
                         format_func=lambda item: f"{item.position}. {item.job_id} · "
                         f"{item.owner_name or 'no owner'}")
    up, down, front, cancel = st.columns(4)
    up.button("Move up", key="class_up", icon=":material/arrow_upward:",
              disabled=entry.position == 1, on_click=move, args=(entry.job_id, entry.position - 1))
    down.button("Move down", key="class_down", icon=":material/arrow_downward:",
                disabled=entry.position == len(waiting), on_click=move,
                args=(entry.job_id, entry.position + 1))
    front.button("To front", key="class_front", icon=":material/vertical_align_top:",
                 disabled=entry.position == 1, on_click=move, args=(entry.job_id, 1))
    cancel.button("Cancel", key="class_cancel", icon=":material/cancel:", on_click=act,
                  args=(entry.kind, "stop", entry.job_id, QUEUE_FLASH),
                  help="Take it out of the line (status cancelled); its owner can resume it.")


def all_jobs() -> list[tuple[str, Any]]:
    """(kind, job) for every run and search, newest first."""
    found = [(kind, job) for kind, (job_kind, _) in KINDS.items()
             for job in jobs.list_jobs(job_kind)]
    return sorted(found, key=lambda pair: pair[1].info.get("created") or 0, reverse=True)


def jobs_section() -> None:
    st.subheader("Everyone's runs and searches")
    everything = all_jobs()
    if not everything:
        st.info("Nobody has trained anything yet.", icon=":material/inbox:")
        return
    table = pd.DataFrame([{"Owner": job.info.get("owner_name") or "–", "Name": job.name,
                           "Kind": kind, "Status": job.status, "Id": job.job_id}
                          for kind, job in everything])
    table["Status"] = status_cells(table["Status"])
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"Status": status_column()})
    kind, job = st.selectbox("Job", everything, key="class_job",
                             format_func=lambda pair: f"{pair[1].name} · "
                             f"{pair[1].info.get('owner_name') or 'no owner'} · {pair[1].status}")
    stop, sure, delete = st.columns(3, vertical_alignment="bottom")
    stop.button("Stop" if job.status != "queued" else "Cancel", key="class_stop",
                icon=":material/stop_circle:",
                disabled=not job.is_active, on_click=act, args=(kind, "stop", job.job_id))
    confirmed = sure.checkbox("I am sure", key=f"class_sure_{job.job_id}",
                              disabled=job.is_active, help="Deleting removes the job's folder "
                              "with its models and results. It cannot be undone.")
    delete.button("Delete", key="class_delete", icon=":material/delete:",
                  disabled=job.is_active or not confirmed, on_click=act,
                  args=(kind, "delete", job.job_id),
                  help="Stop it first." if job.is_active else "Tick “I am sure” first.")


LIMIT_KEYS = {"max_epochs": "class_max_epochs", "max_minutes": "class_max_minutes",
              "max_jobs": "class_max_jobs", "architectures": "class_architectures",
              "input_sizes": "class_input_sizes", "students_see_others": "class_see_others"}


def limits_section() -> None:
    """The class limits form; an empty box means no limit. The package checks the values."""
    st.subheader("Class limits")
    rules, problem = classroom.read_class_rules()
    if problem:
        st.warning(problem, icon=":material/warning:")
    with st.form("class_limits"):
        epochs, minutes, count = st.columns(3)
        epochs.number_input("Max epochs per job", value=rules.max_epochs, step=1,
                            placeholder="no limit", key=LIMIT_KEYS["max_epochs"],
                            help="A search counts trials × epochs per trial.")
        minutes.number_input("Max training minutes per job", value=as_float(rules.max_minutes),
                             step=1.0, placeholder="no limit", key=LIMIT_KEYS["max_minutes"])
        count.number_input("Queued or running jobs per student", value=rules.max_jobs, step=1,
                           placeholder="no limit", key=LIMIT_KEYS["max_jobs"])
        st.multiselect("Allowed architectures", list(MODELS), default=list(rules.architectures),
                       placeholder="all", key=LIMIT_KEYS["architectures"])
        st.text_input("Allowed input sizes (pixels)", ", ".join(map(str, rules.input_sizes)),
                      placeholder="all; e.g. 32, 64, 96", key=LIMIT_KEYS["input_sizes"])
        st.checkbox("Students see each other's jobs (read-only)",
                    value=rules.students_see_others, key=LIMIT_KEYS["students_see_others"])
        st.form_submit_button("Save class limits", key="class_save", type="primary",
                              on_click=save_limits)


def as_float(value: float | None) -> float | None:
    """A float box needs a float (a limit set on the CLI may be saved as a whole number)."""
    return None if value is None else float(value)


def save_limits() -> None:
    """The form's values through classroom.set_class_rules, which refuses a bad one by field."""
    values = {field: st.session_state.get(key) for field, key in LIMIT_KEYS.items()}
    values["input_sizes"] = [int(part) if part.isdigit() else part
                             for part in str(values["input_sizes"] or "").replace(",", " ").split()]
    try:
        classroom.set_class_rules(current_person(), **values)
        st.session_state[FLASH] = (True, "Saved the class limits: they apply to every new or "
                                   "resumed job.")
    except (ConfigError, jobs.JobError) as error:
        st.session_state[FLASH] = (False, f"Not saved: {error}")


st.title("Class")
if not current_person().teacher:
    configured = classroom.teachers()
    st.error(REFUSAL if configured.passcode or configured.emails else
             f"{NO_TEACHER} {configured.problem}".strip(), icon=":material/block:")
    st.stop()
show_flash()
queue_section()
jobs_section()
limits_section()
