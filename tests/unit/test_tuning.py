"""Hyperparameter search: TuneConfig, the trial -> RunConfig mapping, the tunable custom_cnn, and
real keras-tuner searches as processes (finish, stop, crash + resume, train the best)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest

from cifarkit import charts, cli, rundir, searchdir, searches, settings, tuning
from cifarkit.config import (
    CallbacksConfig,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainingConfig,
)
from cifarkit.models.builder import build_model
from cifarkit.tuneconfig import SearchSpace, TuneConfig, config_for
from tests.conftest import assert_refused, wait_for

ROOT = Path(__file__).resolve().parents[2]
NUM_CLASSES = 10


def tiny_tune(max_trials: int = 2, epochs_per_trial: int = 1, algorithm: str = "random",
              epochs: int = 2) -> TuneConfig:
    """Digits (embedded, offline), 200 images, 8-filter custom_cnn: a few seconds per trial."""
    base = RunConfig(
        name="tiny",
        data=DataConfig(source="digits", max_train_images=200, max_test_images=50),
        model=ModelConfig(architecture="custom_cnn"),
        training=TrainingConfig(epochs=epochs),
        callbacks=CallbacksConfig(early_stopping=False))
    space = SearchSpace(base_filters=(8,), blocks_min=1, blocks_max=2, batch_sizes=(32, 64))
    return TuneConfig(name="tiny search", base=base, space=space, algorithm=algorithm,
                      max_trials=max_trials, epochs_per_trial=epochs_per_trial)


def trial_statuses(path: Path) -> dict[int, str]:
    return {int(trial["trial_id"]): trial["status"] for trial in searchdir.read_trials(path)}


def log_tail(search: searches.Search) -> str:
    return (search.path / searchdir.LOG).read_text()[-3000:]


# --- TuneConfig ----------------------------------------------------------------------------------


def test_default_tune_config_is_valid_and_round_trips(tmp_path: Path) -> None:
    tune = TuneConfig().validate()
    assert tune.base.model.architecture == "custom_cnn"
    assert TuneConfig.from_json(tune.to_json()) == tune
    custom = tiny_tune(max_trials=7, algorithm="bayesian")
    custom = replace(custom, objective="val_loss",
                     space=SearchSpace(optimizers=("adamw",), batch_sizes=(16,)))
    custom.save(tmp_path / "tune.json")
    restored = TuneConfig.load(tmp_path / "tune.json")
    assert restored == custom
    assert restored.space.optimizers == ("adamw",)  # tuples, not lists, after JSON
    assert restored.direction == "min"


def test_partial_json_keeps_the_tunable_base_architecture() -> None:
    tune = TuneConfig.from_dict({"base": {"data": {"max_train_images": 100}}, "max_trials": 3})
    assert tune.base.model.architecture == "custom_cnn"
    assert tune.base.data.max_train_images == 100
    assert tune.space == SearchSpace()


@pytest.mark.parametrize(("raw", "field"), [
    ({"space": {"learning_rate_min": 0}}, "space.learning_rate_min"),
    ({"space": {"learning_rate_min": 0.1, "learning_rate_max": 0.01}}, "space.learning_rate_min"),
    ({"space": {"dropout_max": 1.0}}, "space.dropout_max"),
    ({"space": {"blocks_max": 6}}, "space.blocks_max"),
    ({"space": {"blocks_min": 3, "blocks_max": 2}}, "space.blocks_min"),
    ({"space": {"base_filters": [4]}}, "space.base_filters"),
    ({"space": {"optimizers": ["lion"]}}, "space.optimizers"),
    ({"space": {"batch_sizes": []}}, "space.batch_sizes"),
    ({"space": {"augmentation_max": 1.5}}, "space.augmentation_max"),
    ({"algorithm": "grid"}, "algorithm"),
    ({"objective": "accuracy"}, "objective"),
    ({"max_trials": 0}, "max_trials"),
    ({"epochs_per_trial": 0}, "epochs_per_trial"),
    ({"base": {"training": {"epochs": 0}}}, "base.training.epochs"),
    ({"space": {"blocks": 3}}, "space.blocks"),
])
def test_bad_value_names_the_field(raw: dict, field: str) -> None:
    assert_refused(lambda: TuneConfig.from_dict(raw).validate(), field)


def test_config_for_maps_values_into_run_config_fields() -> None:
    tune = tiny_tune(epochs=9)
    values = {"base_filters": 16, "blocks": 4, "dropout": 0.3, "learning_rate": 0.02,
              "optimizer": "sgd", "augmentation": 0.15, "batch_size": 128,
              "tuner/epochs": 3, "tuner/trial_id": "0001"}  # keras-tuner's own keys: ignored
    config = config_for(values, tune)
    assert (config.model.base_filters, config.model.blocks) == (16, 4)
    assert config.model.dropout == 0.3
    assert (config.optimizer.name, config.optimizer.learning_rate) == ("sgd", 0.02)
    assert config.augment.rotation == config.augment.zoom == config.augment.shift == 0.15
    assert config.training.batch_size == 128
    assert config.training.epochs == 9  # the base's full epochs, not a trial's
    assert config.data == tune.base.data and config.seed == tune.base.seed
    assert config_for({}, tune) == tune.base


def test_config_for_rejects_values_a_run_cannot_use() -> None:
    assert_refused(lambda: config_for({"blocks": 6}, tiny_tune()), "model.blocks")


def test_width_and_depth_are_searched_only_for_custom_cnn() -> None:
    tune = tiny_tune()
    assert {"base_filters", "blocks"} <= set(tune.hyperparameters())
    other = TuneConfig(base=RunConfig(model=ModelConfig(architecture="resnet_fast")))
    assert "base_filters" not in other.hyperparameters()
    hp = keras_tuner.HyperParameters()
    assert set(tuning.declare(hp, other)) == set(other.hyperparameters())


def test_declare_registers_the_space_with_keras_tuner() -> None:
    tune = tiny_tune()
    hp = keras_tuner.HyperParameters()
    values = tuning.declare(hp, tune)
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds["base_filters"] == "Fixed"  # a single choice is held fixed
    assert kinds["blocks"] == "Int" and kinds["batch_size"] == "Choice"
    learning_rate = next(p for p in hp.space if p.name == "learning_rate")
    assert learning_rate.sampling == "log"
    assert (learning_rate.min_value, learning_rate.max_value) == (1e-4, 1e-2)
    assert values["base_filters"] == 8


def test_planned_trials_counts_hyperband_brackets() -> None:
    assert tuning.planned_trials(tiny_tune(max_trials=7)) == 7
    # max_epochs 3, factor 3: bracket 1 runs 3 one-epoch trials then the best for 3 epochs,
    # bracket 0 runs 2 three-epoch trials.
    hyperband = tiny_tune(max_trials=100, epochs_per_trial=3, algorithm="hyperband")
    assert tuning.planned_trials(hyperband) == 6
    capped = tiny_tune(max_trials=4, epochs_per_trial=3, algorithm="hyperband")
    assert tuning.planned_trials(capped) == 4


# --- the tunable architecture --------------------------------------------------------------------


def test_custom_cnn_width_and_depth_follow_the_config() -> None:
    keras.backend.clear_session()
    config = RunConfig(model=ModelConfig(architecture="custom_cnn", base_filters=8, blocks=3))
    model = build_model(config, NUM_CLASSES)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [conv.filters for conv in convs] == [8, 8, 16, 16, 32, 32]
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert pools[-1].output.shape[1:3] == (4, 4)  # 32 px halved three times
    deeper = build_model(config.with_updates(model=ModelConfig(
        architecture="custom_cnn", base_filters=8, blocks=5)), NUM_CLASSES)
    assert deeper.count_params() > model.count_params()


@pytest.mark.parametrize(("model", "field"), [
    ({"base_filters": 4}, "model.base_filters"),
    ({"base_filters": 300}, "model.base_filters"),
    ({"blocks": 0}, "model.blocks"),
    ({"blocks": 6}, "model.blocks"),
])
def test_custom_cnn_size_is_validated(model: dict, field: str) -> None:
    raw = {"model": {"architecture": "custom_cnn", **model}}
    assert_refused(lambda: RunConfig.from_dict(raw).validate(), field)


# --- progress chart ------------------------------------------------------------------------------


def test_trial_scores_chart_draws_the_best_so_far() -> None:
    table = pd.DataFrame({"trial": [0, 1, 2, 3], "status": ["completed", "failed", "completed",
                                                            "completed"],
                          "dropout": [0.1, 0.2, 0.3, 0.4], "score": [0.5, None, 0.4, 0.7]})
    figure = charts.trial_scores(table)
    dots, best = figure.data
    assert list(dots.x) == [0, 2, 3]  # the failed trial has no score to draw
    assert list(best.y) == [0.5, 0.5, 0.7]
    assert tuple(figure.layout.yaxis.range) == (0, 1.02)  # accuracy keeps its full scale
    losses = charts.trial_scores(table, objective="val_loss", direction="min")
    assert list(losses.data[1].y) == [0.5, 0.4, 0.4]


# --- searches as processes -----------------------------------------------------------------------


def test_refusals_and_an_unknown_search() -> None:
    path = searches.create_search(tiny_tune())
    assert path.parent == settings.searches_dir()
    rundir.update_status(path, status="completed")
    with pytest.raises(searches.SearchError, match="not running"):
        searches.stop_search(path.name)
    with pytest.raises(searches.SearchError, match="only"):
        searches.resume_search(path.name)
    with pytest.raises(searches.SearchError, match="no finished trial"):
        searches.best_run_config(path.name)
    progress = searches.search_progress(path.name)
    assert (progress["trial"], progress["planned"], progress["table"].empty) == (0, 2, True)
    searches.delete_search(path.name)
    assert searches.list_searches() == []
    with pytest.raises(searches.SearchError, match="no search"):
        searches.load_search("20260101-000000-random-abcd")  # well-formed, absent


def test_a_search_whose_worker_died_is_interrupted() -> None:
    path = searches.create_search(tiny_tune())
    rundir.update_status(path, status="running", pid=2**22 + 12345)  # no such process
    assert searches.load_search(path.name).status == "interrupted"
    assert searches.load_search(path.name).can_resume


def test_trials_are_read_from_keras_tuner_files_and_failures_explain_themselves() -> None:
    path = searches.create_search(tiny_tune(max_trials=3))
    trials = [("0", "COMPLETED", 0.5, None), ("1", "FAILED", None, "Traceback ...\n"
              "ValueError: boom\n"), ("2", "RUNNING", None, None)]
    for trial_id, status, score, message in trials:
        folder = searchdir.project_dir(path) / f"trial_{trial_id}"
        folder.mkdir(parents=True)
        (folder / searchdir.TRIAL_FILE).write_text(json.dumps({
            "trial_id": trial_id, "status": status, "score": score, "best_step": 0,
            "message": message, "hyperparameters": {"values": {"dropout": 0.25}},
            "metrics": {"metrics": {"val_loss": {"observations": [{"value": [1.5], "step": 0}]}}},
        }))
    (searchdir.project_dir(path) / "trial_3").mkdir()  # created, trial.json not written yet
    table = searches.trials_table(path.name)
    assert list(table["status"]) == ["completed", "failed", "running"]
    assert table.loc[0, "val_loss"] == 1.5 and table.loc[0, "dropout"] == 0.25
    assert table.loc[1, "error"] == "ValueError: boom" and pd.isna(table.loc[1, "score"])
    rundir.update_status(path, status="stopped")
    progress = searches.search_progress(path.name)
    assert progress["finished"] == 2 and progress["unfinished"] == [2]
    assert progress["best"]["trial"] == 0
    assert searches.best_run_config(path.name).model.dropout == 0.25


def test_a_search_that_cannot_load_its_data_fails_with_the_reason(tmp_path: Path) -> None:
    tune = tiny_tune()
    broken = replace(tune, base=tune.base.with_updates(
        data=DataConfig(source="folder", path=str(tmp_path / "nowhere"))))
    path = searches.create_search(broken)
    status = tuning.search(path, verbose=0)
    assert status["status"] == "failed" and "nowhere" in status["error"]


@pytest.mark.slow
def test_killed_search_resumes_without_rerunning_finished_trials() -> None:
    search = searches.launch_search(tiny_tune(max_trials=3))
    wait_for(lambda: "COMPLETED" in trial_statuses(search.path).values(), what="first trial")
    os.killpg(os.getpgid(searches.load_search(search.path).info["pid"]), signal.SIGKILL)
    wait_for(lambda: searches.load_search(search.path).status == "interrupted", timeout=30,
             what="interrupted status")
    finished_before = {trial: status for trial, status in trial_statuses(search.path).items()
                       if status == "COMPLETED"}
    files = {trial: searchdir.project_dir(search.path) / f"trial_{trial}" / searchdir.TRIAL_FILE
             for trial in finished_before}
    stamps = {trial: file.stat().st_mtime_ns for trial, file in files.items()}

    searches.resume_search(search.search_id)
    done = searches.wait_search(search.search_id, timeout=300)
    assert done.status == "completed", log_tail(done)
    assert trial_statuses(search.path) == {0: "COMPLETED", 1: "COMPLETED", 2: "COMPLETED"}
    assert {trial: file.stat().st_mtime_ns for trial, file in files.items()} == stamps
    progress = searches.search_progress(done)
    assert (progress["finished"], progress["trial"], progress["planned"]) == (3, 3, 3)
    assert progress["unfinished"] == []


@pytest.mark.slow
def test_stop_ends_the_search_without_scoring_the_cut_trial_and_resume_finishes() -> None:
    search = searches.launch_search(tiny_tune(max_trials=2, epochs_per_trial=2))
    wait_for(lambda: rundir.latest_batch(search.path) is not None, what="first batch")
    searches.stop_search(search.search_id)
    stopped = searches.wait_search(search.search_id, timeout=180)
    assert stopped.status == "stopped", log_tail(stopped)
    progress = searches.search_progress(stopped)
    assert len(progress["unfinished"]) == 1
    cut = progress["unfinished"][0]
    assert cut not in set(progress["table"]["trial"])  # not ranked as a finished trial
    assert trial_statuses(search.path)[cut] == "RUNNING"
    assert progress["finished"] < 2

    searches.resume_search(search.search_id)
    done = searches.wait_search(search.search_id, timeout=300)
    assert done.status == "completed", log_tail(done)
    assert trial_statuses(search.path) == {0: "COMPLETED", 1: "COMPLETED"}
    assert searches.search_progress(done)["finished"] == 2


@pytest.mark.parametrize(("algorithm", "max_trials", "epochs"), [("bayesian", 2, 1),
                                                                  ("hyperband", 4, 3)])
@pytest.mark.slow
def test_bayesian_and_hyperband_searches_run(algorithm: str, max_trials: int, epochs: int) -> None:
    """In this process (TensorFlow is loaded already): the algorithms, not the process."""
    path = searches.create_search(tiny_tune(max_trials, epochs, algorithm))
    status = tuning.search(path, verbose=0)
    assert status["status"] == "completed", status.get("error")
    table = searches.search_progress(path)["table"]
    assert len(table) == max_trials and table["score"].notna().all()
    if algorithm == "hyperband":  # three 1-epoch trials, then the best one continued to 3
        assert sorted(table["epochs"]) == [1, 1, 1, 3]


# --- command line --------------------------------------------------------------------------------


def cifarkit(*args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "cifarkit", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.parametrize("command", [["tune"], ["tune", "best"], ["tune", "list"]])
def test_tune_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.build_parser().parse_args([*command, "--help"])
    assert caught.value.code == 0
    if command == ["tune"]:
        shown = capsys.readouterr().out
        for flag in ("--algorithm", "--max-trials", "--epochs-per-trial", "--objective",
                     "--batch-sizes", "--detach", "best"):
            assert flag in shown


def test_tune_flags_override_the_json_config(tmp_path: Path) -> None:
    config_file = tmp_path / "tune.json"
    config_file.write_text(json.dumps({"max_trials": 9, "space": {"dropout_max": 0.3}}))
    args = cli.build_parser().parse_args(
        ["tune", "--config", str(config_file), "--algorithm", "hyperband", "--batch-sizes",
         "16,32", "--optimizers", "adam,nadam", "--lr-min", "0.001", "--max-train", "300"])
    tune = cli.tune_config_from_args(args)
    assert (tune.max_trials, tune.algorithm) == (9, "hyperband")
    assert tune.space.batch_sizes == (16, 32) and tune.space.optimizers == ("adam", "nadam")
    assert (tune.space.learning_rate_min, tune.space.dropout_max) == (0.001, 0.3)
    assert tune.base.data.max_train_images == 300


def test_a_bad_tune_flag_or_unknown_search_is_a_clear_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tune", "--lr-min", "0"]) == 2
    assert "space.learning_rate_min" in capsys.readouterr().err
    assert searches.list_searches() == []
    assert cli.main(["tune", "stop", "nope"]) == 2
    assert cli.main(["tune", "best", "nope"]) == 2


@pytest.mark.slow
def test_cli_search_runs_in_its_own_process_and_the_best_trains(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = cifarkit("tune", "--source", "digits", "--max-train", "200", "--max-test", "50",
                      "--max-trials", "2", "--epochs-per-trial", "1", "--base-filters", "8",
                      "--blocks-min", "1", "--blocks-max", "2", "--epochs", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "trial 0 completed" in result.stdout and "trial 1 completed" in result.stdout
    assert "best: trial" in result.stdout

    [search] = searches.list_searches()
    assert search.status == "completed" and search.info["pid"] != os.getpid()
    progress = searches.search_progress(search)
    table = progress["table"]
    assert list(table["trial"]) == [0, 1] and set(table["status"]) == {"completed"}
    assert table["score"].notna().all() and progress["best"] is not None
    assert progress["best"]["score"] == table["score"].max()
    assert progress["current"] is None and progress["finished"] == progress["planned"] == 2

    assert cli.main(["tune", "list"]) == 0
    listed = capsys.readouterr().out
    assert search.search_id in listed and "2/2" in listed

    saved = tmp_path / "best.json"
    assert cli.main(["tune", "best", search.search_id, "--save", str(saved)]) == 0
    config = RunConfig.load(saved).validate()
    assert config == searches.best_run_config(search)
    assert config.training.epochs == 3  # the base's full epochs, not the trial's one
    best = progress["best"]
    assert (config.model.blocks, config.training.batch_size) == (best["blocks"],
                                                                best["batch_size"])
    keras.backend.clear_session()
    model = build_model(config, NUM_CLASSES)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.zeros((4, 32, 32, 3), "float32")
    loss = model.train_on_batch(x, keras.utils.to_categorical([0, 1, 2, 3], NUM_CLASSES))
    assert np.isfinite(float(np.asarray(loss).ravel()[0]))
