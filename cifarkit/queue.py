"""The device queue: jobs wait in line for a slot, with files and kernel locks and no daemon.

jobs.start_worker writes a ticket (tickets/<job id>.json in settings.queue_dir()) and starts the
worker at once; the worker waits in `with slot(folder):` *before* it imports TensorFlow (a
waiter costs a bare Python), then trains holding an flock on one slot file. Nothing else keeps
state: a killed holder frees its slot (the kernel drops its lock), a killed waiter's ticket is
dropped by the next process that looks (its pid is dead), and the line survives any process
being killed, the app's server included. The line is strict first in, first out: under the
queue-wide lock the waiter at position p takes a slot only while p slots are free, so nobody
overtakes. Runs and searches share the slots (settings.slots()).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cifarkit import cluster, durations, processes, progress, rundir, settings

POLL_SECONDS = 0.5  # how often a waiter looks at the line and at its STOP file
LOCK = "lock"  # the queue-wide lock: tickets change and slots are taken only while holding it
TICKETS = "tickets"
CANCEL_NOTE = "cancelled while waiting in the queue; resume puts it back in line"
# Memory growth on: TensorFlow (and JAX, for a Keras JAX backend) take GPU memory as needed.
GPU_SHARING = {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
Ticket = dict[str, Any]  # job_id, kind, path, order, pid, pid_started, joined, state, slot, took


class Cancelled(RuntimeError):
    """A STOP reached a job still waiting in line: it leaves with status "cancelled"."""


@dataclass(frozen=True)
class QueueEntry:
    """One job in the line or holding a slot, as the pages and `runs list` show it."""

    job_id: str
    kind: str  # "run" | "search"
    path: Path
    owner: str | None  # the owner's key (status.json), None for a job made before classes
    owner_name: str | None
    position: int | None  # 1-based among the waiting; None while holding a slot
    state: str  # "queued" | "running"
    slot: int | None
    since: float  # when it joined the line (queued) or took its slot (running)


def worker_alive(info: dict[str, Any]) -> bool:
    """Whether the worker that recorded itself in info (status.json or a ticket) still runs:
    the one liveness test of jobs.effective_status and the queue (a cluster backend adds its
    own case here)."""
    if info.get("ray_job"):  # on a Ray cluster: Ray knows (cifarkit.cluster)
        return cluster.alive(info)
    return processes.is_alive(info.get("pid"), info.get("pid_started"))


# --- the worker's side: join, wait, hold


@contextmanager
def slot(folder: str | Path, kind: str = "run", on_wait: Callable[[int], None] | None = None,
         until_exit: bool = False) -> Iterator[int]:
    """Wait in line for a device slot, then hold it for the body; yields the slot number.

    status.json says "queued" with this process's identity while waiting (so a killed waiter
    reads as interrupted), and "running" once the slot is held. A STOP while waiting raises
    Cancelled (status "cancelled", the body never runs). on_wait(position) is called whenever
    the position changes (the foreground CLI prints it). On a GPU machine the slot's GPU is made
    the only visible one before TensorFlow loads. until_exit: a worker process about to end
    keeps the slot until it has (TensorFlow takes seconds to let go of its memory), so the
    next job does not load TensorFlow beside it; the line itself moves on at once.
    """
    if cluster.inside():  # Ray started it once its GPU/CPUs were free: no line to wait in
        if not cluster.still_wanted(Path(folder)):
            raise Cancelled(f"{Path(folder).name}: this Ray submission was cancelled or replaced")
        yield 0
        return
    folder = Path(folder).resolve()
    me = processes.process_identity(os.getpid())
    joined = time.time()
    enqueue(folder, kind, me)
    rundir.update_status(folder, status="queued", **me)
    held: tuple[int, int] | None = None
    try:
        held = _wait_for_slot(folder, kind, me, on_wait)
        _use_gpu(held[0])
        taken = time.time()
        rundir.update_status(folder, status="running", slot=held[0], slot_taken=taken,
                             queued_seconds=round(taken - joined, 3))
        yield held[0]
    finally:
        _leave(folder, me, None if until_exit else held)  # an fd left open: freed at exit


def enqueue(folder: Path, kind: str, identity: dict[str, Any]) -> None:
    """Put a job at the end of the line for the worker process `identity` (pid, pid_started);
    a ticket the same process already holds keeps its place (the worker and its launcher both
    call this, whichever comes first)."""
    with _locked():
        _enqueue_locked(folder.resolve(), kind, identity)


def _enqueue_locked(folder: Path, kind: str, identity: dict[str, Any]) -> None:
    tickets = _live_tickets()
    current = rundir.read_json(_ticket_path(folder))
    if current.get("pid") == identity["pid"] and worker_alive(current):
        return
    order = max((ticket["order"] for ticket in tickets), default=0) + 1
    rundir.write_json_atomic(_ticket_path(folder), {
        "job_id": folder.name, "kind": kind, "path": str(folder), "order": order,
        "joined": time.time(), "state": "queued", "slot": None, "took": None, **identity})


def _wait_for_slot(folder: Path, kind: str, me: dict[str, Any],
                   on_wait: Callable[[int], None] | None) -> tuple[int, int]:
    """Poll until this job is far enough up the line for a free slot: (slot, locked fd)."""
    shown = None
    while True:
        if rundir.stop_requested(folder):
            _cancel(folder, me)
        with _locked():
            position = _position(folder, kind, me)
            held = _take_slot(position, settings.slots())
            if held is not None and not rundir.stop_requested(folder):
                _mark_running(folder, held[0])
                return held
        if held is not None:  # a STOP came while taking it: give the slot straight back
            os.close(held[1])
            continue
        if on_wait is not None and position != shown:
            on_wait(position)
            shown = position
        time.sleep(POLL_SECONDS)


def _position(folder: Path, kind: str, me: dict[str, Any]) -> int:
    """This job's 1-based place among the waiting (under the lock); a ticket that vanished
    (the queue folder was cleared by hand) is written again at the end."""
    waiting = [ticket for ticket in _live_tickets() if ticket["state"] == "queued"]
    for index, ticket in enumerate(waiting):
        if ticket["path"] == str(folder):
            return index + 1
    _enqueue_locked(folder, kind, me)
    return len(waiting) + 1


def _take_slot(position: int, count: int) -> tuple[int, int] | None:
    """Lock the position-th free slot file while `position` slots are free, else None.

    Trying a slot's flock is how a free slot is told from a held one: the lock lives exactly as
    long as the holder's process. The free ones it skipped are released at once.
    """
    free: list[tuple[int, int]] = []
    for number in range(count):
        handle = os.open(_slot_path(number), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            continue
        free.append((number, handle))
        if len(free) == position:
            break
    taken = free.pop() if len(free) == position else None
    for _, handle in free:
        os.close(handle)
    return taken


def _mark_running(folder: Path, number: int) -> None:
    path = _ticket_path(folder)
    rundir.write_json_atomic(path, {**rundir.read_json(path), "state": "running",
                                    "slot": number, "took": time.time()})


def _cancel(folder: Path, me: dict[str, Any]) -> None:
    """Leave the line because of a STOP: status "cancelled" with the note, then Cancelled."""
    _leave(folder, me, None)
    rundir.update_status(folder, status="cancelled", note=CANCEL_NOTE, error=None,
                         finished=time.time())
    raise Cancelled(f"{folder.name}: {CANCEL_NOTE}")


def _leave(folder: Path, me: dict[str, Any], held: tuple[int, int] | None) -> None:
    """Drop this process's ticket, then free its slot (closing the file drops the flock)."""
    with _locked():
        path = _ticket_path(folder)
        if rundir.read_json(path).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)
    if held is not None:
        os.close(held[1])


