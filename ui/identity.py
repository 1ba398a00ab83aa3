"""Who is using this browser session: a signed-in account (OIDC) or a typed, remembered name.

With an `[auth]` section in the server's secrets, Streamlit's own `st.login` names the person
(a teacher when the e-mail is listed in `[cifarkit] teacher_emails`). Otherwise the person types
a name once; its key (cifarkit.classroom.register) is kept in session state and in the URL as
`?me=<key>`, so a reload or a bookmark is still the same person. The key is written back on
every run, since Streamlit drops the query when the menu switches pages.
"""

from __future__ import annotations

import re

import streamlit as st

from cifarkit import classroom
from cifarkit.classroom import Person
from ui.state import PERSON, UPLOAD_PATHS

QUERY_KEY = "me"  # the URL query parameter holding a typed-name person's key
NAME_FORM, NAME_BOX, NAME_REFUSED = "identity_name_form", "identity_name", "identity_refused"
PASSCODE_FORM, PASSCODE_BOX = "identity_passcode_form", "identity_passcode"
PASSCODE_REFUSED = "identity_passcode_refused"
WRONG_PASSCODE = "That is not the teacher passcode."
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def known_person() -> Person | None:
    """The person of this session if already known (signed in, typed or in the URL); None when
    a name must still be asked for. Nothing is drawn, so the router can call it first."""
    if _auth_configured():
        return _signed_in()
    person = st.session_state.get(PERSON)
    if person is None:
        person = classroom.person(st.query_params.get(QUERY_KEY, ""))
    if person is not None:
        _remember(person)
    return person


def current_person() -> Person:
    """The person of this session; asks (sign-in button or name form, in place of the page, then
    st.stop) until there is one."""
    person = known_person()
    if person is not None:
        return person
    if _auth_configured():
        _ask_sign_in()
    else:
        _ask_name()
    st.stop()
    raise AssertionError("unreachable: st.stop() ends the script run")


def sign_in_teacher(passcode: str) -> bool:
    """Make this session's person a teacher if the passcode is the configured one; whether it
    was. Remembered for the session only: the URL key alone never makes anyone a teacher."""
    person = st.session_state.get(PERSON)
    if person is None:
        return False
    try:
        _remember(classroom.as_teacher(person, passcode))
    except classroom.NotAllowed:
        return False
    return True


def forget() -> None:
    """Change name: forget this session's person (and the URL key), so the next run asks; the
    uploads saved for them stay theirs, so their saved paths are forgotten too."""
    st.session_state.pop(PERSON, None)
    st.session_state.pop(UPLOAD_PATHS, None)
    if QUERY_KEY in st.query_params:
        del st.query_params[QUERY_KEY]


def _remember(person: Person) -> None:
    """Keep the person for this session and, for a typed name, its key in the URL (only a key
    classroom.person can find again: any other would make the next reload ask again)."""
    st.session_state[PERSON] = person
    registered = classroom.REGISTERED_KEY.fullmatch(person.key) is not None
    if registered and not _auth_configured() and st.query_params.get(QUERY_KEY) != person.key:
        st.query_params[QUERY_KEY] = person.key


def _auth_configured() -> bool:
    """Whether the server is set up for st.login (an [auth] section in its secrets)."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # no secrets.toml at all
        return False


def _signed_in() -> Person | None:
    """The OIDC account as a person (a teacher if listed, or once signed in with the passcode)."""
    if not st.user.get("is_logged_in"):
        return None
    # An account without an e-mail claim is told apart by its subject id (always there in
    # OIDC), never lumped together with every other e-mail-less account.
    account = str(st.user.get("email") or f"subject:{st.user.get('sub') or ''}")
    name = str(st.user.get("name") or "")
    person = classroom.account_person(account, name if name or "@" in account else "someone")
    previous = st.session_state.get(PERSON)
    if previous is not None and previous.key == person.key and previous.teacher:
        person = previous
    st.session_state[PERSON] = person
    return person


def _ask_sign_in() -> None:
    st.info("Sign in to use cifarkit: your runs and uploads are kept under your account.",
            icon=":material/login:")
    st.button("Sign in", icon=":material/login:", on_click=st.login, type="primary")


def _ask_name() -> None:
    """The name form; a key in the URL that names nobody is said so first. The name is taken
    in the button's callback, which runs before any page (also when a rerun follows)."""
    if st.query_params.get(QUERY_KEY):
        st.warning("This link's name (`?me=`) is not known on this server: type your name "
                   "again.", icon=":material/person_off:")
    with st.form(NAME_FORM):
        st.markdown("#### What is your name?")
        st.text_input("Your name", key=NAME_BOX, placeholder="e.g. Alice",
                      help="Shown with your runs, so your teacher knows whose they are.")
        st.form_submit_button("Continue", type="primary", on_click=_take_name)
    if NAME_REFUSED in st.session_state:
        st.error(st.session_state.pop(NAME_REFUSED), icon=":material/error:")


def _take_name() -> None:
    try:
        person = classroom.register(st.session_state.get(NAME_BOX, ""))
    except ValueError as error:
        st.session_state[NAME_REFUSED] = str(error)
        return
    _remember(person)

def sidebar(person: Person) -> None:
    """The sidebar line naming the person, with sign-out or change name, and the teacher's
    passcode box when one is configured."""
    with st.sidebar:
        role = " (teacher)" if person.teacher else ""
        st.markdown(f":material/person: Signed in as **{as_text(person.name)}**{role}")
        if _auth_configured():
            st.button("Sign out", icon=":material/logout:", on_click=st.logout)
        else:
            st.button("Change name", icon=":material/edit:", on_click=forget,
                      help="Type another name: for someone else using this browser.")
        if not person.teacher and classroom.passcode_configured():
            _passcode_form()


def _passcode_form() -> None:
    with st.expander("Teacher sign-in", icon=":material/school:"), st.form(PASSCODE_FORM):
        st.text_input("Teacher passcode", type="password", key=PASSCODE_BOX)
        st.form_submit_button("Sign in as teacher", on_click=_take_passcode)
    if st.session_state.pop(PASSCODE_REFUSED, False):
        st.error(WRONG_PASSCODE, icon=":material/block:")


def _take_passcode() -> None:
    """The passcode box is emptied either way, so the code never stays on screen."""
    passcode = st.session_state.get(PASSCODE_BOX, "")
    st.session_state[PASSCODE_BOX] = ""
    st.session_state[PASSCODE_REFUSED] = not sign_in_teacher(passcode)


def as_text(name: str) -> str:
    """A typed name for st.markdown, shown as typed: no markup, links or icons of its own."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", name)
