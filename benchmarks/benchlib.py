"""What every benchmark script shares: the data check, the machine, the table, the result file.

Kept small on purpose: a benchmark reads top to bottom in its own file; only these four
things would otherwise be copied five times.
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def require_data(source: str) -> None:
    """Exit cleanly (status 0, one line saying why) when the CIFAR archive is not on disk.

    A benchmark never starts a download: the sample lives where CIFARKIT_DATA_DIR points.
    """
    from cifarkit import dataready
    from cifarkit.config import DataConfig

    if dataready.archive_missing(DataConfig(source=source)):
        print(f"skipped: no {source} archive found. {dataready.where_to_put(source)}",
              file=sys.stderr)
        raise SystemExit(0)


def machine() -> dict[str, Any]:
    """Host, CPU model, Python, and cifarkit's device summary (GPUs, TensorFlow, Keras, backend)."""
    from cifarkit.system import device_summary

    return {"host": host(), "cpu_model": _cpu_model(), "python": platform.python_version(),
            **device_summary()}


def host() -> str:
    return platform.node() or "host"


def results_path(name: str) -> Path:
    """benchmarks/results/<name>-<host>.json: one file per benchmark and machine."""
    return RESULTS_DIR / f"{name}-{host()}.json"


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write payload with the machine and the time it finished; print and return the path."""
    path = results_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": name, "machine": machine(),
              "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              **payload}
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table; cells are shown with str() (format numbers before)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row {list(row)} has {len(row)} cells for {len(headers)} headers")
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)


def _cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo on Linux, else what platform knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()