def _use_gpu(number: int) -> None:
    """Show the worker only its slot's GPU (round-robin when slots outnumber GPUs), with memory
    growth on so that jobs sharing a GPU do not each grab all of it."""
    gpus = settings.visible_gpus()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[number % len(gpus)]
    for name, value in GPU_SHARING.items():
        os.environ.setdefault(name, value)


# --- the line's files


@contextmanager
def _locked() -> Iterator[None]:
    """Hold the queue-wide lock (an flock: a killed holder cannot leave it locked)."""
    folder = settings.queue_dir()
    (folder / TICKETS).mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _ticket_path(folder: Path) -> Path:
    return settings.queue_dir() / TICKETS / f"{folder.name}.json"


def _slot_path(number: int) -> Path:
    return settings.queue_dir() / f"slot-{number}"


def _live_tickets() -> list[Ticket]:
    """Every ticket whose worker is alive, running first, then the line in order; a dead
    worker's ticket is deleted (call under the lock)."""
    live = []
    for path in (settings.queue_dir() / TICKETS).glob("*.json"):
        ticket = rundir.read_json(path)
        if _well_formed(ticket) and worker_alive(ticket):
            live.append(ticket)
        else:
            path.unlink(missing_ok=True)
    return sorted(live, key=lambda ticket: (ticket["state"] != "running", ticket["order"]))


