"""Jobs: the one lifecycle that runs, searches and imported models share.

A job is a folder <root>/<id>/ holding its config (the kind's marker file) and status.json,
written by a worker process that the UI only watches. Users name jobs by id (CLI arguments, page
buttons), so an id is checked before any path is built from it: nothing outside the root can be
read, resumed or deleted. A folder whose config cannot be read is not hidden but listed as
damaged, so it can be seen and deleted. cifarkit.runs and cifarkit.searches each declare a
JobKind and add only what differs; the folder's files themselves are cifarkit.rundir's.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from cifarkit import cluster, processes, queue, rundir, settings
from cifarkit.config import check_types

if TYPE_CHECKING:
    from cifarkit.classroom import Person

ACTIVE = ("queued", "running")
# "cancelled": a STOP reached it while it waited in the device queue (cifarkit.queue).
RESUMABLE = ("stopped", "interrupted", "failed", "cancelled")
STATUSES = (*ACTIVE, "completed", "failed", "stopped", "cancelled")  # what status.json says
DAMAGED = "damaged"
# <YYYYmmdd>-<HHMMSS>-<label>-<4 hex>, see new_job_id. The label is an architecture or algorithm
# name; it may hold letters, digits, "_" and "-", never "/" or ".", so an id is one plain name.
ID_PATTERN = re.compile(r"\d{8}-\d{6}-[A-Za-z0-9_-]{1,64}-[0-9a-f]{4}")


class JobError(ValueError):
    """A job that does not exist, is not a job id, or cannot do what was asked."""


# One error per kind, here rather than in runs/searches so that a worker refusing to start
# (training.train) raises its kind's error without importing the launcher.
class RunError(JobError):
    """A run that does not exist or cannot do what was asked (e.g. resume a running run)."""


class SearchError(JobError):
    """A search that does not exist or cannot do what was asked (e.g. resume a running one)."""


@dataclass
class Job:
    """A job folder as seen right now; Run and Search add what only they have."""

    job_id: str
    path: Path
    config: Any
    status: str  # queued | running | completed | failed | stopped | cancelled | interrupted
    info: dict[str, Any] = field(default_factory=dict)  # status.json

    @property
    def name(self) -> str:
        return self.config.name or self.job_id

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def can_resume(self) -> bool:
        return self.status in RESUMABLE


@dataclass(frozen=True)
class JobKind:
    """What tells runs and searches apart: their words, config file, error, where they live,
    how their worker starts, and proof of completion (an artifact only a finished job has, for
    a status.json that was lost). The lifecycle below is written once, over a kind."""

    noun: str  # "run" | "search", in messages
    plural: str  # "runs" | "searches"
    marker: str  # the config file that makes a folder a job of this kind
    config: Any  # its config class: .load(path) reads the marker file
    error: type[JobError]
    job: type[Job]  # what load() returns
    default_root: Callable[[], Path]  # read when called: settings follow the environment
    label: Callable[[Any], str]  # the config's word in a new id (architecture, algorithm)
    worker: tuple[str, str]  # `python -m cifarkit <command> <folder flag> <folder>`
    log: str  # the worker's stdout/stderr file in the folder
    finished_marker: str | None = None
    resume_refusal: Callable[[Path], str | None] = lambda _path: None  # why a resume must not

    def root(self, root: str | Path | None = None) -> Path:
        """The folder its jobs live in: root when given (tests, the Python API), else settings."""
        return Path(root) if root is not None else self.default_root()


@dataclass
class Damaged:
    """A job folder whose config cannot be read: listed with the reason so it can be deleted."""

    job_id: str
    path: Path
    reason: str
    info: dict[str, Any] = field(default_factory=dict)  # status.json, as far as it reads
    status: str = DAMAGED


def new_job_id(label: str) -> str:
    """Sortable by time, readable, and unique even for two launches in the same second."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{label}-{secrets.token_hex(2)}"


