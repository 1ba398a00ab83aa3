"""Ownership and class limits enforced in the package and the CLI (issue 9): a student cannot
stop, resume or delete another's job, and a launch beyond the teacher's limits creates nothing.

Refusals are checked by their exact message and by the job folders being byte-for-byte as they
were; the time limit by a tiny real run (and search) that it ends as "stopped".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cifarkit import classroom, cli, jobs, rundir, runs, searches, settings
from cifarkit.classroom import NotAllowed, Person
from cifarkit.config import DataConfig, TrainingConfig
from cifarkit.tuneconfig import TuneConfig
from tests.app.conftest import search_factory  # noqa: F401 - a fixture
from tests.unit.test_classroom import (  # teacher_secrets: an autouse fixture
    ALICE,
    BOB,
    PASSCODE,
    TEACHER,
    set_rules,
    teacher_secrets,  # noqa: F401
)
from tests.unit.test_runs import tiny_config

VERBS = {"stop": runs.stop, "resume": runs.resume, "delete": runs.delete}
STATUS_FOR = {"stop": "running", "resume": "stopped", "delete": "completed"}
CLI_ALICE = classroom.named_person("Alice")  # who `--user Alice` is


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under folder and its bytes: what a refusal must leave as it was."""
    if not folder.exists():
        return {}
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def owned(job: jobs.Job, who: Person) -> jobs.Job:
    """A fabricated job recorded as who's, as jobs.create records its owner."""
    rundir.update_status(job.path, **classroom.owner_fields(who))
    return job


def workers(commands: list[list[str]]) -> list[list[str]]:
    """The worker processes fake_worker saw started (it sees every Popen, `uname -p` too)."""
    return [command for command in commands if command[1:3] == ["-m", "cifarkit"]]


def cli_run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- ownership, from the package


@pytest.mark.parametrize("verb", VERBS)
def test_a_student_cannot_act_on_anothers_run(run_factory, fake_worker, verb: str) -> None:
    run = owned(run_factory(STATUS_FOR[verb]), ALICE)
    before = snapshot(settings.runs_dir())
    with pytest.raises(NotAllowed) as caught:
        VERBS[verb](run.run_id, by=BOB)
    assert str(caught.value) == (f"run {run.run_id} belongs to Alice: only Alice or a teacher "
                                 f"can {verb} it")
    assert snapshot(settings.runs_dir()) == before
    assert workers(fake_worker) == []


@pytest.mark.parametrize("who", [ALICE, TEACHER], ids=["owner", "teacher"])
def test_the_owner_and_a_teacher_can_stop_resume_and_delete(run_factory, fake_worker,
                                                            who: Person) -> None:
    running = owned(run_factory("running"), ALICE)
    runs.stop(running.run_id, by=who)
    assert rundir.stop_requested(running.path)
    stopped = owned(run_factory("stopped"), ALICE)
    assert runs.resume(stopped.run_id, by=who).status == "queued"
    assert len(workers(fake_worker)) == 1
    done = owned(run_factory("completed"), ALICE)
    runs.delete(done.run_id, by=who)
    assert not done.path.exists()
    assert stopped.path.exists() and running.path.exists()


def test_a_job_made_before_classes_is_anyones(run_factory) -> None:
    run = run_factory("completed")
    assert "owner" not in run.info
    runs.delete(run.run_id, by=BOB)
    assert not run.path.exists()


def test_a_student_cannot_stop_or_delete_anothers_search(search_factory) -> None:  # noqa: F811
    search = owned(search_factory("running"), ALICE)
    before = snapshot(settings.searches_dir())
    for verb, call in (("stop", searches.stop_search), ("delete", searches.delete_search)):
        with pytest.raises(NotAllowed) as caught:
            call(search.search_id, by=BOB)
        assert str(caught.value) == (f"search {search.search_id} belongs to Alice: only Alice "
                                     f"or a teacher can {verb} it")
    assert snapshot(settings.searches_dir()) == before


def test_create_records_the_owner_and_launch_passes_it_on(fake_worker) -> None:
    path = runs.create(tiny_config(), by=ALICE)
    info = rundir.read_status(path)
    assert (info["owner"], info["owner_name"], info["status"]) == ("user-alice", "Alice",
                                                                   "queued")
    with classroom.acting_as(BOB):
        assert runs.launch(tiny_config()).info["owner"] == "user-bob"


# --- ownership, from the CLI


@pytest.mark.parametrize("verb", ["stop", "resume", "delete"])
def test_the_cli_refuses_another_students_run_in_one_line(run_factory, fake_worker, capsys,
                                                          verb: str) -> None:
    run = owned(run_factory(STATUS_FOR[verb]), CLI_ALICE)
    before = snapshot(settings.runs_dir())
    code, out, err = cli_run(capsys, "--user", "Bob", "runs", verb, run.run_id)
    assert (code, out) == (2, "")
    assert err == (f"error: run {run.run_id} belongs to Alice: only Alice or a teacher can "
                   f"{verb} it\n")
    assert snapshot(settings.runs_dir()) == before


