"""The run directory's files: the only channel between a training worker and everything else.

The worker writes, pages and the CLI read, concurrently; so status is replaced atomically and the
metrics log is append-only JSON lines whose reader tolerates a half-written last line.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

CONFIG = "config.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
HISTORY = "history.csv"
BEST_MODEL = "model.keras"
LAST_MODEL = "last.keras"
EVAL = "eval.json"
PREDICTIONS = "predictions.npz"
LOG = "train.log"
STOP = "STOP"


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from disk, or {} when the file is missing or mid-write."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_json_atomic(path: Path, value: dict[str, Any]) -> None:
    """Replace a JSON file in one step, so readers never see half of it."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as file:
        json.dump(value, file, indent=2)
    os.replace(temp, path)


def read_status(run_dir: Path) -> dict[str, Any]:
    return read_json(run_dir / STATUS)


def update_status(run_dir: Path, **changes: Any) -> dict[str, Any]:
    """Merge changes into status.json and return the new status."""
    status = {**read_status(run_dir), **changes}
    write_json_atomic(run_dir / STATUS, status)
    return status


def append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    with open(run_dir / METRICS, "a") as handle:
        handle.write(json.dumps(row) + "\n")


def reset_metrics(run_dir: Path) -> None:
    (run_dir / METRICS).unlink(missing_ok=True)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Every complete row of metrics.jsonl (a line still being written is skipped)."""
    try:
        lines = (run_dir / METRICS).read_text().splitlines()
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def epoch_rows(run_dir: Path) -> list[dict[str, Any]]:
    """One row per epoch; a resumed run may repeat an epoch, the latest record wins."""
    by_epoch = {row["epoch"]: row for row in read_metrics(run_dir) if row.get("kind") == "epoch"}
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def latest_batch(run_dir: Path) -> dict[str, Any] | None:
    rows = [row for row in read_metrics(run_dir) if row.get("kind") == "batch"]
    return rows[-1] if rows else None


def completed_epochs(run_dir: Path) -> int:
    rows = epoch_rows(run_dir)
    return int(rows[-1]["epoch"]) if rows else 0


def best_validation_accuracy(run_dir: Path) -> float | None:
    scores = [row["val_accuracy"] for row in epoch_rows(run_dir) if "val_accuracy" in row]
    return max(scores) if scores else None


def request_stop(run_dir: Path) -> None:
    (run_dir / STOP).touch()


def stop_requested(run_dir: Path) -> bool:
    return (run_dir / STOP).exists()


def clear_stop(run_dir: Path) -> None:
    (run_dir / STOP).unlink(missing_ok=True)


# --- job folders: runs and searches alike live in <root>/<id>/ beside their siblings


def new_job_id(label: str) -> str:
    """Sortable by time, readable, and unique even for two launches in the same second."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{label}-{secrets.token_hex(2)}"


def new_job_dir(root: Path, label: str) -> Path:
    """Make <root>/<new id>/ with a queued status."""
    path = root / new_job_id(label)
    path.mkdir(parents=True)
    update_status(path, status="queued", created=time.time())
    return path


def find_job_dir(job: str | Path, root: Path, marker: str) -> Path | None:
    """A job folder given by path or by id under root (it holds `marker`), or None."""
    path = Path(job)
    if not (path / marker).is_file():
        path = root / str(job)
    return path if (path / marker).is_file() else None


def job_dirs(root: Path, marker: str) -> list[Path]:
    """Every job folder under root (each holds `marker`), newest first."""
    if not root.is_dir():
        return []
    return [path for path in sorted(root.iterdir(), reverse=True) if (path / marker).is_file()]
