"""The Class page (pages/teacher.py): teachers only; the queue with cancel and moves, everyone's
jobs with stop and delete, and the class limits saved through cifarkit.classroom.

Queued jobs are fabricated: a queued run (run_factory, a sleeping stand-in worker) is put in line
with queue.enqueue under its stand-in's identity, so the queue sees a live waiter; no worker
trains and no slot is taken.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cifarkit import classroom, processes, queue, rundir, runs, settings
from cifarkit.classroom import ClassRules, Person
from tests.app.conftest import give_to, open_page, page_path, rerun

TEACHER_PAGE = page_path("pages/teacher.py")
TEACHER = Person("teacher-1", "Ms Tan", teacher=True)
ALICE, BOB = Person("alice-1", "Alice"), Person("bob-1", "Bob")
QUEUE_BUTTONS = ("class_up", "class_down", "class_front", "class_cancel")


def open_class_page(person: Person = TEACHER):
    return open_page(TEACHER_PAGE, 60, person=person)


@pytest.fixture
def line(run_factory) -> list[runs.Run]:
    """Three queued runs in line, in this order: Alice's, Bob's, Alice's."""
    made = []
    for owner in (ALICE, BOB, ALICE):
        run = give_to(runs.KIND, run_factory("queued", name=f"{owner.name} {len(made) + 1}"),
                      owner)
        queue.enqueue(run.path, "run", processes.process_identity(run.info["pid"]))
        made.append(run)
    assert [entry.job_id for entry in queue.entries()] == [run.run_id for run in made]
    return made


def in_line() -> list[str]:
    return [entry.job_id for entry in queue.entries() if entry.position is not None]


def click(at, key: str):
    """Click the page's button with this key and rerun."""
    at.button(key=key).click()
    return rerun(at)


def flash(at) -> list[str]:
    return [item.value for item in [*at.success, *at.error]]


@pytest.fixture
def passcode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's secrets name a teacher passcode (CIFARKIT_SECRETS)."""
    (tmp_path / "secrets.toml").write_text('[cifarkit]\nteacher_passcode = "owl-7"\n')
    monkeypatch.setenv("CIFARKIT_SECRETS", str(tmp_path / "secrets.toml"))


def test_a_student_reaching_the_page_is_refused_and_sees_nothing_of_the_class(
        line, passcode) -> None:
    at = open_class_page(ALICE)
    assert [item.value for item in at.error] == [
        "This page is for the teacher. Sign in with the teacher passcode (sidebar) or a "
        "teacher's account."]
    assert not at.dataframe and not at.button and not at.subheader


def test_without_a_configured_teacher_the_refusal_says_how_to_name_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFARKIT_SECRETS", str(tmp_path / "missing.toml"))
    at = open_class_page(ALICE)
    assert [item.value for item in at.error] == [
        "This page is for the teacher, and this server names none: set teacher_passcode (or "
        "teacher_emails) under [cifarkit] in .streamlit/secrets.toml. no teacher is configured: "
        f"CIFARKIT_SECRETS names no file ({tmp_path / 'missing.toml'})"]


def test_the_teacher_sees_the_line_with_position_job_owner_kind_state_and_wait(line) -> None:
    at = open_class_page()
    table = at.dataframe[0].value
    assert list(table.columns) == ["Position", "Job", "Owner", "Kind", "State", "Wait"]
    assert table["Position"].tolist() == [1, 2, 3]
    assert table["Job"].tolist() == ["Alice 1", "Bob 2", "Alice 3"]
    assert table["Owner"].tolist() == ["Alice", "Bob", "Alice"]
    assert set(table["Kind"]) == {"run"} and set(table["State"]) == {"queued"}
    assert table["Wait"].tolist()[0] == "starting"  # a free slot: the first starts now


def pick_waiting(at, run: runs.Run):
    at.selectbox(key="class_queue_job").set_value(
        next(entry for entry in queue.entries() if entry.job_id == run.run_id))
    return rerun(at)


def test_to_front_then_down_then_up_reorder_the_line(line) -> None:
    first, second, third = (run.run_id for run in line)
    at = pick_waiting(open_class_page(), line[2])
    at = click(at, "class_front")
    assert in_line() == [third, first, second]
    assert flash(at) == [f"Moved {third} to position 1."]
    at = pick_waiting(at, line[2])
    at = click(at, "class_down")
    assert in_line() == [first, third, second]
    at = pick_waiting(at, line[1])
    at = click(at, "class_up")
    assert in_line() == [first, second, third]
    assert at.dataframe[0].value["Job"].tolist() == ["Alice 1", "Bob 2", "Alice 3"]