def _well_formed(ticket: Ticket) -> bool:
    return (isinstance(ticket.get("order"), int) and isinstance(ticket.get("path"), str)
            and ticket.get("state") in ("queued", "running"))


# --- reading the line: entries, estimated waits, moves


def entries() -> list[QueueEntry]:
    """Every job holding a slot (by slot) and then every one waiting (in line order)."""
    if not (settings.queue_dir() / TICKETS).is_dir():
        return []
    with _locked():
        tickets = _live_tickets()
    found, position = [], 0
    for ticket in tickets:
        waiting = ticket["state"] == "queued"
        position += waiting
        found.append(_entry(ticket, position if waiting else None))
    return sorted(found, key=lambda entry: (entry.position or 0, entry.slot or 0))


def _entry(ticket: Ticket, position: int | None) -> QueueEntry:
    path = Path(ticket["path"])
    info = rundir.read_status(path)
    owner, name = info.get("owner"), info.get("owner_name")
    return QueueEntry(
        job_id=path.name, kind=str(ticket.get("kind", "run")), path=path,
        owner=owner if isinstance(owner, str) else None,
        owner_name=name if isinstance(name, str) else None, position=position,
        state=ticket["state"], slot=ticket.get("slot") if position is None else None,
        since=float(ticket.get("took") or ticket.get("joined") or 0.0))


def waits(line: list[QueueEntry] | None = None,
          now: float | None = None) -> dict[str, float | None]:
    """Estimated seconds until each waiting job (by job id) takes a slot; None where unknown.

    Simulates the slots: each holder frees its slot after its own time left (its progress, or
    its expected duration less the time it has held the slot), and each job ahead in line then
    holds one for its expected duration (durations.History, from finished jobs here).
    """
    line = entries() if line is None else line
    now = time.time() if now is None else now
    history = durations.History.load()
    held = {entry.slot: _remaining(entry, history, now) for entry in line
            if entry.state == "running"}
    # A slot is free now (0) or when its holder finishes; holders of slots beyond the count
    # (slots were lowered) free none that a waiter may take.
    free_at = [held.get(number, 0.0) for number in range(settings.slots())]
    result: dict[str, float | None] = {}
    start: float | None = 0.0
    for entry in (entry for entry in line if entry.state == "queued"):
        # No one starts before the job ahead of it: after an unknown start, all are unknown.
        start = _earliest(free_at) if start is not None else None
        result[entry.job_id] = start
        if start is not None:
            free_at.remove(start)
            expected = history.expected_seconds(entry.kind, entry.path)
            free_at.append(None if expected is None else start + expected)
    return result


