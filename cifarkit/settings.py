"""Where cifarkit reads and writes files, each overridable by an environment variable."""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path


def data_dir() -> Path | None:
    """A folder holding official CIFAR archives placed by hand (CIFARKIT_DATA_DIR), if set."""
    value = os.environ.get("CIFARKIT_DATA_DIR")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Where downloads are cached: Keras' own cache by default, so Keras users share it."""
    value = os.environ.get("CIFARKIT_CACHE_DIR")
    return Path(value).expanduser() if value else Path.home() / ".keras" / "datasets"


def runs_dir() -> Path:
    """The folder holding one sub-folder per training run (CIFARKIT_RUNS_DIR, default ./runs)."""
    return Path(os.environ.get("CIFARKIT_RUNS_DIR", "runs")).expanduser()


def uploads_dir() -> Path:
    """Where the app keeps uploaded files (one folder per owner) so worker processes can read
    them (CIFARKIT_UPLOADS_DIR, default uploads/ beside the runs folder)."""
    value = os.environ.get("CIFARKIT_UPLOADS_DIR")
    return Path(value).expanduser() if value else runs_dir().parent / "uploads"


def allowed_dirs() -> list[Path]:
    """Extra folders app users may read image folders from by typing a path
    (CIFARKIT_ALLOWED_DIRS, separated by os.pathsep); none unless the operator lists some."""
    value = os.environ.get("CIFARKIT_ALLOWED_DIRS", "")
    return [Path(part.strip()).expanduser() for part in value.split(os.pathsep) if part.strip()]


def searches_dir() -> Path:
    """The folder holding one sub-folder per hyperparameter search (CIFARKIT_SEARCHES_DIR)."""
    value = os.environ.get("CIFARKIT_SEARCHES_DIR")
    return Path(value).expanduser() if value else runs_dir().parent / "searches"


def ray_address() -> str | None:
    """The Ray cluster's dashboard address (CIFARKIT_RAY_ADDRESS, e.g. http://head:8265): when
    set, jobs run on the cluster (cifarkit.cluster) and the job folders must be on storage all
    its nodes mount; unset, jobs are local processes."""
    return os.environ.get("CIFARKIT_RAY_ADDRESS") or None


def class_dir() -> Path:
    """The class's own files: its settings and the typed names of its people (CIFARKIT_CLASS_DIR,
    default class/ beside the runs folder)."""
    value = os.environ.get("CIFARKIT_CLASS_DIR")
    return Path(value).expanduser() if value else runs_dir().parent / "class"


def classroom_file() -> Path:
    """The teacher's class settings (limits, who sees whose jobs), a JSON file in class_dir()."""
    return class_dir() / "settings.json"


def people_dir() -> Path:
    """One small JSON file per typed name, named by its random key (classroom.register)."""
    return class_dir() / "people"


def queue_dir() -> Path:
    """The device queue's tickets and slot locks (CIFARKIT_QUEUE_DIR, default queue/ beside the
    runs folder): every worker on this machine that shares it shares the slots."""
    value = os.environ.get("CIFARKIT_QUEUE_DIR")
    return Path(value).expanduser() if value else runs_dir().parent / "queue"


def slots() -> int:
    """How many jobs train at once: CIFARKIT_SLOTS (a whole number ≥ 1), else one per visible
    GPU, else 1. A bad value is refused naming the variable: a typo must not start 30 jobs."""
    value = os.environ.get("CIFARKIT_SLOTS", "").strip()
    if not value:
        return max(len(visible_gpus()), 1)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"CIFARKIT_SLOTS must be a whole number ≥ 1, got {value!r}")
    return int(value)


def visible_gpus() -> list[str]:
    """The GPUs a worker may use, as CUDA_VISIBLE_DEVICES names them, found without importing
    TensorFlow (seconds and a gigabyte): CUDA_VISIBLE_DEVICES itself, else the NVIDIA driver's
    /proc entries, else `nvidia-smi -L`; [] on a CPU-only machine."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:  # "" or "-1" hide every GPU; a list stops at its first invalid id
        names = [name.strip() for name in listed.split(",")]
        return list(itertools.takewhile(lambda name: name and not name.startswith("-"), names))
    driver = Path("/proc/driver/nvidia/gpus")
    if driver.is_dir():
        return [str(index) for index, _ in enumerate(sorted(driver.iterdir()))]
    return [str(index) for index in range(_nvidia_smi_count())]


def _nvidia_smi_count() -> int:
    """GPUs `nvidia-smi -L` lists (one "GPU n: ..." line each); 0 without the tool."""
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                 timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listing.splitlines())