def test_moves_that_would_leave_the_line_are_disabled(line) -> None:
    at = pick_waiting(open_class_page(), line[0])
    assert [at.button(key=key).label for key in QUEUE_BUTTONS] == [
        "Move up", "Move down", "To front", "Cancel"]
    assert [at.button(key=key).disabled for key in QUEUE_BUTTONS] == [True, False, True, False]
    at = pick_waiting(at, line[2])
    assert [at.button(key=key).disabled for key in QUEUE_BUTTONS] == [False, True, False, False]


def test_cancel_asks_a_students_queued_job_to_leave_the_line(line) -> None:
    at = pick_waiting(open_class_page(), line[1])
    at = click(at, "class_cancel")
    assert rundir.stop_requested(line[1].path)
    assert not any(rundir.stop_requested(run.path) for run in (line[0], line[2]))
    assert flash(at) == ["Cancelled **Bob 2**: it leaves the queue. Resume puts it back in line."]


def test_the_teacher_deletes_a_students_finished_run_and_nothing_else(run_factory) -> None:
    kept = give_to(runs.KIND, run_factory("completed", name="kept"), ALICE)
    gone = give_to(runs.KIND, run_factory("completed", name="gone"), BOB)
    at = open_class_page()
    jobs_table = at.dataframe[0].value  # no queue: the jobs table comes first
    assert sorted(zip(jobs_table["Owner"], jobs_table["Name"], strict=True)) == [
        ("Alice", "kept"), ("Bob", "gone")]
    at.selectbox(key="class_job").set_value(("run", runs.load(gone.path)))
    at = rerun(at)
    delete = at.button(key="class_delete")
    assert delete.disabled  # not before "I am sure"
    at.checkbox(key=f"class_sure_{gone.run_id}").check()
    at = rerun(at)
    at = click(at, "class_delete")
    assert not gone.path.exists()
    assert sorted(path.name for path in settings.runs_dir().iterdir()) == [kept.run_id]
    assert flash(at) == ["Deleted **gone**."]


def test_the_teacher_stops_a_students_running_run(run_factory) -> None:
    running = give_to(runs.KIND, run_factory("running", name="busy"), ALICE)
    at = open_class_page()
    at = click(at, "class_stop")
    assert rundir.stop_requested(running.path)
    assert flash(at) == ["Asked **busy** to stop; it finishes the current batch first."]


def limits_form(at, **values: object):
    """Fill the limits form (keys as LIMIT_KEYS names them) and submit it."""
    for key, value in values.items():
        element = {"max_epochs": at.number_input(key="class_max_epochs"),
                   "max_minutes": at.number_input(key="class_max_minutes"),
                   "max_jobs": at.number_input(key="class_max_jobs"),
                   "architectures": at.multiselect(key="class_architectures"),
                   "input_sizes": at.text_input(key="class_input_sizes"),
                   "students_see_others": at.checkbox(key="class_see_others")}[key]
        element.set_value(value)
    return click(at, "class_save")


def test_the_limits_form_saves_through_the_package() -> None:
    at = limits_form(open_class_page(), max_epochs=20, max_minutes=15.0, max_jobs=2,
                     architectures=["simple_cnn", "resnet_fast"], input_sizes="32, 64",
                     students_see_others=True)
    assert flash(at) == ["Saved the class limits: they apply to every new or resumed job."]
    assert classroom.class_rules() == ClassRules(
        max_epochs=20, max_minutes=15.0, max_jobs=2, architectures=("simple_cnn", "resnet_fast"),
        input_sizes=(32, 64), students_see_others=True)
    # A fresh page shows what is saved.
    again = open_class_page()
    assert again.number_input(key="class_max_epochs").value == 20
    assert again.text_input(key="class_input_sizes").value == "32, 64"
    assert again.checkbox(key="class_see_others").value is True


@pytest.mark.parametrize(("values", "message"), [
    ({"max_epochs": 0}, "Not saved: max_epochs: must be a whole number ≥ 1, got 0"),
    ({"max_minutes": -5.0}, "Not saved: max_minutes: must be a number of minutes above 0 and "
                            "at most 10,080, got -5.0"),
    ({"input_sizes": "32, big"}, "Not saved: input_sizes: must be a list, each a whole number, "
                                 "got (32, 'big')"),
    ({"input_sizes": "32, 9999"}, "Not saved: input_sizes: each must be a whole number from 1 "
                                  "to 224, got [9999]"),
])
def test_the_limits_form_refuses_a_bad_value_and_keeps_the_saved_limits(
        values: dict[str, object], message: str) -> None:
    saved = classroom.set_class_rules(TEACHER, max_epochs=10)
    before = Path(settings.classroom_file()).read_bytes()
    at = limits_form(open_class_page(), **values)
    assert flash(at) == [message]
    assert Path(settings.classroom_file()).read_bytes() == before
    assert classroom.class_rules() == saved
