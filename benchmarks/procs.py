"""The machine and the load test's own processes, read from /proc (Linux; psutil is not a
dependency): memory in use, the workers that name the test's folder, CPU time, clean stops."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


def meminfo_used_mb(text: str) -> tuple[float, float]:
    """(used, total) MB from /proc/meminfo's text: used is what `free` calls used, total minus
    available, so file caches the kernel can drop do not count."""
    fields = {line.split(":")[0]: float(line.split()[1]) for line in text.splitlines()
              if ":" in line and len(line.split()) >= 2}
    total = fields["MemTotal"] / 1024
    return total - fields["MemAvailable"] / 1024, total


def machine_memory_mb() -> tuple[float, float]:
    return meminfo_used_mb((PROC / "meminfo").read_text())


def pids_naming(folder: Path) -> list[int]:
    """Processes whose command line names `folder`: the workers of jobs inside it (a worker is
    started with its job folder's full path), whoever started them."""
    needle = str(folder.resolve()).encode()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:  # ended while we looked, or not ours to read
            continue
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of one process; 0 once it has ended."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far; 0 once it has ended."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS if fields else 0.0


def end_processes(pids: list[int], grace: float = 10.0) -> list[int]:
    """SIGTERM each pid, SIGKILL what is left after `grace` seconds; returns the pids that
    needed the SIGKILL."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in alive if _running(pid)]
    for pid in alive:
        _signal(pid, signal.SIGKILL)
    return alive


def _running(pid: int) -> bool:
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (state first); empty once the process ended."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
