"""cifarkit.classroom on its own: people and their keys, the teacher from secrets.toml, who may
see and act on a job, the class settings file, and each class limit's message."""

from __future__ import annotations

from pathlib import Path

import pytest

from cifarkit import classroom, runs, searches, settings, uploads
from cifarkit.classroom import ClassRules, NotAllowed, Person
from cifarkit.config import CallbacksConfig, ConfigError, ModelConfig, RunConfig, TrainingConfig
from cifarkit.tuneconfig import TuneConfig

PASSCODE = "owl-7-lantern"
SECRETS = f'[cifarkit]\nteacher_passcode = "{PASSCODE}"\nteacher_emails = ["Ms.T@School.example"]\n'
ALICE = Person("user-alice", "Alice")
BOB = Person("user-bob", "Bob")
TEACHER = Person("user-teacher", "Ms T", teacher=True)


@pytest.fixture(autouse=True)
def teacher_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """This test's own secrets.toml (a teacher passcode and e-mail), and no identity inherited
    from the shell that runs the tests."""
    path = tmp_path / "secrets.toml"
    path.write_text(SECRETS)
    monkeypatch.setenv("CIFARKIT_SECRETS", str(path))
    for name in ("CIFARKIT_USER", "CIFARKIT_TEACHER_PASSCODE", "CIFARKIT_CLASS_DIR"):
        monkeypatch.delenv(name, raising=False)
    return path


def set_rules(**changes: object) -> ClassRules:
    return classroom.set_class_rules(TEACHER, **changes)


# --- people


def test_register_trims_and_keeps_the_name_under_a_random_key() -> None:
    person = classroom.register("  Alice Smith ")
    assert person.name == "Alice Smith" and not person.teacher
    assert [path.name for path in settings.people_dir().iterdir()] == [f"{person.key}.json"]
    assert classroom.person(person.key) == person
    assert classroom.register("Alice Smith").key != person.key  # two students both called Alice


@pytest.mark.parametrize(("name", "message"), [
    ("   ", "a name must be 1 to 40 characters, got 0"),
    ("x" * 41, "a name must be 1 to 40 characters, got 41"),
    ("Al\nice", "a name must not contain line breaks or control characters"),
])
def test_register_refuses_a_bad_name_and_stores_nothing(name: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        classroom.register(name)
    assert str(caught.value) == message
    assert not settings.people_dir().exists()


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "ABCDEF0123456789", "0123456789abcdef",
                                 "", "user-alice"])
def test_person_is_none_for_anything_but_a_registered_key(key: str) -> None:
    assert classroom.person(key) is None


def test_every_kind_of_key_is_a_safe_upload_owner() -> None:
    keys = [classroom.register("Zoë ../../etc").key, classroom.named_person("../..").key,
            classroom.account_person("a/b@../x", "A").key]
    for key in keys:
        assert uploads.owner_dir(key).parent == settings.uploads_dir()


def test_a_command_line_name_is_the_same_person_each_time_whatever_its_case() -> None:
    assert classroom.named_person("alice").key == classroom.named_person(" Alice ").key
    assert classroom.named_person("Alice").name == "Alice"
    registered = classroom.register("Alice")
    assert classroom.named_person(registered.key) == registered  # the app's Alice, by her key


def test_local_person_is_cifarkit_user_or_the_login_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFARKIT_USER", "Bob")
    assert classroom.local_person() == classroom.named_person("Bob")
    with classroom.acting_as(ALICE):
        assert classroom.local_person() == ALICE
    monkeypatch.delenv("CIFARKIT_USER")
    assert classroom.local_person().name == classroom._os_user()


# --- the teacher


def test_the_passcode_makes_a_teacher_and_a_wrong_one_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert classroom.check_passcode(PASSCODE) and not classroom.check_passcode("owl")
    monkeypatch.setenv("CIFARKIT_TEACHER_PASSCODE", PASSCODE)
    assert classroom.local_person("Ms T").teacher
    monkeypatch.setenv("CIFARKIT_TEACHER_PASSCODE", "guess")
    with pytest.raises(NotAllowed, match=r"^wrong teacher passcode$"):
        classroom.local_person("Ms T")


def test_teacher_emails_are_matched_without_case() -> None:
    assert classroom.account_person("ms.t@school.EXAMPLE ", "Ms T").teacher
    assert not classroom.account_person("alice@school.example", "Alice").teacher
    assert classroom.account_key("Ms.T@School.example") == classroom.account_key(
        "ms.t@school.example")