def job_dir(kind: JobKind, job: str | Path, root: str | Path | None = None) -> Path:
    """The folder of a job named by id, or by the Path of a folder directly inside root.

    Raises kind.error for anything else (`../x`, an absolute path, a symlink leading out of
    root) before touching the file system outside root, and when no such job exists.
    """
    root = kind.root(root)
    name = job.name if isinstance(job, Path) and _inside(job.parent, root) else str(job)
    path = root / name
    if not ID_PATTERN.fullmatch(name) or not _inside(path.resolve().parent, root):
        raise kind.error(f"not a {kind.noun} id: {str(job)!r}")
    if not (path / kind.marker).is_file():
        raise kind.error(f"no {kind.noun} {name!r} in {root}")
    return path


def _inside(folder: Path, root: Path) -> bool:
    """True if folder is root itself (both resolved: symlinks and '..' followed)."""
    return folder.resolve() == root.resolve()


def job_dirs(kind: JobKind, root: str | Path | None = None) -> list[Path]:
    """Every job folder under root, newest first: ids only, none leading outside root."""
    root = kind.root(root)
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.iterdir(), reverse=True):
        try:
            found.append(job_dir(kind, path, root))
        except JobError:
            continue
    return found


def read_config(kind: JobKind, path: Path) -> tuple[Any | None, str]:
    """The job's config, or None and why it cannot be used (unreadable, or wrong types)."""
    try:
        config = kind.config.load(path / kind.marker)
        # A hand-edited file can hold an object where a name belongs: readers would then fail
        # far from the cause (a page for everyone), so such a job counts as damaged too.
        check_types(config)
    except (OSError, ValueError) as error:  # ConfigError and UnicodeDecodeError are ValueErrors
        # Pages show the reason to students: the file is named, not its place on the server.
        detail = str(error).replace(f"{path / kind.marker}: ", "")
        return None, f"{kind.marker} cannot be read ({detail})"
    return config, ""


# --- the lifecycle: one implementation, parameterised by the kind


def create(kind: JobKind, config: Any, root: str | Path | None = None,
           by: Person | None = None) -> Path:
    """Make <root>/<new id>/ with the validated config and a queued status, owned by `by`
    (None: classroom.local_person()); classroom.NotAllowed, with nothing made, when a student
    asks for more than the class limits allow."""
    from cifarkit import classroom  # classroom builds on this module: imported when used

    config.validate()
    by = by or classroom.local_person()
    classroom.check_launch(kind, config, by, root)
    path = kind.root(root) / new_job_id(kind.label(config))
    path.mkdir(parents=True)
    rundir.update_status(path, status="queued", created=time.time(),
                         **classroom.owner_fields(by), **classroom.limit_fields(by))
    config.save(path / kind.marker)
    return path


def launch(kind: JobKind, config: Any, root: str | Path | None = None,
           by: Person | None = None) -> Any:
    """Create a job and start its worker process; returns at once."""
    path = create(kind, config, root, by=by)
    start_worker(kind, path)
    return load(kind, path, root)


def staging_dir(kind: JobKind, root: str | Path | None = None) -> Path:
    """A hidden folder in root to fill with a job made in this process (an imported model):
    not a job id, so no listing sees it until adopt() renames it into place."""
    root = kind.root(root)
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".staging-", dir=root))


def adopt(kind: JobKind, staging: Path, label: str, config: Any,
          root: str | Path | None = None, by: Person | None = None) -> Any:
    """Rename a filled staging folder to a new job id and write its config last (a folder is
    a job once its config is there): the job appears complete or not at all. Owned by `by`
    (None: classroom.local_person())."""
    from cifarkit import classroom

    path = kind.root(root) / new_job_id(label)
    os.rename(staging, path)
    rundir.update_status(path, **classroom.owner_fields(by or classroom.local_person()))
    config.save(path / kind.marker)
    return load(kind, path, root)


