"""`python -m cifarkit`: the commands a user types, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifarkit import cli, rundir, runs, settings
from tests.conftest import assert_refused

ROOT = Path(__file__).resolve().parents[2]


def cifarkit(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "cifarkit", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["predict"], ["runs"],
                                     ["runs", "list"], ["datasets"], ["datasets", "download"]])
def test_every_command_has_help(command: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.build_parser().parse_args([*command, "--help"])
    assert caught.value.code == 0


def test_flags_override_the_json_config(tmp_path: Path) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"training": {"epochs": 7, "batch_size": 16}}))
    args = cli.build_parser().parse_args(
        ["train", "--config", str(config_file), "--epochs", "2", "--classes", "cat,dog",
         "--source", "cifar10", "--no-hflip", "--architecture", "MobileNet"])
    config = cli.config_from_args(args)
    assert config.training.epochs == 2 and config.training.batch_size == 16
    assert config.data.classes == ("cat", "dog")
    assert config.augment.horizontal_flip is False
    assert config.model.architecture == "MobileNet"


def test_time_budget_flag_sets_the_budget_and_turns_early_stopping_off(tmp_path: Path) -> None:
    parse = cli.build_parser().parse_args
    config = cli.config_from_args(parse(["train", "--time-budget", "120",
                                         "--steps-per-execution", "4", "--ema"]))
    assert config.training.time_budget_s == 120.0
    assert config.callbacks.early_stopping is False  # refused with a budget, so off by default
    assert config.training.steps_per_execution == 4 and config.optimizer.use_ema is True
    assert cli.config_from_args(parse(["train", "--early-stopping"])).callbacks.early_stopping
    assert_refused(lambda: cli.config_from_args(
        parse(["train", "--time-budget", "120", "--early-stopping"])), "callbacks.early_stopping")
    asked = tmp_path / "config.json"
    asked.write_text(json.dumps({"callbacks": {"early_stopping": True}}))
    assert_refused(lambda: cli.config_from_args(
        parse(["train", "--config", str(asked), "--time-budget", "120"])),
        "callbacks.early_stopping")
    assert_refused(lambda: cli.config_from_args(parse(["train", "--time-budget", "5"])),
                   "training.time_budget_s")


def test_a_bad_flag_value_names_the_field() -> None:
    result = cifarkit("train", "--epochs", "0")
    assert result.returncode == 2
    assert "training.epochs" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_run_is_a_clear_error() -> None:
    assert cli.main(["runs", "stop", "nope"]) == 2


@pytest.mark.slow
def test_train_evaluate_predict_and_manage_runs(tmp_path: Path) -> None:
    trained = cifarkit("train", "--source", "digits", "--architecture", "simple_cnn",
                       "--epochs", "1", "--max-train", "200", "--max-test", "50",
                       "--batch-size", "32", "--name", "cli-run")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "status: completed" in trained.stdout
    [run] = runs.list_runs()
    assert run.name == "cli-run" and run.status == "completed"

    listed = cifarkit("runs", "list")
    assert run.run_id in listed.stdout and "completed" in listed.stdout

    evaluated = cifarkit("evaluate", run.run_id, "--top", "3")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "accuracy:" in evaluated.stdout and "macro_f1:" in evaluated.stdout

    image_path = tmp_path / "digit.png"
    Image.fromarray(run_first_test_image(run)).save(image_path)
    predicted = cifarkit("predict", str(image_path), "--run", run.run_id, "--run", run.run_id)
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.startswith(str(image_path)) and "%" in predicted.stdout

    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    failed = cifarkit("predict", str(broken), "--run", run.run_id)
    assert failed.returncode == 2 and "broken.png" in failed.stderr

    deleted = cifarkit("runs", "delete", run.run_id)
    assert deleted.returncode == 0 and not run.path.exists()


def run_first_test_image(run: runs.Run) -> np.ndarray:
    with np.load(run.path / rundir.PREDICTIONS) as saved:
        return saved["images"][0]


def test_datasets_list_shows_the_embedded_default() -> None:
    listed = cifarkit("datasets", "list")
    assert listed.returncode == 0, listed.stderr
    assert "digits" in listed.stdout and "cifar100" in listed.stdout


def test_download_offline_names_file_and_folder(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from cifarkit import datasets

    monkeypatch.delenv("CIFARKIT_DATA_DIR", raising=False)
    real = datasets.ensure_archive

    def offline(source, progress=None, url=None):  # the real call, pointed at a dead port
        return real(source, progress=progress, url="http://127.0.0.1:9/cifar-10-python.tar.gz")

    monkeypatch.setattr(datasets, "ensure_archive", offline)
    assert cli.main(["datasets", "download", "cifar10"]) == 2
    message = capsys.readouterr().err
    assert "cifar-10-python.tar.gz" in message
    assert str(settings.cache_dir()) in message


# --- job verbs: the same for runs and searches, damaged jobs listed, worker folders checked


def test_runs_list_shows_a_damaged_run_with_its_reason(run_factory,
                                                       capsys: pytest.CaptureFixture) -> None:
    older, damaged, newer = (run_factory("completed") for _ in range(3))
    (damaged.path / rundir.CONFIG).write_text("[1, 2]")
    assert cli.main(["runs", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == [newer.run_id, damaged.run_id,
                                                       older.run_id]
    assert lines[2] == (f"{damaged.run_id:44} {'damaged':12} "
                        "config.json cannot be read (must be a JSON object, got a list)")


def test_tune_list_shows_a_damaged_search_and_tune_delete_removes_it(
        capsys: pytest.CaptureFixture) -> None:
    from cifarkit import searchdir, searches
    from cifarkit.tuneconfig import TuneConfig

    sound, damaged = searches.create_search(TuneConfig()), searches.create_search(TuneConfig())
    (damaged / searchdir.TUNE).write_text("{")
    for path in (sound, damaged):
        rundir.update_status(path, status="stopped")
    assert cli.main(["tune", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["search", "status", "trials", "best"]
    assert sorted(line.split()[0] for line in lines[1:]) == sorted([sound.name, damaged.name])
    assert f"{sound.name:36} {'stopped':12} {'0/10':>8} {'-':>8}" in lines
    assert (f"{damaged.name:36} {'damaged':12} tune.json cannot be read (not valid JSON "
            "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1)))"
            in lines)
    assert cli.main(["tune", "delete", damaged.name]) == 0
    assert capsys.readouterr().out == f"deleted search {damaged.name}\n"
    assert not damaged.exists() and sound.is_dir()


@pytest.mark.parametrize(("verb", "message"), [
    ("stop", "{noun} {id} is completed, not running"),
    ("resume", "{noun} {id} is completed; only stopped, interrupted, failed, cancelled "
               "{plural} can be resumed")])
def test_runs_and_tune_verbs_refuse_alike(verb: str, message: str, run_factory,
                                          capsys: pytest.CaptureFixture) -> None:
    from cifarkit import searches
    from cifarkit.tuneconfig import TuneConfig

    run = run_factory("completed")
    search = searches.create_search(TuneConfig())
    rundir.update_status(search, status="completed")
    before = {path: sorted(p.name for p in path.iterdir()) for path in (run.path, search)}
    for group, noun, job_id, plural in (("runs", "run", run.run_id, "runs"),
                                        ("tune", "search", search.name, "searches")):
        assert cli.main([group, verb, job_id]) == 2
        expected = message.format(noun=noun, id=job_id, plural=plural)
        assert capsys.readouterr().err == f"error: {expected}\n"
    assert {path: sorted(p.name for p in path.iterdir()) for path in before} == before


@pytest.mark.parametrize("folder", ["not-a-job", "20260101-000000-simple_cnn-abcd"])
@pytest.mark.parametrize(("command", "flag", "noun"), [("train", "--run-dir", "run"),
                                                       ("tune", "--search-dir", "search")])
def test_a_worker_folder_must_be_a_job_folder(tmp_path: Path, folder: str, command: str,
                                              flag: str, noun: str,
                                              capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / folder
    path.mkdir()
    (path / "notes.txt").write_text("keep")
    assert cli.main([command, flag, str(path)]) == 2
    name_rule = f"not a {noun} id: {str(path)!r}"
    missing = f"no {noun} {folder!r} in {tmp_path}"
    expected = name_rule if folder == "not-a-job" else missing
    assert capsys.readouterr().err == f"error: {expected}\n"
    assert sorted(p.name for p in path.iterdir()) == ["notes.txt"]