@pytest.mark.parametrize(("text", "problem"), [
    ("[cifarkit\nteacher_passcode = 1", "is not valid TOML (Expected ']' at the end of a table "
     "declaration (at line 1, column 10))"),
    ('cifarkit = "x"', ": [cifarkit] must be a table"),
    ('[cifarkit]\nteacher_passcode = 1234', "[cifarkit] teacher_passcode must be text"),
    ('[cifarkit]\nteacher_emails = "t@school.example"',
     "[cifarkit] teacher_emails must be a list of e-mail addresses"),
    ("", ""),  # a secrets file without [cifarkit]: no teacher, and nothing wrong
])
def test_broken_secrets_mean_no_teacher_with_the_reason(
        monkeypatch: pytest.MonkeyPatch, teacher_secrets: Path, text: str, problem: str) -> None:
    teacher_secrets.write_text(text)
    found = classroom.teachers()
    assert found.passcode == "" and found.emails == frozenset()
    assert found.problem.startswith("no teacher is configured: ") if problem else not found.problem
    assert found.problem.endswith(problem)
    assert not classroom.check_passcode("") and not classroom.passcode_configured()
    monkeypatch.setenv("CIFARKIT_TEACHER_PASSCODE", PASSCODE)
    with pytest.raises(NotAllowed) as caught:
        classroom.local_person("Ms T")
    assert str(caught.value) == (found.problem or "no teacher passcode is configured "
                                 "([cifarkit] teacher_passcode in .streamlit/secrets.toml)")


def test_a_missing_cifarkit_secrets_file_is_named(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("CIFARKIT_SECRETS", str(tmp_path / "absent.toml"))
    assert classroom.teachers().problem == (
        f"no teacher is configured: CIFARKIT_SECRETS names no file ({tmp_path / 'absent.toml'})")


def test_without_cifarkit_secrets_the_app_folder_and_the_working_folder_are_read(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CIFARKIT_SECRETS")
    monkeypatch.chdir(tmp_path)
    assert classroom.secrets_files() == [tmp_path.resolve() / ".streamlit" / "secrets.toml",
                                         classroom.APP_DIR / ".streamlit" / "secrets.toml"]
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(SECRETS)
    assert classroom.check_passcode(PASSCODE)


# --- who may see and act


@pytest.mark.parametrize(("who", "info", "acts"), [
    (ALICE, {"owner": "user-alice"}, True),
    (BOB, {"owner": "user-alice"}, False),
    (TEACHER, {"owner": "user-alice"}, True),
    (BOB, {}, True),  # made before classes: anyone's
])
def test_may_act_is_the_owner_or_a_teacher(who: Person, info: dict, acts: bool) -> None:
    assert classroom.may_act(who, info) is acts
    assert classroom.may_see(who, info) is acts


def test_students_see_others_jobs_only_when_the_teacher_allows() -> None:
    set_rules(students_see_others=True)
    assert classroom.may_see(BOB, {"owner": "user-alice"})
    assert not classroom.may_act(BOB, {"owner": "user-alice"})


def test_the_refusal_names_the_owner() -> None:
    with pytest.raises(NotAllowed) as caught:
        classroom.check_may_act(BOB, runs.KIND, "r1", {"owner": "user-alice",
                                                        "owner_name": "Alice"}, "stop")
    assert str(caught.value) == "run r1 belongs to Alice: only Alice or a teacher can stop it"


# --- the class settings file


def test_only_a_teacher_writes_the_class_settings() -> None:
    with pytest.raises(NotAllowed, match=r"^only a teacher can change the class settings$"):
        classroom.set_class_rules(ALICE, max_epochs=1)
    assert not settings.classroom_file().exists()
    assert set_rules(max_epochs=20, architectures=["custom_cnn"]) == ClassRules(
        max_epochs=20, architectures=("custom_cnn",))
    assert set_rules(max_jobs=2) == ClassRules(max_epochs=20, max_jobs=2,
                                               architectures=("custom_cnn",))
    assert classroom.class_rules() == ClassRules(max_epochs=20, max_jobs=2,
                                                 architectures=("custom_cnn",))


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"max_epochs": 0}, "max_epochs", "must be a whole number ≥ 1, got 0"),
    ({"max_minutes": -5}, "max_minutes",
     "must be a number of minutes above 0 and at most 10,080, got -5"),
    ({"max_jobs": "2"}, "max_jobs", "must be a whole number or null, got '2'"),
    ({"architectures": ["Resnet9000"]}, "architectures",
     "unknown architectures ['Resnet9000']; choose from cifarkit.models.catalog"),
    ({"input_sizes": [32, 0]}, "input_sizes", "each must be a whole number from 1 to 224, got [0]"),
    ({"colour": "red"}, "colour", "unknown setting; expected one of ['architectures', "
     "'input_sizes', 'max_epochs', 'max_jobs', 'max_minutes', 'students_see_others']"),
])
def test_bad_class_settings_are_refused_and_the_file_is_kept(changes: dict, field: str,
                                                               reason: str) -> None:
    set_rules(max_epochs=20)
    before = settings.classroom_file().read_bytes()
    with pytest.raises(ConfigError) as caught:
        set_rules(**changes)
    assert (caught.value.field, caught.value.reason) == (field, reason)
    assert settings.classroom_file().read_bytes() == before