def load(kind: JobKind, job: str | Path, root: str | Path | None = None) -> Any:
    """A job by id, or by the path of its folder directly inside root (see job_dir), as
    kind.job; kind.error when it is damaged (its config cannot be read: see list_damaged)."""
    path = job_dir(kind, job, root)
    config, problem = read_config(kind, path)
    if config is None:
        raise kind.error(f"{kind.noun} {path.name} is damaged: {problem}")
    info = rundir.read_status(path)
    return kind.job(path.name, path, config, effective_status(kind, path, info), info)


def list_jobs(kind: JobKind, root: str | Path | None = None) -> list[Any]:
    """Every readable job, newest first; damaged ones are in list_damaged, not here."""
    found = []
    for path in job_dirs(kind, root):
        try:
            found.append(load(kind, path, root))
        except JobError:
            continue
    return found


def list_damaged(kind: JobKind, root: str | Path | None = None) -> list[Damaged]:
    """Job folders whose config cannot be read, newest first, with the reason: listed so that
    pages and the CLI can show and delete them instead of losing them from view."""
    damaged = []
    for path in job_dirs(kind, root):
        config, problem = read_config(kind, path)
        if config is None:
            damaged.append(Damaged(path.name, path, problem, rundir.read_status(path)))
    return damaged


def stop(kind: JobKind, job: str | Path, root: str | Path | None = None,
         by: Person | None = None) -> Any:
    """Ask a job to stop between batches (a STOP file its worker checks); it can be resumed.
    Only its owner or a teacher may (classroom.NotAllowed)."""
    from cifarkit import classroom

    current = load(kind, job, root)
    classroom.check_may_act(by or classroom.local_person(), kind, current.job_id, current.info,
                            "stop")
    if not current.is_active:
        raise kind.error(f"{kind.noun} {current.job_id} is {current.status}, not running")
    rundir.request_stop(current.path)
    if current.info.get("ray_job") and cluster.cancel(current.info):  # Ray had not started it
        rundir.update_status(current.path, status="cancelled", finished=time.time())
    return current


def resume(kind: JobKind, job: str | Path, root: str | Path | None = None,
           by: Person | None = None) -> Any:
    """Continue a stopped, interrupted or failed job in a new worker process, unless the
    kind's resume_refusal says why it must not. Only its owner or a teacher may, and a
    student's resume obeys the class limits as a launch does (time used included)."""
    from cifarkit import classroom

    current = load(kind, job, root)
    by = by or classroom.local_person()
    classroom.check_may_act(by, kind, current.job_id, current.info, "resume")
    if not current.can_resume:
        raise kind.error(f"{kind.noun} {current.job_id} is {current.status}; only "
                         f"{', '.join(RESUMABLE)} {kind.plural} can be resumed")
    refusal = kind.resume_refusal(current.path)
    if refusal:
        raise kind.error(refusal)
    classroom.check_launch(kind, current.config, by, root)
    classroom.check_time_left(by, kind, current.job_id, current.info)
    rundir.update_status(current.path, **classroom.limit_fields(by))
    rundir.clear_stop(current.path)
    start_worker(kind, current.path, resume=True)
    return load(kind, current.path, root)


