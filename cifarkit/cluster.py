"""Jobs on a Ray cluster: with CIFARKIT_RAY_ADDRESS set, jobs.start_worker hands each worker to
Ray's Jobs API instead of starting a local process.

A Ray *job* (not a task) outlives the app that submitted it, as a local worker does, so the app
can restart while training goes on. The worker is the same command as locally and writes the
same folder, which is why CIFARKIT_RUNS_DIR (and the searches, uploads and data folders) must be
storage that every node mounts at the same path: the pages then read runs exactly as they do
locally. Ray queues jobs by resources (one GPU each, or CIFARKIT_RAY_CPUS CPUs on a cluster
without GPUs), so the local slot queue is skipped inside Ray. Only this module imports ray, and
only when the address is set: local processes need no Ray.
"""

from __future__ import annotations

import os
import secrets
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cifarkit import rundir, settings

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

    from cifarkit.jobs import JobKind

IN_RAY = "CIFARKIT_RAY_JOB"  # set in a worker's environment: its own Ray submission id
CPUS = "CIFARKIT_RAY_CPUS"  # CPUs each job asks for on a cluster without GPUs
DEFAULT_CPUS = 1.0
TRIAL_WORKERS = "CIFARKIT_RAY_TRIAL_WORKERS"  # trials of one search at once (tuning_parallel)
CONNECT_SECONDS = 5.0  # an unreachable head is named after this, not after a TCP timeout
STATUS_SECONDS = 3.0  # job states are fetched once per this, for every job listed at once
ALIVE = ("PENDING", "RUNNING")  # Ray states in which the worker will still write the folder
FORWARDED = ("CIFARKIT_", "KERAS", "TF_")  # environment prefixes the workers need as the app has
_clients: dict[str, JobSubmissionClient] = {}
_states: dict[str, tuple[float, dict[str, str] | None]] = {}  # address -> (fetched, states)
_has_gpus: dict[str, bool] = {}


class ClusterUnreachable(ConnectionError):
    """The Ray head at the configured address does not answer."""


def address() -> str:
    """The Ray dashboard address jobs are submitted to, with http:// when none was written."""
    value = settings.ray_address() or ""
    return value if "://" in value else f"http://{value}"


def inside() -> bool:
    """True in a worker that Ray started: Ray has already queued it by resources."""
    return bool(os.environ.get(IN_RAY))


def client(at: str | None = None) -> JobSubmissionClient:
    """A Jobs API client for the address (one per address: creating one asks the head for its
    version); ClusterUnreachable, naming the address, when the head does not answer."""
    at = at or address()
    if at not in _clients:
        import requests
        from ray.exceptions import RayError
        from ray.job_submission import JobSubmissionClient

        try:  # Ray's own check has no timeout: a silent address would hang the page
            requests.head(f"{at}/api/version", timeout=CONNECT_SECONDS)
        except requests.RequestException as error:
            raise ClusterUnreachable(
                f"the Ray cluster at {at} cannot be reached ({type(error).__name__}); is its "
                "head running, and CIFARKIT_RAY_ADDRESS its dashboard address?") from error
        try:
            _clients[at] = JobSubmissionClient(at)
        except (OSError, RuntimeError, RayError) as error:  # refused: auth token, old version
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ClusterUnreachable(f"the Ray cluster at {at} refused cifarkit: "
                                     f"{reason or type(error).__name__}") from error
    return _clients[at]


def submit(kind: JobKind, folder: Path, resume: bool = False) -> str:
    """Hand the job's worker to Ray and record the submission in status.json; returns its id.

    The id is recorded before Ray is asked, so a worker that starts at once finds itself
    wanted (still_wanted). An unreachable cluster marks the job failed with one line naming the
    address and raises kind.error: the folder and its config stay, and a resume submits again.
    """
    command, folder_flag = kind.worker
    arguments = ["-m", "cifarkit", command, folder_flag, str(folder.resolve()),
                 *(["--resume"] if resume else [])]
    submission = submission_id(folder)
    rundir.update_status(folder, status="queued", error=None, note=None, ray_job=submission,
                         ray_address=address(), pid=None, pid_started=None)
    # A search with parallel trials is a chief serving its oracle: the trial workers it submits
    # (cifarkit.tuning_parallel) hold the GPUs/CPUs.
    chief = kind.noun == "search" and trial_workers() > 1
    try:
        submit_command(folder, kind.log, arguments, reserve=not chief, submission=submission)
    except (ClusterUnreachable, ValueError) as error:  # ValueError: a bad CIFARKIT_RAY_*
        rundir.update_status(folder, status="failed", error=str(error), finished=time.time())
        raise kind.error(str(error)) from error
    return submission


