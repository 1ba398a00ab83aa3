"""Tiny runs launched together: the peak memory of their workers and the time until all end.

Issue 9's case: before the device queue, four tiny runs launched at once ran as four workers
that each loaded TensorFlow (3.9 GB together, 42 s where one alone took 16 s). With the queue,
the ones waiting for the slot cost a bare Python until it frees. Rerun (a JSON line out):

    python benchmarks/queue_tiny_runs.py --runs 4            # this checkout, CIFARKIT_SLOTS=1
    python benchmarks/queue_tiny_runs.py --runs 1            # one run alone
    git archive 2f80d9c | tar -x -C /tmp/before               # the code before the queue
    python benchmarks/queue_tiny_runs.py --runs 4 --tree /tmp/before

Memory is the sum of the resident memory of every process whose command line names the
benchmark's runs folder (the workers), sampled every 0.1 s; the machine's other load (other
users of a shared machine) makes the times noisy, not the memory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import procs

SAMPLE_SECONDS = 0.1


def tiny_config() -> object:
    """Digits (embedded, offline), 300 training images, simple_cnn, 2 epochs: a class demo."""
    from cifarkit.config import CallbacksConfig, DataConfig, ModelConfig, RunConfig, TrainingConfig

    return RunConfig(name="tiny", data=DataConfig(source="digits", max_train_images=300,
                                                  max_test_images=100),
                     model=ModelConfig(architecture="simple_cnn"),
                     training=TrainingConfig(epochs=2, batch_size=32),
                     callbacks=CallbacksConfig(early_stopping=False))


def measure(count: int, root: Path) -> dict:
    """Launch `count` runs at once into root; sample their workers until every run has ended."""
    from cifarkit import runs

    start = time.monotonic()
    launched = [runs.launch(tiny_config(), root=root) for _ in range(count)]
    peak_mb, peak_workers = 0.0, 0
    while any(runs.load(run.run_id, root).is_active for run in launched):
        sizes = [procs.rss_mb(pid) for pid in procs.pids_naming(root)]
        peak_mb = max(peak_mb, sum(sizes))
        peak_workers = max(peak_workers, sum(size > 300 for size in sizes))  # TensorFlow loaded
        time.sleep(SAMPLE_SECONDS)
    done = [runs.load(run.run_id, root) for run in launched]
    return {"runs": count, "slots": os.environ.get("CIFARKIT_SLOTS"),
            "statuses": sorted({run.status for run in done}),
            "total_seconds": round(time.monotonic() - start, 1),
            "peak_workers_rss_mb": round(peak_mb), "peak_workers_with_tensorflow": peak_workers,
            "train_seconds": [round(run.info.get("train_seconds", 0.0), 1) for run in done]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=4, help="runs launched together")
    parser.add_argument("--tree", type=Path, help="a checkout whose cifarkit to measure")
    args = parser.parse_args()
    if args.tree:
        if not (args.tree / "cifarkit" / "jobs.py").is_file():
            parser.error(f"--tree {args.tree}: no cifarkit package there")
        sys.path.insert(0, str(args.tree.resolve()))
    os.environ.setdefault("CIFARKIT_SLOTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="queue-bench-") as folder:
        root = Path(folder) / "runs"
        os.environ["CIFARKIT_RUNS_DIR"] = str(root)
        os.chdir(folder)  # workers start here: `python -m cifarkit` must find --tree's package
        result = measure(args.runs, root)
    import cifarkit

    print(json.dumps({**result, "cifarkit": str(Path(cifarkit.__file__).parent)}))


if __name__ == "__main__":
    main()