def wait(kind: JobKind, job: str | Path, timeout: float = 600.0,
         root: str | Path | None = None) -> Any:
    """Block until the job leaves queued/running (for the CLI and tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = load(kind, job, root)
        if not current.is_active:
            return current
        time.sleep(0.5)
    raise TimeoutError(f"{kind.noun} {job} still active after {timeout:.0f} s")


def delete(kind: JobKind, job: str | Path, root: str | Path | None = None,
           by: Person | None = None) -> None:
    """Remove a job folder, damaged or not (never what a symlink points to); a job whose worker
    is alive is refused: it must be stopped first. Only its owner or a teacher may."""
    from cifarkit import classroom

    path = job_dir(kind, job, root)
    info = rundir.read_status(path)
    classroom.check_may_act(by or classroom.local_person(), kind, path.name, info, "delete")
    config, _ = read_config(kind, path)
    status = DAMAGED if config is None else effective_status(kind, path, info)
    alive = info.get("status") in ACTIVE and queue.worker_alive(info)
    if status in ACTIVE or (status == DAMAGED and alive):
        raise kind.error(f"{kind.noun} {path.name} is {status}: stop it before deleting")
    shutil.rmtree(path)


class Lifecycle(NamedTuple):
    """The lifecycle bound to one kind, in this order: what runs and searches export."""

    create: Callable[..., Path]
    launch: Callable[..., Any]
    load: Callable[..., Any]
    list: Callable[..., list[Any]]
    list_damaged: Callable[..., list[Damaged]]
    stop: Callable[..., Any]
    resume: Callable[..., Any]
    wait: Callable[..., Any]
    delete: Callable[..., None]


def lifecycle(kind: JobKind) -> Lifecycle:
    """Every lifecycle function with the kind filled in (runs.load(id) is load(runs.KIND, id))."""
    return Lifecycle(*(partial(verb, kind) for verb in (
        create, launch, load, list_jobs, list_damaged, stop, resume, wait, delete)))


def effective_status(kind: JobKind, path: Path, info: dict[str, Any]) -> str:
    """The job's status as it really is: a queued/running job whose process is gone was
    interrupted, and a status.json that is missing or unreadable is recovered from artifacts."""
    status = info.get("status")
    if status not in STATUSES:
        return recovered_status(kind, path)
    if status in ACTIVE and not queue.worker_alive(info):
        return "interrupted"
    return status


def recovered_status(kind: JobKind, path: Path) -> str:
    """What the artifacts prove without status.json: scored means completed (or stopped, when
    the STOP file that ended it is still there); anything less ends as interrupted."""
    if kind.finished_marker and (path / kind.finished_marker).is_file():
        return "stopped" if rundir.stop_requested(path) else "completed"
    return "interrupted"


# --- worker processes: started detached, recognised later by pid and start time


def start_worker(kind: JobKind, folder: Path, resume: bool = False) -> int | str:
    """Start `python -m cifarkit <command> <folder flag> <folder> [--resume]` detached,
    logging to folder/kind.log, and put it at the end of the device queue. The one place a
    worker starts: it waits in line itself (cifarkit.queue.slot) before loading TensorFlow.

    Marks folder/status.json queued with the worker's identity (process_identity), by which
    effective_status() later tells a live worker from a dead one. Its own session: the worker
    outlives the app's server and any page, and a Ctrl-C in a terminal does not reach it.
    """
    if settings.ray_address():  # a Ray cluster runs it instead (cifarkit.cluster)
        return cluster.submit(kind, folder, resume)
    try:
        settings.slots()  # a bad CIFARKIT_SLOTS: one line here, not a dead worker's traceback
    except ValueError as error:
        raise kind.error(str(error)) from None
    command, folder_flag = kind.worker
    arguments = [command, folder_flag, str(folder.resolve()), *(["--resume"] if resume else [])]
    rundir.update_status(folder, status="queued", error=None, note=None, ray_job=None)
    with open(folder / kind.log, "a") as log:
        process = subprocess.Popen([sys.executable, "-m", "cifarkit", *arguments], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, cwd=Path.cwd(), env=_worker_env())
    identity = process_identity(process.pid)
    rundir.update_status(folder, **identity)
    queue.enqueue(folder, kind.noun, identity)  # launch order is queue order
    # Reap the child when it exits so it never lingers as a zombie that looks alive.
    threading.Thread(target=process.wait, daemon=True).start()
    return process.pid


def _worker_env() -> dict[str, str]:
    """The launcher's environment, plus: the package importable, output unbuffered (the page
    shows the log's tail live), and GPU memory growth on (queue.GPU_SHARING) unless set."""
    env = {**queue.GPU_SHARING, **os.environ}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return env


process_identity = processes.process_identity  # training and tuning record their own
