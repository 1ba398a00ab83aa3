"""Job folders under attack and damage (issue 7, defects 1, 6, 7 and 8).

Ids that try to leave their root are refused and touch nothing; a run whose status.json was
blanked is recovered from its artifacts and never retrained over its best model; damaged files
are read as far as they can be, damaged runs and searches are listed and deletable; a failed
status write leaves no temporary file behind.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cifarkit import atomicfile, cli, jobs, rundir, runs, searchdir, searches, settings
from cifarkit.config import RunConfig
from cifarkit.tuneconfig import TuneConfig
from tests.app.conftest import PERSON_KEY, assert_clean, open_page, page_path, page_person, rerun

RUNS_PAGE = page_path("pages/runs.py")
TUNE_PAGE = page_path("pages/tune.py")
WELL_FORMED = "20260601-120000-simple_cnn-abcd"  # an id that matches the format


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under folder with its bytes: compared before and after an attack."""
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A folder beside runs/ and searches/ that looks like a job (config and tune files)."""
    folder = tmp_path / "victim"
    folder.mkdir()
    RunConfig().save(folder / rundir.CONFIG)
    TuneConfig().save(folder / searchdir.TUNE)
    rundir.write_json_atomic(folder / rundir.STATUS, {"status": "completed"})
    (folder / rundir.BEST_MODEL).write_bytes(b"precious model bytes")
    (folder / "homework.txt").write_text("a student's work")
    return folder


def escaping_names(victim: Path, root: Path) -> dict[str, str | Path]:
    return {"dotdot": "../victim", "absolute": str(victim), "path": victim,
            "dotdot_path": root / ".." / "victim"}


RUN_ACTIONS: dict[str, Callable[[str | Path], object]] = {
    "load": runs.load, "stop": runs.stop, "resume": runs.resume, "delete": runs.delete,
    "wait": lambda job: runs.wait(job, timeout=1)}
SEARCH_ACTIONS: dict[str, Callable[[str | Path], object]] = {
    "load": searches.load_search, "stop": searches.stop_search,
    "resume": searches.resume_search, "delete": searches.delete_search,
    "wait": lambda job: searches.wait_search(job, timeout=1)}
# (root folder, every action that takes an id, the error it raises, the noun its message uses)
KINDS = [(settings.runs_dir, RUN_ACTIONS, runs.RunError, "run"),
         (settings.searches_dir, SEARCH_ACTIONS, searches.SearchError, "search")]
ACTIONS = [pytest.param(root, actions[name], error, noun, id=f"{noun}-{name}")
           for root, actions, error, noun in KINDS for name in actions]


# --- defect 1: ids escape their folders


@pytest.mark.parametrize(("root", "action", "error", "noun"), ACTIONS)
@pytest.mark.parametrize("how", ["dotdot", "absolute", "path", "dotdot_path"])
def test_a_job_id_that_leaves_its_folder_is_refused(
        victim: Path, root: Callable[[], Path], action: Callable[[str | Path], object],
        error: type[jobs.JobError], noun: str, how: str) -> None:
    root().mkdir(parents=True)
    before = snapshot(victim)
    job = escaping_names(victim, root())[how]
    with pytest.raises(error) as refused:
        action(job)
    assert str(refused.value) == f"not a {noun} id: {str(job)!r}"
    assert snapshot(victim) == before


@pytest.mark.parametrize(("root", "actions", "error", "noun"), KINDS)
def test_a_symlinked_job_folder_leading_outside_is_refused_and_not_listed(
        victim: Path, root: Callable[[], Path], actions: dict, error: type[jobs.JobError],
        noun: str) -> None:
    root().mkdir(parents=True)
    (root() / WELL_FORMED).symlink_to(victim, target_is_directory=True)
    before = snapshot(victim)
    for action in actions.values():
        with pytest.raises(error, match=rf"^not a {noun} id: '{WELL_FORMED}'$"):
            action(WELL_FORMED)
    assert runs.list_runs() == [] and searches.list_searches() == []
    assert runs.list_damaged() == [] and searches.list_damaged() == []
    assert snapshot(victim) == before


@pytest.mark.parametrize("argv", [
    ["runs", "delete", "../victim"], ["runs", "resume", "../victim"],
    ["runs", "stop", "../victim"], ["evaluate", "../victim"],
    ["tune", "delete", "../victim"], ["tune", "resume", "../victim"],
    ["tune", "stop", "../victim"]])
def test_the_cli_refuses_an_escaping_id_in_one_line(victim: Path, argv: list[str],
                                                    capsys: pytest.CaptureFixture) -> None:
    before = snapshot(victim)
    assert cli.main(argv) == 2
    noun = "search" if argv[0] == "tune" else "run"
    assert capsys.readouterr().err == f"error: not a {noun} id: '../victim'\n"
    assert snapshot(victim) == before


def test_the_cli_refuses_an_absolute_path(victim: Path, capsys: pytest.CaptureFixture) -> None:
    before = snapshot(victim)
    assert cli.main(["runs", "delete", str(victim)]) == 2
    assert capsys.readouterr().err == f"error: not a run id: '{victim}'\n"
    assert snapshot(victim) == before


def test_ids_must_have_the_job_id_format() -> None:
    assert jobs.ID_PATTERN.fullmatch(jobs.new_job_id("resnet_fast"))
    assert jobs.ID_PATTERN.fullmatch("20260601-120000-efficientnetv2b0-00ff")
    for bad in ("..", ".hidden", "a/b", "20260601-120000-x-abcd/..", "missing",
                "20260601-120000-..-abcd", "20260601-120000-x.y-abcd", "/20260601-120000-x-abcd"):
        assert not jobs.ID_PATTERN.fullmatch(bad), bad


# --- defect 6: a blanked status.json destroys a finished run


def workers(commands: list[list[str]]) -> list[list[str]]:
    """The cifarkit workers among the processes fake_worker saw (Keras' import runs uname)."""
    return [command for command in commands if "cifarkit" in command]


def blank_status(run: runs.Run) -> None:
    (run.path / rundir.STATUS).write_text("")


def test_a_blanked_status_of_a_completed_run_reads_completed_and_is_not_resumed(
        run_factory, fake_worker: list) -> None:
    run = run_factory("completed")
    blank_status(run)
    before = snapshot(run.path)
    assert runs.load(run.run_id).status == "completed"
    assert [listed.status for listed in runs.list_runs()] == ["completed"]
    with pytest.raises(runs.RunError) as refused:
        runs.resume(run.run_id)
    assert str(refused.value) == (f"run {run.run_id} is completed; only stopped, interrupted, "
                                  "failed, cancelled runs can be resumed")
    assert workers(fake_worker) == [] and snapshot(run.path) == before


def test_a_blanked_status_of_a_stopped_run_reads_stopped_and_resume_is_refused(
        run_factory, fake_worker: list) -> None:
    run = run_factory("stopped")
    rundir.request_stop(run.path)  # a stopped run keeps the STOP file that ended it
    blank_status(run)
    before = snapshot(run.path)
    assert runs.load(run.run_id).status == "stopped"
    with pytest.raises(runs.RunError) as refused:
        runs.resume(run.run_id)
    assert str(refused.value) == (
        f"run {run.run_id} was already scored (eval.json) and has no resume checkpoint: "
        "resuming would retrain it from epoch 1 over its best model")
    assert workers(fake_worker) == [] and snapshot(run.path) == before


def test_the_worker_refuses_to_resume_a_scored_run_without_a_checkpoint(run_factory) -> None:
    from cifarkit import training

    run = run_factory("completed")
    blank_status(run)
    before = snapshot(run.path)
    with pytest.raises(runs.RunError, match="already scored"):
        training.train(run.path, resume=True)
    assert snapshot(run.path) == before


def test_a_blanked_status_without_results_reads_interrupted(run_factory) -> None:
    run = run_factory("interrupted")
    blank_status(run)
    loaded = runs.load(run.run_id)
    assert loaded.status == "interrupted" and loaded.can_resume


def test_cli_list_shows_a_run_with_blanked_status(run_factory,
                                                  capsys: pytest.CaptureFixture) -> None:
    run = run_factory("completed")
    blank_status(run)
    assert cli.main(["runs", "list"]) == 0
    line = capsys.readouterr().out.splitlines()[1].split()
    assert line == [run.run_id, "completed", "0", "-"]


# --- defect 8: readers crash on damaged files


def test_metrics_readers_skip_damaged_rows(tmp_path: Path) -> None:
    good = {"kind": "epoch", "epoch": 1, "val_accuracy": 0.5, "loss": 1.0}
    lines = [json.dumps(good).encode(), b"[1, 2]", b"5", b'"text"', b"null",
             b'{"kind": "epoch"}', b'{"kind": "epoch", "epoch": "2"}',
             b'{"kind": "epoch", "epoch": true}', b'{"kind": "batch", "epoch": 1}',
             b'{"kind": "epoch", "epoch": 3, "val_accuracy": "high", "note": {"a": 1}}',
             b'{"kind": "epoch", "epoch": 4, "loss": 0.\xff\xfe}', b"\xff\xfe\xfa",
             b'{"kind": "batch", "epoch": 2, "step": 3, "steps": 10, "name": "\xff"}']
    (tmp_path / rundir.METRICS).write_bytes(b"\n".join(lines) + b"\n")
    assert rundir.epoch_rows(tmp_path) == [good, {"kind": "epoch", "epoch": 3}]
    assert rundir.completed_epochs(tmp_path) == 3
    assert rundir.best_validation_accuracy(tmp_path) == 0.5
    assert rundir.latest_batch(tmp_path) == {"kind": "batch", "epoch": 2, "step": 3, "steps": 10}


@pytest.mark.parametrize("damage", [
    {"status": None, "epochs_run": None}, {"status": 5, "epochs_run": "3"},
    {"status": ["completed"], "epochs_run": True, "created": "yesterday", "pid": "1",
     "test_accuracy": "high", "error": {"a": 1}}])
def test_status_fields_of_the_wrong_type_read_as_missing(run_factory, damage: dict,
                                                         capsys: pytest.CaptureFixture) -> None:
    run = run_factory("completed")
    info = {**json.loads((run.path / rundir.STATUS).read_text()), **damage}
    (run.path / rundir.STATUS).write_text(json.dumps(info))
    loaded = runs.load(run.run_id)
    assert loaded.status == "completed"  # recovered from eval.json
    assert not set(damage) & set(loaded.info)
    assert cli.main(["runs", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:3] == [run.run_id, "completed", "0"]


CONFIG_DAMAGE = {
    "not_json": (b"{not json", "config.json cannot be read (not valid JSON (Expecting property "
                 "name enclosed in double quotes: line 1 column 2 (char 1)))"),
    "empty": (b"", "config.json cannot be read (not valid JSON (Expecting value: line 1 column 1 "
              "(char 0)))"),
    "list": (b"[1, 2]", "config.json cannot be read (must be a JSON object, got a list)"),
    "bad_utf8": (b'{"name": "\xff"}', "config.json cannot be read (not valid JSON (not UTF-8 "
                 "text))"),
    "null_data": (b'{"data": null}', "config.json cannot be read (data.: must be an object)"),
    "object_name": (b'{"name": {"a": 1}}',
                    "config.json cannot be read (name: must be text, got {'a': 1})"),
    "list_source": (b'{"data": {"source": ["cifar10"]}}',
                    "config.json cannot be read (data.source: must be text, got ['cifar10'])"),
    "number_classes": (b'{"data": {"classes": [1, 2]}}',
                       "config.json cannot be read (data.classes: must be a list, each text, got "
                       "(1, 2))"),
    "text_epochs": (b'{"training": {"epochs": "3"}}',
                    "config.json cannot be read (training.epochs: must be a whole number, got "
                    "'3')"),
}


@pytest.mark.parametrize("case", list(CONFIG_DAMAGE))
def test_a_run_with_a_damaged_config_is_listed_as_damaged_and_deletable(
        run_factory, case: str, capsys: pytest.CaptureFixture) -> None:
    keep, doomed = run_factory("completed"), run_factory("completed")
    content, reason = CONFIG_DAMAGE[case]
    (doomed.path / rundir.CONFIG).write_bytes(content)
    assert [run.run_id for run in runs.list_runs()] == [keep.run_id]
    [damaged] = runs.list_damaged()
    assert (damaged.job_id, damaged.status, damaged.reason) == (doomed.run_id, "damaged", reason)
    with pytest.raises(runs.RunError) as refused:
        runs.resume(doomed.run_id)
    assert str(refused.value) == f"run {doomed.run_id} is damaged: {reason}"
    assert cli.main(["runs", "delete", doomed.run_id]) == 0
    assert capsys.readouterr().out == f"deleted run {doomed.run_id}\n"
    assert not doomed.path.exists() and keep.path.is_dir()


def test_a_damaged_run_whose_worker_is_alive_is_not_deleted(run_factory) -> None:
    run = run_factory("running")
    (run.path / rundir.CONFIG).write_text("{")
    with pytest.raises(runs.RunError, match=rf"^run {run.run_id} is damaged: stop it"):
        runs.delete(run.run_id)
    assert run.path.is_dir()


def test_a_search_with_a_damaged_config_is_listed_and_deletable() -> None:
    path = searches.create_search(TuneConfig())
    rundir.update_status(path, status="stopped")
    (path / searchdir.TUNE).write_text('{"name": {"a": 1}}')
    assert searches.list_searches() == []
    [damaged] = searches.list_damaged()
    assert damaged.reason == "tune.json cannot be read (name: must be text, got {'a': 1})"
    with pytest.raises(searches.SearchError) as refused:
        searches.resume_search(path.name)
    assert str(refused.value) == f"search {path.name} is damaged: {damaged.reason}"
    searches.delete_search(path.name)
    assert not path.exists()


def test_damaged_trial_files_are_skipped_by_the_trials_table() -> None:
    path = searches.create_search(TuneConfig())
    good = {"trial_id": "0", "status": "COMPLETED", "score": 0.5, "best_step": 0,
            "hyperparameters": {"values": {"dropout": 0.1}},
            "metrics": {"metrics": {"val_accuracy": {"observations": [
                {"step": 0, "value": [0.5]}]}}}}
    trials = {"0": json.dumps(good), "1": '{"trial_id": "x1"}', "2": "[1, 2]",
              "3": '{"trial_id": "3", "hyperparameters": [1]}',
              "4": json.dumps({**good, "trial_id": "4", "metrics": {"metrics": {
                  "val_accuracy": {"observations": [7]}}}})}
    for trial, text in trials.items():
        folder = searchdir.project_dir(path) / f"trial_{trial}"
        folder.mkdir(parents=True)
        (folder / searchdir.TRIAL_FILE).write_text(text)
    table = searches.trials_table(path.name)
    assert list(table["trial"]) == [0, 4]
    assert table["val_accuracy"].tolist()[0] == 0.5 and table["val_accuracy"].isna().tolist() == [
        False, True]
    assert list(table["dropout"]) == [0.1, 0.1]


def test_runs_page_lists_a_damaged_run_with_its_reason_and_deletes_it(run_factory) -> None:
    keep, doomed = run_factory("completed", name="keep"), run_factory("completed")
    (doomed.path / rundir.CONFIG).write_text('{"name": {"a": 1}}')
    at = open_page(RUNS_PAGE, 60)
    assert list(at.dataframe[0].value["run_id"]) == [keep.run_id]
    reason = "config.json cannot be read (name: must be text, got {'a': 1})"
    assert reason in [caption.value for caption in at.caption]
    delete = at.button(key=f"runs_damaged_delete_{doomed.run_id}")
    assert delete.disabled
    at.checkbox(key=f"runs_damaged_confirm_{doomed.run_id}").check()
    rerun(at).button(key=f"runs_damaged_delete_{doomed.run_id}").click()
    rerun(at)
    assert not doomed.path.exists() and keep.path.is_dir()
    assert at.success[0].value == f"Deleted **{doomed.run_id}**."
    assert not any(button.key.startswith("runs_damaged_") for button in at.button)


def test_runs_page_with_only_a_damaged_run(run_factory) -> None:
    doomed = run_factory("completed")
    (doomed.path / rundir.CONFIG).write_bytes(b"\xff")
    at = open_page(RUNS_PAGE, 60)
    assert "No runs yet" in at.info[0].value
    assert at.button(key=f"runs_damaged_delete_{doomed.run_id}")


@pytest.mark.parametrize("page", ["pages/errors.py", "pages/predict.py", "pages/home.py"])
def test_pages_that_need_a_config_skip_a_damaged_run(run_factory, page: str) -> None:
    run_factory("completed", name="keep")
    doomed = run_factory("completed")
    (doomed.path / rundir.CONFIG).write_text('{"name": {"a": 1}}')
    at = open_page(page_path(page), 120)
    pickers = [*at.selectbox, *at.multiselect]
    tables = [table.value.to_dict() for table in at.dataframe]
    shown = str([[box.options for box in pickers], tables])
    assert "keep" in shown and "{'a': 1}" not in shown


def test_tune_page_lists_a_damaged_search_and_deletes_it() -> None:
    path = searches.create_search(TuneConfig())
    (path / searchdir.TUNE).write_text("[]")
    at = open_page(TUNE_PAGE, 120, tune_tab="Searches")
    assert any("tune.json cannot be read (must be a JSON object, got a list)" in caption.value
               for caption in at.caption)
    at.button(key=f"tune_delete_{path.name}").click()
    rerun(at)
    assert not path.exists()
    assert [toast.value for toast in at.toast] == ["Deleted the search."]


# --- defect 7 (temporary files): a failed status write leaves nothing behind


@pytest.mark.parametrize("target", ["dump", "replace"])
def test_a_failed_status_write_removes_its_temp_file_and_keeps_the_old_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    rundir.update_status(tmp_path, status="running", epochs_run=2)
    before = (tmp_path / rundir.STATUS).read_bytes()

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    module = rundir.json if target == "dump" else atomicfile.os
    monkeypatch.setattr(module, target, disk_full)
    for _ in range(3):
        with pytest.raises(OSError) as failed:
            rundir.update_status(tmp_path, status="completed")
        assert failed.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == [rundir.STATUS]
    assert (tmp_path / rundir.STATUS).read_bytes() == before


# --- issue 8: an unrecognised page action never deletes


def _unknown_runs_action() -> None:
    import streamlit as st

    import pages.runs

    pages.runs.act("frobnicate", st.session_state["target"])
    st.write(repr(st.session_state["runs_flash"]))


def _unknown_tune_action() -> None:
    import streamlit as st

    import pages.tune

    pages.tune.act("frobnicate", st.session_state["target"])


def test_an_unknown_runs_action_is_an_error_not_a_delete(run_factory) -> None:
    run = run_factory("completed")
    at = AppTest.from_function(_unknown_runs_action, default_timeout=60)
    at.session_state[PERSON_KEY] = page_person()  # pages ask for a name first
    at.session_state["target"] = run.run_id
    at.run()
    assert_clean(at)
    assert run.path.is_dir()
    assert at.markdown[-1].value == "('error', \"unknown action 'frobnicate'\")"


def test_an_unknown_tune_action_is_an_error_not_a_delete() -> None:
    path = searches.create_search(TuneConfig())
    at = AppTest.from_function(_unknown_tune_action, default_timeout=120)
    at.session_state[PERSON_KEY] = page_person()  # pages ask for a name first
    at.session_state["target"] = path.name
    at.session_state["tune_tab"] = "Searches"
    at.run()
    assert_clean(at)
    assert path.is_dir()
    assert "unknown action 'frobnicate'" in [toast.value for toast in at.toast]