def test_the_cli_owner_by_name_or_env_can_stop_and_delete(run_factory, capsys,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    running = owned(run_factory("running"), CLI_ALICE)
    assert cli_run(capsys, "--user", "alice", "runs", "stop", running.run_id)[0] == 0
    assert rundir.stop_requested(running.path)
    done = owned(run_factory("completed"), CLI_ALICE)
    monkeypatch.setenv("CIFARKIT_USER", "Alice")
    assert cli_run(capsys, "runs", "delete", done.run_id) == (
        0, f"deleted run {done.run_id}\n", "")
    assert not done.path.exists()


def test_a_teacher_by_passcode_in_the_cli(run_factory, capsys,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    run = owned(run_factory("completed"), CLI_ALICE)
    monkeypatch.setenv("CIFARKIT_TEACHER_PASSCODE", "not-it")
    code, _, err = cli_run(capsys, "--user", "Ms T", "runs", "delete", run.run_id)
    assert (code, err) == (2, "error: wrong teacher passcode\n")
    assert run.path.exists()
    monkeypatch.setenv("CIFARKIT_TEACHER_PASSCODE", PASSCODE)
    assert cli_run(capsys, "--user", "Ms T", "runs", "delete", run.run_id)[0] == 0
    assert not run.path.exists()


# --- class limits: nothing is created


LIMITS = [
    ({"max_epochs": 20}, {"training": TrainingConfig(epochs=50)},
     "the class allows at most 20 epochs per run (you asked for 50)"),
    ({"architectures": ["resnet_fast"]}, {},
     "the class allows only the architectures resnet_fast (you asked for simple_cnn)"),
    ({"input_sizes": [64]}, {},
     "the class allows only the input sizes 64 px (you asked for 32)"),
]


@pytest.mark.parametrize(("rules", "sections", "message"), LIMITS)
def test_each_limit_refuses_a_launch_and_creates_nothing(fake_worker, rules: dict,
                                                         sections: dict, message: str) -> None:
    set_rules(**rules)
    config = tiny_config().with_updates(**sections)
    with pytest.raises(NotAllowed) as caught:
        runs.launch(config, by=ALICE)
    assert str(caught.value) == message
    assert not settings.runs_dir().exists() and workers(fake_worker) == []
    assert runs.launch(config, by=TEACHER).info["owner"] == TEACHER.key  # teachers are exempt


def test_a_search_counts_all_its_epochs(fake_worker) -> None:
    set_rules(max_epochs=20)
    tune = TuneConfig(max_trials=10, epochs_per_trial=3)
    with pytest.raises(NotAllowed) as caught:
        searches.launch_search(tune, by=ALICE)
    assert str(caught.value) == ("the class allows at most 20 epochs per search "
                                 "(you asked for 10 trials × 3 epochs = 30)")
    assert not settings.searches_dir().exists()
    assert searches.launch_search(TuneConfig(max_trials=5, epochs_per_trial=4), by=ALICE)


def test_jobs_per_student_count_runs_and_searches_together(fake_worker) -> None:
    set_rules(max_jobs=1)
    first = runs.launch(tiny_config(), by=ALICE)
    before = (snapshot(settings.runs_dir()), snapshot(settings.searches_dir()))
    message = ("the class allows at most 1 queued or running job per student (you have 1: "
               "wait for one to finish or stop it)")
    for launch in (lambda: runs.launch(tiny_config(), by=ALICE),
                   lambda: searches.launch_search(TuneConfig(), by=ALICE)):
        with pytest.raises(NotAllowed) as caught:
            launch()
        assert str(caught.value) == message
    assert (snapshot(settings.runs_dir()), snapshot(settings.searches_dir())) == before
    assert runs.launch(tiny_config(), by=BOB).is_active  # Bob's count is his own
    assert len(runs.list_runs()) == 2 and first.is_active


def test_resuming_counts_as_a_launch(run_factory, fake_worker) -> None:
    owned(run_factory("running"), ALICE)
    stopped = owned(run_factory("stopped"), ALICE)
    set_rules(max_jobs=1)
    with pytest.raises(NotAllowed, match=r"^the class allows at most 1 queued or running job"):
        runs.resume(stopped.run_id, by=ALICE)
    assert workers(fake_worker) == [] and not (stopped.path / rundir.LOG).exists()


@pytest.mark.parametrize(("argv", "message", "folder"), [
    (["train", "--source", "digits", "--epochs", "50", "--detach"],
     "the class allows at most 20 epochs per run (you asked for 50)", settings.runs_dir),
    (["tune", "--max-trials", "10", "--epochs-per-trial", "3", "--detach"],
     "the class allows at most 20 epochs per search (you asked for 10 trials × 3 epochs = 30)",
     settings.searches_dir),
])
def test_the_cli_obeys_the_limits(fake_worker, capsys, argv: list[str], message: str,
                                  folder) -> None:
    set_rules(max_epochs=20)
    code, out, err = cli_run(capsys, "--user", "Alice", *argv)
    assert (code, err) == (2, f"error: {message}\n")
    assert not folder().exists() and workers(fake_worker) == []
    assert "started" not in out


def test_class_set_is_for_teachers_and_show_is_for_everyone(
        capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = cli_run(capsys, "--user", "Alice", "class", "set", "--max-epochs", "5")
    assert (code, err) == (2, "error: only a teacher can change the class settings\n")
    assert not settings.classroom_file().exists()
    monkeypatch.setenv("CIFARKIT_TEACHER_PASSCODE", PASSCODE)
    code, _, _ = cli_run(capsys, "--user", "Ms T", "class", "set", "--max-epochs", "5",
                         "--architectures", "custom_cnn,resnet_fast", "--students-see-others")
    assert code == 0
    assert classroom.class_rules() == classroom.ClassRules(
        max_epochs=5, architectures=("custom_cnn", "resnet_fast"), students_see_others=True)
    assert cli_run(capsys, "--user", "Ms T", "class", "set", "--max-epochs", "none")[0] == 0
    assert classroom.class_rules().max_epochs is None
    monkeypatch.delenv("CIFARKIT_TEACHER_PASSCODE")
    code, out, _ = cli_run(capsys, "--user", "Alice", "class", "show")
    assert code == 0
    assert "  max_epochs           no limit\n" in out
    assert "  architectures        custom_cnn, resnet_fast\n" in out
    assert "teacher passcode: configured; teacher e-mail addresses: 1\n" in out


# --- broken files


def test_a_broken_class_file_lets_the_class_work_and_says_why(fake_worker, capsys) -> None:
    settings.classroom_file().parent.mkdir(parents=True)
    settings.classroom_file().write_text('{"max_epochs": ')
    assert runs.launch(tiny_config().with_updates(training=TrainingConfig(epochs=50)),
                       by=ALICE).info["owner"] == ALICE.key
    code, out, _ = cli_run(capsys, "class", "show")
    assert code == 0
    assert ("warning: class settings ignored, no limits apply: "
            f"{settings.classroom_file()}: not valid JSON") in out


def test_broken_secrets_say_no_teacher_is_configured(capsys, teacher_secrets: Path,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    teacher_secrets.write_text("[cifarkit\n")
    monkeypatch.setenv("CIFARKIT_TEACHER_PASSCODE", PASSCODE)
    code, _, err = cli_run(capsys, "--user", "Ms T", "class", "set", "--max-epochs", "5")
    assert code == 2
    assert err.startswith(f"error: no teacher is configured: {teacher_secrets} is not valid TOML")
    monkeypatch.delenv("CIFARKIT_TEACHER_PASSCODE")
    code, out, _ = cli_run(capsys, "class", "show")
    assert code == 0
    assert "teacher passcode: not configured; teacher e-mail addresses: 0\n" in out
    assert f"warning: no teacher is configured: {teacher_secrets} is not valid TOML" in out


# --- the time limit, on tiny real jobs


TINY_DATA = DataConfig(source="digits", max_train_images=96, max_test_images=32)
LIMIT_MINUTES = 0.001  # 60 ms: used up by the first batch (which includes building the step)


@pytest.mark.slow
def test_the_time_limit_stops_a_real_run_and_a_resume(fake_worker) -> None:
    from cifarkit import training

    set_rules(max_minutes=LIMIT_MINUTES)
    path = runs.create(tiny_config(epochs=20).with_updates(data=TINY_DATA), by=ALICE)
    assert rundir.read_status(path)["time_limit_min"] == LIMIT_MINUTES
    status = training.train(path, verbose=0)
    assert (status["status"], status["error"]) == (
        "stopped", "stopped at the class limit of 0.001 min")
    assert status.get("epochs_run", 0) < 20 and (path / rundir.EVAL).is_file()
    with pytest.raises(NotAllowed) as caught:
        runs.resume(path.name, by=ALICE)
    assert str(caught.value) == f"run {path.name} has used the class limit of 0.001 min"
    assert workers(fake_worker) == []
    runs.resume(path.name, by=TEACHER)  # a teacher may give it more time
    assert rundir.read_status(path).get("time_limit_min") is None and len(workers(fake_worker)) == 1


@pytest.mark.slow
def test_the_time_limit_stops_a_real_search() -> None:
    from cifarkit import tuning

    set_rules(max_minutes=LIMIT_MINUTES)
    tune = TuneConfig(base=TuneConfig().base.with_updates(data=TINY_DATA), max_trials=2,
                      epochs_per_trial=2)
    path = searches.create_search(tune, by=ALICE)
    status = tuning.search(path, verbose=0)
    assert (status["status"], status["error"]) == (
        "stopped", "stopped at the class limit of 0.001 min")
