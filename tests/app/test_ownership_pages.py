"""Owner-aware pages (issue 9): a student sees their own jobs, others' only read-only when the
teacher allows it, never a button the package would refuse; a teacher sees and acts on all; an
action forged past the page is refused by the package with its own message, nothing touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cifarkit import classroom, rundir, runs, searches
from cifarkit.classroom import Person
from tests.app.conftest import PERSON_KEY, assert_clean, give_to, open_page, page_path, rerun

RUNS, TRAIN, TUNE = page_path("pages/runs.py"), page_path("pages/train.py"), page_path(
    "pages/tune.py")
ALICE, BOB = Person(key="alice-0001", name="Alice"), Person(key="bob-0002", name="Bob")
TEACHER = Person(key="teacher-0003", name="Ms Smith", teacher=True)


def share_with_students() -> None:
    """The teacher lets students see each other's jobs (read-only)."""
    classroom.set_class_rules(TEACHER, students_see_others=True)


def owned_runs(run_factory, status: str = "completed") -> tuple[runs.Run, runs.Run]:
    return (give_to(runs.KIND, run_factory(status, name="alices run"), ALICE),
            give_to(runs.KIND, run_factory(status, name="bobs run"), BOB))


def files(folder: Path) -> dict[str, int]:
    """Every file under a job folder with its size: what "untouched" means."""
    return {str(path.relative_to(folder)): path.stat().st_size
            for path in sorted(folder.rglob("*")) if path.is_file()}


def table_ids(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["run_id"])


def offers(picker: object, job: object) -> bool:
    """The picker offers exactly one option, and it is this job (options are its label)."""
    options = picker.options  # type: ignore[attr-defined]
    return len(options) == 1 and job.name in options[0]  # type: ignore[attr-defined]


def keys(at: AppTest) -> set[str]:
    return {button.key for button in at.button}


# --- what a student sees


@pytest.mark.parametrize("page, picker", [("pages/errors.py", "errors_run"),
                                          ("pages/predict.py", "predict_runs")])
def test_a_students_run_pickers_offer_only_their_own_runs(run_factory, page: str,
                                                          picker: str) -> None:
    alices, _ = owned_runs(run_factory)
    at = open_page(page_path(page), 120, person=ALICE)
    assert offers(next(box for box in [*at.selectbox, *at.multiselect] if box.key == picker),
                  alices)


def test_a_student_sees_only_their_own_runs_on_runs_and_home(run_factory) -> None:
    alices, _ = owned_runs(run_factory)
    at = open_page(RUNS, 120, person=ALICE)
    assert table_ids(at) == [alices.run_id]
    assert offers(at.selectbox(key="runs_manage"), alices)
    home = open_page(page_path("pages/home.py"), 120, person=ALICE)
    assert list(home.dataframe[0].value["run"]) == ["alices run"]
    assert "owner" not in home.dataframe[0].value.columns  # nobody else's to name


def test_a_student_watches_only_their_own_runs_on_train(run_factory) -> None:
    alices, bobs = owned_runs(run_factory, "running")
    at = open_page(TRAIN, 120, person=BOB)
    shown = "\n".join(item.value for item in at.markdown)
    assert "#### bobs run" in shown and "#### alices run" not in shown
    assert f"train_stop_{bobs.run_id}" in keys(at)
    assert f"train_stop_{alices.run_id}" not in keys(at)


def test_a_student_sees_only_their_own_searches(search_factory) -> None:
    alices = give_to(searches.KIND, search_factory("completed"), ALICE)
    at = open_page(TUNE, 120, person=BOB, tune_tab="Searches")
    assert "No searches yet" in at.info[0].value
    at = open_page(TUNE, 120, person=ALICE, tune_tab="Searches")
    assert offers(at.selectbox(key="tune_pick"), alices)


# --- others' jobs, read-only, when the teacher allows it


def test_shared_runs_are_listed_with_their_owner_and_no_buttons(run_factory) -> None:
    share_with_students()
    alices, bobs = owned_runs(run_factory)
    at = open_page(RUNS, 120, person=BOB)
    table = at.dataframe[0].value.set_index("run_id")
    assert sorted(table.index) == sorted([alices.run_id, bobs.run_id])
    assert table.loc[alices.run_id, "owner"] == "Alice"
    assert table.loc[bobs.run_id, "owner"] == "you"
    at.selectbox(key="runs_manage").select(alices.run_id)
    rerun(at)
    assert not keys(at) & {"runs_stop", "runs_resume", "runs_delete"}
    assert ":material/lock: belongs to Alice · read-only: only its owner or the teacher can " \
        "stop, resume or delete it." in [caption.value for caption in at.caption]
    assert "Model file" in [button.label for button in at.get("download_button")]
    at.selectbox(key="runs_manage").select(bobs.run_id)
    rerun(at)
    assert {"runs_resume", "runs_delete"} <= keys(at)  # his own run keeps its buttons


def test_shared_runs_in_the_pickers_name_their_owner(run_factory) -> None:
    share_with_students()
    alices, bobs = owned_runs(run_factory)
    at = open_page(page_path("pages/errors.py"), 120, person=BOB)
    labels = at.selectbox(key="errors_run").options
    assert [label.endswith(" · Alice's") for label in labels] == [
        run is alices for run in (bobs, alices)]  # newest first; his own run names nobody