@pytest.mark.parametrize(("text", "problem"), [
    ("{", "not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 "
     "(char 1))"),
    ('{"max_epochs": "lots"}', "max_epochs: must be a whole number or null, got 'lots'"),
    ("[1]", "must be a JSON object, got a list"),
])
def test_a_broken_class_file_means_defaults_and_says_why(text: str, problem: str) -> None:
    settings.classroom_file().parent.mkdir(parents=True)
    settings.classroom_file().write_text(text)
    rules, found = classroom.read_class_rules()
    assert rules == ClassRules()
    assert found.startswith("class settings ignored, no limits apply: ")
    assert found.endswith(problem)


# --- the limits' messages (nothing is created here: see tests/reliability/test_classroom.py)


def run_config(epochs: int = 5, architecture: str = "custom_cnn", size: int = 32) -> RunConfig:
    return RunConfig(model=ModelConfig(architecture=architecture, input_size=size),
                     training=TrainingConfig(epochs=epochs))


@pytest.mark.parametrize(("rules", "kind", "config", "message"), [
    ({"max_epochs": 20}, runs.KIND, run_config(epochs=50),
     "the class allows at most 20 epochs per run (you asked for 50)"),
    ({"max_epochs": 20}, searches.KIND, TuneConfig(max_trials=10, epochs_per_trial=3),
     "the class allows at most 20 epochs per search (you asked for 10 trials × 3 epochs = 30)"),
    ({"architectures": ["custom_cnn", "resnet_fast"]}, runs.KIND, run_config(
        architecture="MobileNet"), "the class allows only the architectures custom_cnn, "
     "resnet_fast (you asked for MobileNet)"),
    ({"architectures": ["resnet_fast"]}, searches.KIND, TuneConfig(),
     "the class allows only the architectures resnet_fast (you asked for custom_cnn)"),
    ({"input_sizes": [32]}, runs.KIND, run_config(size=64),
     "the class allows only the input sizes 32 px (you asked for 64)"),
])
def test_each_limit_refuses_a_student_by_name(rules: dict, kind: object, config: object,
                                              message: str) -> None:
    set_rules(**rules)
    with pytest.raises(NotAllowed) as caught:
        classroom.check_launch(kind, config, ALICE)
    assert str(caught.value) == message
    classroom.check_launch(kind, config, TEACHER)  # teachers are exempt


def budgeted(seconds: float, epochs: int = 50) -> RunConfig:
    return RunConfig(training=TrainingConfig(epochs=epochs, time_budget_s=seconds),
                     callbacks=CallbacksConfig(early_stopping=False))


def test_a_budget_longer_than_the_class_minutes_is_refused() -> None:
    set_rules(max_minutes=5)
    with pytest.raises(NotAllowed) as caught:
        classroom.check_launch(runs.KIND, budgeted(600), ALICE)
    assert str(caught.value) == ("the class allows at most 5 min of training per run (you "
                                 "asked for a budget of 10 min)")
    classroom.check_launch(runs.KIND, budgeted(300), ALICE)  # exactly the limit
    classroom.check_launch(runs.KIND, budgeted(600), TEACHER)


def test_a_budgeted_run_is_bounded_by_time_not_by_its_ignored_epochs() -> None:
    """With a budget, training.epochs is ignored by training, so the epoch limit ignores it too."""
    set_rules(max_epochs=20)
    classroom.check_launch(runs.KIND, budgeted(120, epochs=50), ALICE)
    with pytest.raises(NotAllowed):
        classroom.check_launch(runs.KIND, run_config(epochs=50), ALICE)


def test_within_the_limits_a_student_may_launch() -> None:
    set_rules(max_epochs=20, architectures=["custom_cnn"], input_sizes=[32], max_jobs=1)
    classroom.check_launch(runs.KIND, run_config(epochs=20), ALICE)
    classroom.check_launch(searches.KIND, TuneConfig(max_trials=5, epochs_per_trial=4), ALICE)


def test_time_limit_fields_and_message() -> None:
    assert classroom.limit_fields(ALICE) == {"time_limit_min": None}
    set_rules(max_minutes=30)
    assert classroom.limit_fields(ALICE) == {"time_limit_min": 30}
    assert classroom.limit_fields(TEACHER) == {"time_limit_min": None}
    assert classroom.limit_message(30) == "stopped at the class limit of 30 min"
    assert classroom.limit_message(0.5) == "stopped at the class limit of 0.5 min"
