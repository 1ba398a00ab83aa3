"""Who acts on a job, and what the class allows them: owners, a teacher, class limits.

One server serves a whole class, so the package itself refuses a student who stops someone
else's run or asks for more than the teacher allows: cifarkit.jobs calls these checks in its
lifecycle verbs, so the CLI, the Python API and every page obey them alike. The teacher is named
in the server's secrets (`[cifarkit] teacher_emails`, `teacher_passcode` in
.streamlit/secrets.toml, never in the repository); the class settings are a JSON file that only
a teacher writes; a typed name is a small JSON file under a random key, never a path from text.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import hashlib
import hmac
import os
import re
import secrets
import time
import tomllib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cifarkit import jobs, rundir, settings
from cifarkit.config import (
    MAX_EPOCHS,
    MAX_INPUT_SIZE,
    ConfigError,
    JsonConfig,
    RunConfig,
    check_types,
    check_whole_number,
    is_between,
    is_number,
    require,
)
from cifarkit.formatting import plural
from cifarkit.models.catalog import MODELS
from cifarkit.tuneconfig import TuneConfig

MAX_NAME_CHARS = 40  # a typed name: fits a table cell and the sidebar
MAX_MINUTES = 7 * 24 * 60  # a time limit above a week is a typo
MAX_JOBS = 1000
SECRETS_TABLE = "cifarkit"  # [cifarkit] in secrets.toml
APP_DIR = Path(__file__).resolve().parent.parent  # where app.py (and its .streamlit/) lives
REGISTERED_KEY = re.compile(r"[0-9a-f]{16}")  # register()'s keys: 64 random bits in hex
KEY_PREFIXES = {"local": "user-", "account": "mail-"}  # derived keys, apart from random ones
_acting: ContextVar[Person | None] = ContextVar("cifarkit_acting", default=None)


class NotAllowed(jobs.JobError):
    """Someone acting on another's job, asking for more than the class allows, or doing what
    only a teacher may: one line that names the rule."""


@dataclass(frozen=True)
class Person:
    """Who acts: key is the owner recorded on jobs and the uploads folder name (letters, digits,
    '-' only, so uploads.owner_dir accepts it); name is what pages show."""

    key: str
    name: str
    teacher: bool = False


# --- the teacher: from the server's secrets.toml


@dataclass(frozen=True)
class Teachers:
    """What the secrets say about teachers; problem says why they could not be read (then no
    teacher is configured, and whoever relies on one is told so)."""

    emails: frozenset[str] = frozenset()
    passcode: str = ""
    problem: str = ""


def secrets_files() -> list[Path]:
    """Where the teacher settings are read, later ones winning as in Streamlit: the working
    folder's .streamlit/secrets.toml, then the app's; CIFARKIT_SECRETS names one file instead."""
    override = os.environ.get("CIFARKIT_SECRETS")
    if override:
        return [Path(override).expanduser()]
    folders = dict.fromkeys([Path.cwd().resolve(), APP_DIR])
    return [folder / ".streamlit" / "secrets.toml" for folder in folders]


def teachers() -> Teachers:
    """The [cifarkit] table of the secrets files, checked; read each time (files are small),
    so an edit counts at once."""
    table: dict[str, Any] = {}
    for path in secrets_files():
        part, problem = _secrets_table(path)
        if problem:
            return Teachers(problem=f"no teacher is configured: {problem}")
        table.update(part)
    emails, passcode = table.get("teacher_emails", []), table.get("teacher_passcode", "")
    if not (isinstance(emails, list) and all(isinstance(email, str) for email in emails)):
        return Teachers(problem="no teacher is configured: [cifarkit] teacher_emails must be a "
                        "list of e-mail addresses")
    if not isinstance(passcode, str):
        return Teachers(problem="no teacher is configured: [cifarkit] teacher_passcode must be "
                        "text")
    return Teachers(frozenset(_email(email) for email in emails if email.strip()), passcode)


def _secrets_table(path: Path) -> tuple[dict[str, Any], str]:
    """The file's [cifarkit] table and "" or ({}, why it cannot be used); a missing default
    file is no problem, a missing CIFARKIT_SECRETS file is."""
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        return {}, (f"CIFARKIT_SECRETS names no file ({path})"
                    if os.environ.get("CIFARKIT_SECRETS") else "")
    except tomllib.TOMLDecodeError as error:
        return {}, f"{path} is not valid TOML ({error})"
    except (OSError, UnicodeDecodeError) as error:
        return {}, f"{path} cannot be read ({getattr(error, 'strerror', None) or error})"
    table = data.get(SECRETS_TABLE, {})
    if not isinstance(table, dict):
        return {}, f"{path}: [{SECRETS_TABLE}] must be a table"
    return table, ""


def _email(text: str) -> str:
    return text.strip().lower()


def passcode_configured() -> bool:
    """Whether a teacher can sign in with a passcode at all (pages offer the box only then)."""
    return bool(teachers().passcode)


def check_passcode(passcode: str) -> bool:
    """True if passcode is the configured teacher passcode (compared in constant time, so the
    answer's timing tells nothing); False when none is configured."""
    configured = teachers().passcode
    return bool(configured) and hmac.compare_digest(passcode.encode(), configured.encode())


def is_teacher_email(email: str) -> bool:
    """Whether a signed-in (OIDC) account is a teacher: its e-mail is listed in the secrets."""
    return bool(email.strip()) and _email(email) in teachers().emails


def account_key(email: str) -> str:
    """A signed-in account's owner key: the same for the same e-mail, a safe file name, and no
    e-mail address in folder names."""
    return KEY_PREFIXES["account"] + _digest(_email(email))


def account_person(email: str, name: str = "") -> Person:
    """The person of a signed-in (OIDC) account; a teacher when the e-mail is listed."""
    shown = name.strip() or email.split("@")[0] or "someone"
    return Person(account_key(email), shown[:MAX_NAME_CHARS], is_teacher_email(email))


def as_teacher(person: Person, passcode: str) -> Person:
    """The person as a teacher, given the configured passcode; NotAllowed saying why not (no
    teacher configured, or the wrong passcode)."""
    found = teachers()
    if not found.passcode:
        raise NotAllowed(found.problem or "no teacher passcode is configured ([cifarkit] "
                         "teacher_passcode in .streamlit/secrets.toml)")
    if not check_passcode(passcode):
        raise NotAllowed("wrong teacher passcode")
    return replace(person, teacher=True)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- people: typed names, and whoever runs the CLI or Python API


def check_name(name: str) -> str:
    """A typed name, trimmed: 1 to MAX_NAME_CHARS printable characters; ValueError otherwise."""
    trimmed = name.strip() if isinstance(name, str) else ""
    if not 1 <= len(trimmed) <= MAX_NAME_CHARS:
        raise ValueError(f"a name must be 1 to {MAX_NAME_CHARS} characters, got {len(trimmed)}")
    if not trimmed.isprintable():
        raise ValueError("a name must not contain line breaks or control characters")
    return trimmed


def register(name: str) -> Person:
    """A new person for a typed name, under a new random key (two students both called Sam
    stay apart); stored in settings.people_dir() so the key finds the name after a reload."""
    person = Person(secrets.token_hex(8), check_name(name))
    folder = settings.people_dir()
    folder.mkdir(parents=True, exist_ok=True)
    rundir.write_json_atomic(folder / f"{person.key}.json",
                             {"name": person.name, "created": time.time()})
    return person


def person(key: str) -> Person | None:
    """The registered person with this key, or None (not a key register() makes, or unknown).
    A key never makes anyone a teacher."""
    if not isinstance(key, str) or not REGISTERED_KEY.fullmatch(key):
        return None
    name = rundir.read_json(settings.people_dir() / f"{key}.json").get("name")
    try:
        return Person(key, check_name(name))
    except ValueError:
        return None


def named_person(text: str) -> Person:
    """A person named on the command line: a registered key (the same person as in the app),
    else a name, whose key is derived from it (case does not matter)."""
    found = person(text.strip()) if isinstance(text, str) else None
    if found is not None:
        return found
    name = check_name(text)
    return Person(KEY_PREFIXES["local"] + _digest(name.casefold()), name)


def local_person(name: str | None = None) -> Person:
    """Whoever runs the CLI or the Python API: name (the CLI's --user) or the person acting_as()
    set, else CIFARKIT_USER (a name or a registered key), else the OS user; a teacher when
    CIFARKIT_TEACHER_PASSCODE is set (NotAllowed when it is not the configured passcode)."""
    acting = _acting.get()
    if acting is not None and name is None:
        return acting
    found = named_person(name or os.environ.get("CIFARKIT_USER") or _os_user())
    passcode = os.environ.get("CIFARKIT_TEACHER_PASSCODE")
    return as_teacher(found, passcode) if passcode else found


@contextlib.contextmanager
def acting_as(who: Person) -> Iterator[Person]:
    """Within the block, local_person() is who (the CLI's --user, for every verb it calls)."""
    token = _acting.set(who)
    try:
        yield who
    finally:
        _acting.reset(token)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "user"


# --- ownership


def owner_fields(who: Person) -> dict[str, str]:
    """What create records in status.json: whose job it is, and the name to show."""
    return {"owner": who.key, "owner_name": who.name}


def may_act(who: Person, info: dict[str, Any]) -> bool:
    """Owner or teacher; a job with no recorded owner (made before classes) is anyone's."""
    owner = info.get("owner")
    return owner is None or who.teacher or owner == who.key


def may_see(who: Person, info: dict[str, Any]) -> bool:
    """Own jobs (and ownerless ones), everyone's for a teacher, or when the teacher lets
    students see each other's jobs (read-only: may_act still decides)."""
    return may_act(who, info) or class_rules().students_see_others


def check_may_act(who: Person, kind: jobs.JobKind, job_id: str, info: dict[str, Any],
                  verb: str) -> None:
    """NotAllowed unless who may act: "run X belongs to Alice: only Alice or a teacher can
    stop it"."""
    if not may_act(who, info):
        owner = info.get("owner_name") or "another student"
        raise NotAllowed(f"{kind.noun} {job_id} belongs to {owner}: only {owner} or a teacher "
                         f"can {verb} it")


def require_teacher(who: Person, what: str = "do this") -> None:
    """NotAllowed for a student: "only a teacher can change the class settings"."""
    if not who.teacher:
        raise NotAllowed(f"only a teacher can {what}")


# --- class limits: set by the teacher, enforced on every launch and resume


@dataclass(frozen=True)
class ClassRules(JsonConfig):
    """The class settings (settings.classroom_file()); None or () means no limit."""

    json_name = "class settings"

    max_epochs: int | None = None  # per run; a search counts trials × epochs per trial
    max_minutes: float | None = None  # training minutes per job, every attempt together
    max_jobs: int | None = None  # queued + running per student, runs and searches together
    architectures: tuple[str, ...] = ()  # names from cifarkit.models.catalog
    input_sizes: tuple[int, ...] = ()  # model.input_size values, in pixels
    students_see_others: bool = False  # students see others' jobs, read-only

    def validate(self) -> ClassRules:
        """ConfigError naming the first wrong field; return self so calls chain."""
        check_types(self)
        check_whole_number(self.max_epochs, "max_epochs", high=MAX_EPOCHS, optional=True)
        minutes = self.max_minutes
        require(minutes is None or (is_number(minutes) and 0 < minutes <= MAX_MINUTES),
                "max_minutes", f"must be a number of minutes above 0 and at most {MAX_MINUTES:,}, "
                f"got {minutes!r}")
        check_whole_number(self.max_jobs, "max_jobs", high=MAX_JOBS, optional=True)
        unknown = [name for name in self.architectures if name not in MODELS]
        require(not unknown, "architectures",
                f"unknown architectures {unknown}; choose from cifarkit.models.catalog")
        sizes = [size for size in self.input_sizes if not is_between(size, 1, MAX_INPUT_SIZE)]
        require(not sizes, "input_sizes",
                f"each must be a whole number from 1 to {MAX_INPUT_SIZE}, got {sizes}")
        return self


def read_class_rules() -> tuple[ClassRules, str]:
    """The class settings and "" or, for a broken file, the defaults (no limits) and why the
    file was not used: a hand edit gone wrong never stops the class working."""
    path = settings.classroom_file()
    try:
        stat = path.stat()
    except OSError:
        return ClassRules(), ""
    return _read_rules(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_rules(path: Path, _mtime_ns: int, _size: int) -> tuple[ClassRules, str]:
    """Cached per file version: pages ask may_see for every job on every rerun."""
    try:
        return ClassRules.load(path).validate(), ""
    except ConfigError as error:
        return ClassRules(), f"class settings ignored, no limits apply: {error}"


def class_rules() -> ClassRules:
    """The class settings in force (defaults when the file is missing or broken)."""
    return read_class_rules()[0]


def set_class_rules(who: Person, **changes: Any) -> ClassRules:
    """Change some class settings (JSON values: lists for architectures and input sizes) and
    save them atomically; a teacher only, every value checked before anything is written."""
    require_teacher(who, "change the class settings")
    rules = ClassRules.from_dict({**class_rules().to_dict(), **changes}).validate()
    path = settings.classroom_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    rundir.write_json_atomic(path, rules.to_dict())
    return rules


@dataclass(frozen=True)
class Request:
    """What a launch asks for, in the terms of the limits."""

    epochs: int | None  # None: a time budget fits the epochs (the minutes limit bounds it)
    epochs_text: str  # "50", or "10 trials × 5 epochs = 50" for a search
    architecture: str
    input_size: int
    budget_minutes: float | None = None  # training.time_budget_s, in minutes


def _request(config: RunConfig | TuneConfig) -> Request:
    if isinstance(config, TuneConfig):
        model, trials, each = config.base.model, config.max_trials, config.epochs_per_trial
        return Request(trials * each, f"{trials} trials × {each} epochs = {trials * each}",
                       model.architecture, model.input_size)
    model, training = config.model, config.training
    if training.time_budget_s is not None:
        return Request(None, "", model.architecture, model.input_size,
                       training.time_budget_s / 60)
    return Request(training.epochs, str(training.epochs), model.architecture, model.input_size)


def check_launch(kind: jobs.JobKind, config: Any, who: Person | None = None,
                 root: str | Path | None = None) -> None:
    """NotAllowed, naming the limit, when a student's new (or resumed) job would break a class
    limit; teachers are exempt. root is where kind's jobs live (others': their defaults)."""
    who = who or local_person()
    if who.teacher:
        return
    rules, asked = class_rules(), _request(config)
    _check_budget(rules, asked, kind)
    if rules.max_epochs is not None and asked.epochs is not None \
            and asked.epochs > rules.max_epochs:
        raise NotAllowed(f"the class allows at most {plural(rules.max_epochs, 'epoch')} per "
                         f"{kind.noun} (you asked for {asked.epochs_text})")
    if rules.architectures and asked.architecture not in rules.architectures:
        raise NotAllowed(f"the class allows only the architectures "
                         f"{', '.join(rules.architectures)} (you asked for {asked.architecture})")
    if rules.input_sizes and asked.input_size not in rules.input_sizes:
        raise NotAllowed(f"the class allows only the input sizes "
                         f"{', '.join(map(str, rules.input_sizes))} px (you asked for "
                         f"{asked.input_size})")
    active = active_jobs(who, kind, root)
    if rules.max_jobs is not None and active >= rules.max_jobs:
        allowed = plural(rules.max_jobs, "queued or running job")
        raise NotAllowed(f"the class allows at most {allowed} per student (you have {active}: "
                         "wait for one to finish or stop it)")


def _check_budget(rules: ClassRules, asked: Request, kind: jobs.JobKind) -> None:
    """A time budget longer than the class's minutes would only be cut short: refused now."""
    if rules.max_minutes is None or asked.budget_minutes is None:
        return
    if asked.budget_minutes > rules.max_minutes:
        raise NotAllowed(f"the class allows at most {rules.max_minutes:g} min of training per "
                         f"{kind.noun} (you asked for a budget of {asked.budget_minutes:g} min)")


def active_jobs(who: Person, kind: jobs.JobKind | None = None,
                root: str | Path | None = None) -> int:
    """How many of who's runs and searches are queued or running (root: kind's folder)."""
    from cifarkit import runs, searches  # they build on jobs, as this module does

    return sum(1 for each in (runs.KIND, searches.KIND)
               for job in jobs.list_jobs(each, root if each == kind else None)
               if job.is_active and job.info.get("owner") == who.key)


def check_time_left(who: Person, kind: jobs.JobKind, job_id: str,
                    info: dict[str, Any]) -> None:
    """NotAllowed when a student resumes a job that has used the class time limit already."""
    limit = None if who.teacher else class_rules().max_minutes
    used = info.get("train_seconds") or 0.0
    if limit is not None and used >= limit * 60:
        raise NotAllowed(f"{kind.noun} {job_id} has used the class limit of {limit:g} min")


def limit_fields(who: Person) -> dict[str, float | None]:
    """What create and resume record for the worker: the class time limit in minutes (None
    for a teacher, or none set). Fixed at launch, so a job keeps the rules it started under."""
    return {"time_limit_min": None if who.teacher else class_rules().max_minutes}


def limit_message(minutes: float) -> str:
    """How a job that reached the time limit ends (its status "stopped", this as the error)."""
    return f"stopped at the class limit of {minutes:g} min"