def test_a_shared_running_run_on_train_names_its_owner_instead_of_stop(run_factory) -> None:
    share_with_students()
    alices, _ = owned_runs(run_factory, "running")
    at = open_page(TRAIN, 120, person=BOB)  # Train watches his own runs, not the class's
    assert "#### alices run" not in [item.value for item in at.markdown]
    at = open_page(TRAIN, 120, person=BOB, selected_run=alices.run_id)  # picked on Runs
    assert "#### alices run" in [item.value for item in at.markdown]
    assert f"train_stop_{alices.run_id}" not in keys(at)
    assert ":material/lock: belongs to Alice · read-only" in [item.value for item in at.caption]
    assert any("Alice's run" in item.value for item in at.caption)


def test_a_shared_search_is_read_only(search_factory) -> None:
    share_with_students()
    alices = give_to(searches.KIND, search_factory("completed"), ALICE)
    at = open_page(TUNE, 120, person=BOB, tune_tab="Searches")
    assert f"tune_delete_{alices.search_id}" not in keys(at)
    assert ":material/lock: belongs to Alice · read-only" in [item.value for item in at.caption]


# --- class limits: the package refuses a launch from the form, the page says why


def test_a_launch_over_the_class_limit_is_refused_with_the_limit_and_nothing_starts(
        fake_worker) -> None:
    classroom.set_class_rules(TEACHER, max_epochs=5, max_minutes=1)
    at = open_page(TRAIN, 120, person=ALICE)
    at.button(key="train_start").click()  # the form's default: a 2-minute budget
    rerun(at)
    assert at.error[0].value == ("Could not start the run: the class allows at most 1 min of "
                                 "training per run (you asked for a budget of 2 min)")
    at.radio(key="train_length").set_value("epochs")
    rerun(at)
    at.button(key="train_start").click()  # the form's default: 10 epochs
    rerun(at)
    assert at.error[0].value == ("Could not start the run: the class allows at most 5 epochs "
                                 "per run (you asked for 10)")
    assert runs.list_runs() == [] and fake_worker == []


# --- forged actions: the package refuses, with its message, and nothing changes


def _forged_runs_action() -> None:
    import streamlit as st

    import pages.runs

    pages.runs.act(st.session_state["action"], st.session_state["target"])
    st.write(repr(st.session_state["runs_flash"]))


@pytest.mark.parametrize("action, status", [("delete", "completed"), ("stop", "running"),
                                            ("resume", "stopped")])
def test_a_forged_action_on_anothers_run_is_refused_and_changes_nothing(
        run_factory, fake_worker, action: str, status: str) -> None:
    alices, _ = owned_runs(run_factory, status)
    before = files(alices.path)
    at = AppTest.from_function(_forged_runs_action, default_timeout=120)
    for key, value in {PERSON_KEY: BOB, "action": action, "target": alices.run_id}.items():
        at.session_state[key] = value
    at.run()
    assert_clean(at)
    expected = f"run {alices.run_id} belongs to Alice: only Alice or a teacher can {action} it"
    assert at.markdown[-1].value == repr(("error", expected))
    assert files(alices.path) == before
    assert not rundir.stop_requested(alices.path) and fake_worker == []


def _forged_tune_action() -> None:
    import streamlit as st

    import pages.tune

    pages.tune.act(st.session_state["action"], st.session_state["target"])


@pytest.mark.parametrize("action, status", [("delete", "completed"), ("stop", "running")])
def test_a_forged_action_on_anothers_search_is_refused_and_changes_nothing(
        search_factory, action: str, status: str) -> None:
    alices = give_to(searches.KIND, search_factory(status), ALICE)
    before = files(alices.path)
    at = AppTest.from_function(_forged_tune_action, default_timeout=120)
    for key, value in {PERSON_KEY: BOB, "action": action, "target": alices.search_id,
                       "tune_tab": "Searches"}.items():
        at.session_state[key] = value
    at.run()
    assert_clean(at)
    assert (f"search {alices.search_id} belongs to Alice: only Alice or a teacher can {action} "
            "it") in [toast.value for toast in at.toast]
    assert files(alices.path) == before


# --- the teacher


def test_the_teacher_sees_every_run_and_deletes_a_students(run_factory) -> None:
    alices, bobs = owned_runs(run_factory)
    at = open_page(RUNS, 120, person=TEACHER)
    table = at.dataframe[0].value.set_index("run_id")
    assert sorted(table.index) == sorted([alices.run_id, bobs.run_id])
    assert list(table.loc[[alices.run_id, bobs.run_id], "owner"]) == ["Alice", "Bob"]
    at.selectbox(key="runs_manage").select(alices.run_id)
    rerun(at)
    at.checkbox(key=f"runs_confirm_{alices.run_id}").check()
    rerun(at).button(key="runs_delete").click()
    rerun(at)
    assert at.success[0].value == "Deleted **alices run**."
    assert not alices.path.exists() and bobs.path.is_dir()


def test_the_teacher_stops_a_students_run_from_train(run_factory) -> None:
    alices, _ = owned_runs(run_factory, "running")
    at = open_page(TRAIN, 120, person=TEACHER, selected_run=alices.run_id)
    at.button(key=f"train_stop_{alices.run_id}").click()
    rerun(at)
    assert rundir.stop_requested(alices.path)
    assert os.path.isdir(alices.path)