def _remaining(entry: QueueEntry, history: durations.History, now: float) -> float | None:
    """Seconds until a holder frees its slot: its training progress says (a run past its first
    timed batch), else its expected duration less the time it has held the slot; None when
    unknown, or when it has already held the slot longer than expected."""
    if entry.kind == "run":
        total = durations.planned_epochs(entry.path)
        left = progress.time_left(total, rundir.epoch_rows(entry.path),
                                  rundir.latest_batch(entry.path)) if total else None
        if left is not None:
            return left
    expected = history.expected_seconds(entry.kind, entry.path)
    left = None if expected is None else expected - (now - entry.since)
    return left if left is not None and left > 0 else None


def _earliest(times: list[float | None]) -> float | None:
    """The first moment a slot frees: known only if no unknown holder could free one sooner."""
    known = [value for value in times if value is not None]
    if not known or (len(known) < len(times) and min(known) > 0):
        return None
    return min(known)


def wait_texts(line: list[QueueEntry] | None = None) -> dict[Path, str]:
    """wait_text for every job waiting in line at once (by folder): one look at the line and
    one estimate, for listings of many jobs."""
    line = entries() if line is None else line
    seconds = waits(line)
    return {entry.path: _wait_phrase(entry.position, seconds.get(entry.job_id))
            for entry in line if entry.position is not None}


def wait_text(path: str | Path) -> str | None:
    """"queued, 3rd in line, about 4 min" for a job waiting in line ("queued, 4th in line"
    while the wait cannot be estimated); None when it is not waiting in line."""
    return wait_texts().get(Path(path).resolve())


def _wait_phrase(position: int, seconds: float | None) -> str:
    text = f"queued, {ordinal(position)} in line"
    return text if seconds is None else f"{text}, {about(seconds)}"


def ordinal(number: int) -> str:
    """1st 2nd 3rd 4th … 11th 12th 13th … 21st 22nd 23rd … 111th."""
    suffix = "th" if number % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(
        number % 10, "th")
    return f"{number}{suffix}"


def about(seconds: float) -> str:
    """A wait in words, as rough as the estimate: "starting", "about 1 min", "about 1 h 20 min"."""
    minutes = round(seconds / 60)
    if seconds < 5:
        return "starting"
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"about {minutes} min"
    hours, rest = divmod(round(seconds / 600) * 10, 60)
    return f"about {hours} h {rest} min" if rest else f"about {hours} h"


def move(job_id: str, position: int, by: Any = None) -> list[QueueEntry]:
    """Put a waiting job at `position` (1 = next to start) in the line; teachers only.

    Returns the new line. Refused with one line for a job not waiting in line and for a
    position outside it.
    """
    from cifarkit import classroom  # the class rules (people, teachers) live there
    from cifarkit.jobs import JobError

    classroom.require_teacher(by if by is not None else classroom.local_person(),
                              "move jobs in the queue")
    with _locked():
        waiting = [ticket for ticket in _live_tickets() if ticket["state"] == "queued"]
        ticket = next((item for item in waiting if item["job_id"] == job_id), None)
        if ticket is None:
            raise JobError(f"{job_id} is not waiting in the queue")
        if isinstance(position, bool) or not isinstance(position, int) or \
                not 1 <= position <= len(waiting):
            raise JobError(f"position must be 1 to {len(waiting)} (the jobs waiting), "
                           f"got {position!r}")
        waiting.remove(ticket)
        waiting.insert(position - 1, ticket)
        first = min(item["order"] for item in waiting)
        for order, item in enumerate(waiting, start=first):
            path = _ticket_path(Path(item["path"]))
            with suppress(OSError):  # a waiter that left meanwhile: nothing to renumber
                if path.is_file():
                    rundir.write_json_atomic(path, {**item, "order": order})
    return entries()