def submit_command(folder: Path, log: str, arguments: list[str], reserve: bool = True,
                   extra_env: dict[str, str] | None = None, submission: str | None = None) -> str:
    """One Ray job running `python <arguments>` for the job in folder, its output appended to
    folder/log (the folder then looks as a local worker leaves it); reserve: one GPU or
    CIFARKIT_RAY_CPUS CPUs for it. Returns the submission id."""
    at = address()
    ray = client(at)
    submission = submission or submission_id(folder)
    entrypoint = (f"python {shlex.join(arguments)} "
                  f">> {shlex.quote(str(folder.resolve() / log))} 2>&1")
    env = {**worker_env(), **(extra_env or {}), IN_RAY: submission}
    ray.submit_job(entrypoint=entrypoint, submission_id=submission,
                   runtime_env={"env_vars": env}, **(_resources(at) if reserve else {}))
    _states.pop(at, None)  # the next liveness check must see the new job
    return submission


def submission_id(folder: Path, label: str = "") -> str:
    """A new Ray submission id that names the job (`ray job list`, the dashboard's Jobs tab)."""
    return "-".join(["cifarkit", folder.name, *filter(None, [label]), secrets.token_hex(3)])


def still_wanted(folder: Path) -> bool:
    """In a worker Ray started: whether the job still wants this submission. Ray cannot drop a
    job that waits for resources (it starts it later only to stop it), and a resume may have
    submitted a newer one: such a late start must leave the folder alone."""
    info = rundir.read_status(folder)
    return info.get("ray_job") == os.environ.get(IN_RAY) and info.get("status") != "cancelled"


def worker_env() -> dict[str, str]:
    """What a worker on any node needs from the app's environment: the cifarkit settings (the
    shared folders) and Keras/TensorFlow ones, as a local worker gets them (jobs._worker_env:
    this checkout on PYTHONPATH, unbuffered output), not the app machine's PATH or HOME."""
    from cifarkit import jobs

    return {key: value for key, value in jobs._worker_env().items()
            if key.startswith(FORWARDED) or key in ("PYTHONPATH", "PYTHONUNBUFFERED")}


def _resources(at: str) -> dict[str, float]:
    """One GPU per job when the cluster has any, else CIFARKIT_RAY_CPUS CPUs."""
    if at not in _has_gpus:
        from ray.util.state import list_nodes

        nodes = list_nodes(address=at, timeout=int(CONNECT_SECONDS))
        _has_gpus[at] = any((node.resources_total or {}).get("GPU", 0) > 0 for node in nodes)
    if _has_gpus[at]:
        return {"entrypoint_num_gpus": 1}
    return {"entrypoint_num_cpus": job_cpus()}


def trial_workers() -> int:
    """CIFARKIT_RAY_TRIAL_WORKERS: how many trials of one search run at once on the cluster
    (default 1: a search takes one device, like a run, so a class shares the cluster fairly)."""
    raw = os.environ.get(TRIAL_WORKERS, "1")
    if not raw.isdecimal() or int(raw) < 1:
        raise ValueError(f"{TRIAL_WORKERS} must be a whole number ≥ 1, got {raw!r}")
    return int(raw)


def job_cpus() -> float:
    """CIFARKIT_RAY_CPUS as a positive number (default 1); a bad value is named."""
    raw = os.environ.get(CPUS, str(DEFAULT_CPUS))
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ValueError(f"{CPUS} must be a number of CPUs above 0, got {raw!r}")
    return value


def state(info: dict[str, Any]) -> str | None:
    """Ray's state of the job's submission (PENDING, RUNNING, SUCCEEDED, ...), "UNKNOWN" when
    the head does not answer, None when Ray has no such job (its cluster was restarted)."""
    at = info.get("ray_address") or address()
    fetched, states = _states.get(at, (0.0, None))
    if time.monotonic() - fetched > STATUS_SECONDS:
        states = _fetch_states(at)
        _states[at] = (time.monotonic(), states)
    if states is None:
        return "UNKNOWN"
    return states.get(info.get("ray_job"))


def _fetch_states(at: str) -> dict[str, str] | None:
    """Every submission's state in one request (a listing of 30 jobs asks once)."""
    try:
        return {job.submission_id: str(job.status) for job in client(at).list_jobs()
                if job.submission_id}
    except (ClusterUnreachable, OSError, RuntimeError):
        _clients.pop(at, None)
        return None


def alive(info: dict[str, Any]) -> bool:
    """Whether the job's Ray worker is pending or running. A head that does not answer counts
    as alive: the job then keeps its recorded status rather than being offered for a resume
    that could put two workers on one folder."""
    return state(info) in (*ALIVE, "UNKNOWN")


def cancel(info: dict[str, Any]) -> bool:
    """Stop a submission Ray has not started yet (True); a started one stops by its STOP file.
    Ray keeps a waiting job listed until resources free up, then stops it at once; the worker
    would leave anyway (still_wanted)."""
    if state(info) != "PENDING":
        return False
    at = info.get("ray_address") or address()
    client(at).stop_job(info["ray_job"])
    _states.pop(at, None)
    return True
