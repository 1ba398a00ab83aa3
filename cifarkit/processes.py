"""Which process a job's worker is: its pid plus its start time, read from /proc.

A pid alone is not enough: after a reboot or a long class the same number names another
program. Kept apart from cifarkit.jobs so that the queue (which jobs imports) can test liveness
without importing the job lifecycle.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def process_identity(pid: int) -> dict[str, Any]:
    """pid plus its start time: together they name one process even after pids are reused."""
    return {"pid": pid, "pid_started": start_ticks(pid)}


def start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot), from /proc; None where unavailable
    or when the process is a zombie (it has exited and only waits to be reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19]) if fields[0] not in ("Z", "X") else None


def is_alive(pid: Any, started: Any) -> bool:
    """True if pid is still the very process that recorded itself (not a zombie, not reused)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if Path("/proc").is_dir():
        ticks = start_ticks(pid)
        return ticks is not None and (started is None or ticks == started)
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
