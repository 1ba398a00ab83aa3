"""Who is who in the app (ui.identity): a typed name remembered in the URL, an OIDC account, and
the teacher's passcode."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cifarkit import classroom, uploads
from tests.app.conftest import assert_clean, page_path, rerun
from tests.conftest import class_zip
from ui.identity import WRONG_PASSCODE, as_text

APP, DATA_PAGE = page_path("app.py"), page_path("pages/data.py")
PASSCODE = "owl-7"
REFUSAL = ("This page is for the teacher. Sign in with the teacher passcode (sidebar) or a "
           "teacher's account.")


def app_test(**query: str) -> AppTest:
    """The whole app (router and Home) as a browser with this URL query would open it."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(query)
    return at


def signed_in_line(at: AppTest) -> str:
    lines = [item.value for item in at.sidebar.markdown if "Signed in as" in item.value]
    assert len(lines) == 1, [item.value for item in at.sidebar.markdown]
    return lines[0]


def submit_name(at: AppTest, name: str) -> AppTest:
    at.text_input[0].input(name)
    at.button[0].click()
    return rerun(at)


def asks_for_a_name(at: AppTest) -> bool:
    """The name form stands in place of the page: its box is there and Home's title is not."""
    return [box.label for box in at.text_input] == ["Your name"] and not at.title


@pytest.fixture
def class_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The server's secrets with a teacher passcode and one teacher e-mail (CIFARKIT_SECRETS)."""
    path = tmp_path / "secrets.toml"
    path.write_text(f'[cifarkit]\nteacher_passcode = "{PASSCODE}"\n'
                    'teacher_emails = ["Teacher@School.example"]\n')
    monkeypatch.setenv("CIFARKIT_SECRETS", str(path))
    return path


def test_a_new_visitor_types_a_name_once_and_its_key_goes_into_the_url() -> None:
    at = rerun(app_test())
    assert asks_for_a_name(at)
    at = submit_name(at, "Alice")
    key = at.query_params["me"]
    assert classroom.person(key) == classroom.Person(key, "Alice")
    assert signed_in_line(at) == ":material/person: Signed in as **Alice**"
    assert at.title[0].value == "cifarkit"  # Home shows once the name is given


def test_a_reload_with_the_key_in_the_url_is_the_same_person_without_asking() -> None:
    alice = classroom.register("Alice")
    at = rerun(app_test(me=alice.key))
    assert not asks_for_a_name(at)
    assert signed_in_line(at) == ":material/person: Signed in as **Alice**"
    assert at.query_params["me"] == alice.key


def test_the_key_is_written_back_after_switching_pages() -> None:
    """Streamlit's menu drops the query; the key must be back in the URL on the next page."""
    alice = classroom.register("Alice")
    at = rerun(app_test(me=alice.key))
    at.query_params.clear()  # the session still knows the person, as a live tab does
    at.switch_page("pages/data.py")
    at = rerun(at)
    assert at.query_params["me"] == alice.key
    assert at.title[0].value == "Data"


@pytest.mark.parametrize("given", ["0123456789abcdef", "../../etc/passwd", "x" * 300])
def test_an_unknown_or_malformed_key_in_the_url_asks_again(given: str) -> None:
    at = rerun(app_test(me=given))
    assert asks_for_a_name(at)
    assert [item.value for item in at.warning] == [
        "This link's name (`?me=`) is not known on this server: type your name again."]


def test_an_empty_name_is_refused_and_asked_again() -> None:
    at = submit_name(rerun(app_test()), "   ")
    assert asks_for_a_name(at)
    assert len(at.error) == 1
    assert "me" not in at.query_params
    assert not any(classroom_people())


def classroom_people() -> list[Path]:
    from cifarkit import settings

    folder = settings.people_dir()
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_change_name_forgets_the_person_and_asks_again() -> None:
    alice = classroom.register("Alice")
    at = rerun(app_test(me=alice.key))
    at.sidebar.button[0].click()
    at = rerun(at)
    assert asks_for_a_name(at)
    assert "me" not in at.query_params
    at = submit_name(at, "Bob")
    assert signed_in_line(at) == ":material/person: Signed in as **Bob**"
    assert at.query_params["me"] != alice.key


def test_a_name_with_markup_is_shown_as_typed() -> None:
    at = submit_name(rerun(app_test()), "**Eve** :material/school: [x](http://e)")
    line = signed_in_line(at)
    assert line == ":material/person: Signed in as **" + as_text(
        "**Eve** :material/school: [x](http://e)") + "**"
    assert "](http" not in line and ":material/school:" not in line


def test_the_right_passcode_makes_a_teacher_for_the_session(class_secrets: Path) -> None:
    alice = classroom.register("Alice")
    at = sign_in_as_teacher(rerun(app_test(me=alice.key)), PASSCODE)
    assert signed_in_line(at) == ":material/person: Signed in as **Alice** (teacher)"
    assert not at.sidebar.text_input  # no passcode box once a teacher
    # The URL key alone never makes a teacher: a reload with it is Alice, a student.
    at = rerun(app_test(me=alice.key))
    assert signed_in_line(at) == ":material/person: Signed in as **Alice**"


