"""CPU seconds one redraw of Train's live panel costs the server, with one running and four
queued runs of the person's plus others' runs in the class (fabricated; no training).

    python benchmarks/train_panel_cpu.py [--reruns 20] [--others 10]

Prints the median process CPU of a full page rerun on the Live tab, with no runs and with
the runs: the difference is what the live panel costs per update (AppTest runs the script in
its own thread, so the whole process's CPU clock is read).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def fabricate(others: int) -> list[subprocess.Popen]:
    from cifarkit import classroom, jobs, rundir, runs
    from tests.app.conftest import fabricate_run

    sleepers: list[subprocess.Popen] = []
    number = 0
    for number in range(others):  # other students' finished runs: not watched on Train
        run = fabricate_run(number, "completed", sleepers=sleepers)
        rundir.update_status(run.path, owner=f"other{number}", owner_name=f"Other {number}")
    for status in ("running", "queued", "queued", "queued", "queued"):
        number += 1
        fabricate_run(number, status, sleepers=sleepers, epochs=20)
    del classroom, jobs, runs
    return sleepers


def measure(reruns: int) -> float:
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import page_path, page_person

    at = AppTest.from_file(page_path("pages/train.py"), default_timeout=120)
    at.session_state["person"] = page_person()
    at.session_state["train_tab"] = "Live training"
    at.run()
    page = []
    for _ in range(reruns):
        start = time.process_time()
        at.run()
        page.append(time.process_time() - start)
    return statistics.median(page)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reruns", type=int, default=20)
    parser.add_argument("--others", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        os.environ["CIFARKIT_RUNS_DIR"] = str(Path(folder) / "runs")
        os.environ["CIFARKIT_CACHE_DIR"] = str(Path(folder) / "cache")
        os.environ["CIFARKIT_QUEUE_DIR"] = str(Path(folder) / "queue")
        import keras  # noqa: F401  (as in the class server once any page has used a model)

        empty = measure(args.reruns)
        sleepers = fabricate(args.others)
        try:
            page = measure(args.reruns)
        finally:
            for process in sleepers:
                process.kill()
                process.wait()
    print(f"Train rerun, Live tab: {empty:.3f} s CPU with no runs, {page:.3f} s with the runs: "
          f"the panel {page - empty:.3f} s (medians of {args.reruns})")


if __name__ == "__main__":
    main()
