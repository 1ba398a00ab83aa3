"""compare.best_run: the run the Predict page preselects."""

from __future__ import annotations

from pathlib import Path

from cifarkit import compare, rundir
from cifarkit.config import RunConfig
from cifarkit.runs import Run


def make_run(root: Path, run_id: str, created: float, accuracy: float | None = None,
             status: str = "completed", model: bool = True) -> Run:
    path = root / run_id
    path.mkdir()
    if model:
        (path / rundir.BEST_MODEL).write_bytes(b"stand-in")
    info: dict[str, object] = {"status": status, "created": created}
    if accuracy is not None:
        info["test_accuracy"] = accuracy
    return Run(run_id, path, RunConfig(name=run_id), status, info)


def test_best_run_beats_a_newer_short_run(tmp_path: Path) -> None:
    good = make_run(tmp_path, "good", created=1.0, accuracy=0.62)
    short = make_run(tmp_path, "short", created=9.0, accuracy=0.11)  # 1 epoch after a search
    assert compare.best_run([short, good]) is good


def test_best_run_ignores_unfinished_and_modelless_runs_and_prefers_the_newest_tie(
        tmp_path: Path) -> None:
    old = make_run(tmp_path, "old", created=1.0, accuracy=0.5)
    new = make_run(tmp_path, "new", created=2.0, accuracy=0.5)
    stopped = make_run(tmp_path, "stopped", created=3.0, accuracy=0.9, status="stopped")
    no_model = make_run(tmp_path, "gone", created=4.0, accuracy=0.95, model=False)
    assert compare.best_run([old, stopped, no_model, new]) is new


def test_best_run_reads_eval_json_of_older_runs(tmp_path: Path) -> None:
    older = make_run(tmp_path, "older", created=1.0)
    rundir.write_json_atomic(older.path / rundir.EVAL, {"accuracy": 0.7})
    assert compare.best_run([make_run(tmp_path, "newer", 2.0, 0.4), older]) is older


def test_best_run_without_scores_is_the_newest_model_and_none_without_models(
        tmp_path: Path) -> None:
    first = make_run(tmp_path, "first", created=1.0, status="stopped")
    second = make_run(tmp_path, "second", created=2.0, status="interrupted")
    assert compare.best_run([first, second]) is second
    assert compare.best_run([make_run(tmp_path, "none", 3.0, 0.9, model=False)]) is None
    assert compare.best_run([]) is None