def sign_in_as_teacher(at: AppTest, passcode: str) -> AppTest:
    at.sidebar.text_input[0].input(passcode)
    at.sidebar.button[1].click()
    return rerun(at)


def test_the_class_page_opens_for_a_teacher_and_refuses_a_student(class_secrets: Path) -> None:
    alice = classroom.register("Alice")
    student = rerun(app_test(me=alice.key))
    student.switch_page("pages/teacher.py")  # its URL, typed by a student
    student = rerun(student)
    assert [item.value for item in student.error] == [REFUSAL] and not student.subheader
    teacher = sign_in_as_teacher(rerun(app_test(me=alice.key)), PASSCODE)
    teacher.switch_page("pages/teacher.py")
    teacher = rerun(teacher)
    assert teacher.title[0].value == "Class"
    assert [item.value for item in teacher.subheader] == [
        "Queue", "Everyone's runs and searches", "Class limits"]


def test_a_wrong_passcode_is_one_line_without_a_hint(class_secrets: Path) -> None:
    alice = classroom.register("Alice")
    at = sign_in_as_teacher(rerun(app_test(me=alice.key)), "owl-8")
    assert [item.value for item in at.sidebar.error] == [WRONG_PASSCODE]
    assert signed_in_line(at) == ":material/person: Signed in as **Alice**"
    shown = " ".join(str(element.value) for element in [*at.markdown, *at.error, *at.caption])
    assert PASSCODE not in shown and "owl" not in shown


def test_no_passcode_box_when_no_passcode_is_configured() -> None:
    alice = classroom.register("Alice")
    at = rerun(app_test(me=alice.key))
    assert not at.sidebar.text_input
    assert [button.label for button in at.sidebar.button] == ["Change name"]


def oidc_app(user: dict[str, object]) -> AppTest:
    """The app on a server configured for st.login, with this OIDC user."""
    at = app_test()
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback",
                          "cookie_secret": "test", "client_id": "x", "client_secret": "y",
                          "server_metadata_url": "http://127.0.0.1:9/.well-known"}
    at.user = user
    return at


def test_under_oidc_a_signed_out_visitor_gets_a_sign_in_button_not_a_name_box() -> None:
    at = rerun(oidc_app({"is_logged_in": False}))
    assert [button.label for button in at.button] == ["Sign in"]
    assert not at.text_input and not at.title


def test_under_oidc_the_account_names_the_person_and_a_listed_email_is_a_teacher(
        class_secrets: Path) -> None:
    at = rerun(oidc_app({"is_logged_in": True, "email": "teacher@school.example",
                         "name": "Ms Tan"}))
    assert signed_in_line(at) == ":material/person: Signed in as **Ms Tan** (teacher)"
    assert [button.label for button in at.sidebar.button] == ["Sign out"]
    assert "me" not in at.query_params  # an account needs no key in the URL
    person = at.session_state["person"]
    assert person.key == classroom.account_key("teacher@school.example")


def test_under_oidc_an_unlisted_email_is_a_student(class_secrets: Path) -> None:
    at = rerun(oidc_app({"is_logged_in": True, "email": "bo@school.example", "name": "Bo"}))
    assert signed_in_line(at) == ":material/person: Signed in as **Bo**"
    assert_clean(at)


def test_a_reload_still_reads_the_students_own_upload() -> None:
    """Uploads belong to the person, not the browser session: the same ?me= after a reload (a
    new session) may read the zip uploaded before it."""
    alice = classroom.register("Alice")
    first = AppTest.from_file(DATA_PAGE, default_timeout=120)
    first.query_params["me"] = alice.key
    rerun(first).selectbox(key="data_source").select("folder")
    rerun(first).file_uploader(key="data_upload").set_value(
        ("pets.zip", class_zip(("cats", "dogs"), 3), "application/zip"))
    path = rerun(first).session_state["data_config"].path
    assert Path(path).parent.parent == uploads.owner_dir(alice.key).resolve()
    reload = AppTest.from_file(DATA_PAGE, default_timeout=120)
    reload.query_params.update({"me": alice.key, "source": "folder", "path": path})
    reload = rerun(reload)
    assert not reload.error
    assert reload.session_state["data_config"].path == path


def test_under_oidc_accounts_without_an_email_stay_apart_by_their_subject() -> None:
    people = [rerun(oidc_app({"is_logged_in": True, "sub": sub})).session_state["person"]
              for sub in ("google-1", "google-2")]
    assert people[0].key != people[1].key
    assert [person.name for person in people] == ["someone", "someone"]
    assert not any(person.teacher for person in people)
