"""Train page: model choice and size, the form and its validation, launching, live runs."""

from __future__ import annotations

import time
from dataclasses import fields, replace
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from cifarkit import classroom, rundir, runs, settings
from cifarkit.config import (
    CallbacksConfig,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    RunConfig,
    TrainingConfig,
)
from cifarkit.models.summary import describe
from cifarkit.sources import recommended_augment
from tests.app.conftest import STATUSES, chart_spec, open_page, page_path, page_person, rerun
from ui import forms

PAGE = page_path("pages/train.py")
SETUP, LIVE = "Set up a run", "Live training"


def open_train(**session: object) -> AppTest:
    return open_page(PAGE, 120, **session)


def metric(at: AppTest, label: str) -> str:
    return next(item.value for item in at.metric if item.label == label)


def texts(elements) -> str:
    return "\n".join(element.value for element in elements)


def run_dirs() -> list:
    folder = settings.runs_dir()
    return list(folder.iterdir()) if folder.is_dir() else []


def test_defaults_show_the_model_size_and_no_runs() -> None:
    at = open_train()
    assert at.session_state["train_tab"] == SETUP
    assert "**Data:** Digits" in texts(at.markdown)
    expected = describe(RunConfig(), num_classes=10, image_size=32)
    assert metric(at, "Trainable parameters") == f"{expected.trainable_params:,}"
    assert metric(at, "Frozen parameters") == f"{expected.non_trainable_params:,}"
    assert metric(at, "Weights in memory") == f"{expected.weights_mb:,.1f} MB"
    at.session_state["train_tab"] = LIVE
    rerun(at)
    assert "No runs yet" in at.info[0].value


def test_missing_cifar_archive_is_explained_not_an_exception(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIFARKIT_DATA_DIR", raising=False)
    at = open_train(data_config=DataConfig(source="cifar100", label_mode="coarse"))
    assert "cifar-100-python.tar.gz" in at.info[0].value
    assert not at.metric and "train_start" not in {button.key for button in at.button}


def test_transfer_head_only_trains_just_the_new_classifier() -> None:
    at = open_train()
    at.radio(key="train_kind").set_value("transfer")
    rerun(at)
    at.selectbox(key="train_arch_transfer").select("MobileNetV2")
    rerun(at)
    at.slider(key="train_input_MobileNetV2").set_value(32)
    at.radio(key="train_weights").set_value("none")
    at.radio(key="train_trainable").set_value("head")
    rerun(at)
    assert metric(at, "Trainable parameters") == f"{(1280 + 1) * 10:,}"  # features × digits
    assert int(metric(at, "Frozen parameters").replace(",", "")) > 2_000_000


def test_invalid_settings_are_refused_with_the_field_and_nothing_starts(fake_worker) -> None:
    at = open_train()
    at.radio(key="train_length").set_value("epochs")  # reduce-on-plateau is for epochs only
    rerun(at)
    at.selectbox(key="train_schedule").select("cosine")
    at.toggle(key="train_reduce").set_value(True)  # cannot be combined with a schedule
    at.button(key="train_start").click()
    rerun(at)
    assert "callbacks.reduce_lr" in at.error[0].value
    assert run_dirs() == [] and fake_worker == []
    at.toggle(key="train_reduce").set_value(False)
    at.button(key="train_start").click()
    rerun(at)
    assert not at.error
    (launched,) = runs.list_runs()
    assert launched.config.optimizer.schedule == "cosine"
    assert not launched.config.callbacks.reduce_lr
    assert len(fake_worker) == 1 and str(launched.path.resolve()) in fake_worker[0]
    person = page_person()  # launched as the person signed in on the page
    assert (launched.info["owner"], launched.info["owner_name"]) == (person.key, person.name)


def test_live_panel_shows_runs_of_every_status(run_factory) -> None:
    made = {status: run_factory(status, name=f"run-{status}") for status in STATUSES}
    at = open_train()
    assert at.session_state["train_tab"] == LIVE  # runs are active: the page opens on them
    shown = texts(at.markdown)
    for status in ("queued", "running", "cancelled"):  # both active ones, and the newest
        assert f"#### run-{status}" in shown
    assert {button.key for button in at.button} >= {
        f"train_stop_{made['queued'].run_id}", f"train_stop_{made['running'].run_id}"}
    checks = {
        "completed": lambda: "finished and scored" in at.success[0].value,
        "stopped": lambda: "was stopped" in at.success[0].value,
        "failed": lambda: "the sky fell" in at.error[0].value,
        "interrupted": lambda: "Resume continues from its last saved epoch" in at.warning[0].value,
        "running": lambda: at.get("progress")[0].proto.text == "Epoch 2 of 3",
        "queued": lambda: at.get("progress")[0].proto.text == "Queued: waiting for a free slot",
        "cancelled": lambda: "Cancelled while it waited in line" in at.info[0].value,
    }
    for status, check in checks.items():
        at.session_state["selected_run"] = made[status].run_id
        rerun(at)
        assert f"#### run-{status}" in texts(at.markdown)
        assert check(), status
    at.session_state["selected_run"] = made["completed"].run_id
    rerun(at)
    accuracy = made["completed"].info["test_accuracy"]
    assert metric(at, "Test accuracy") == f"{accuracy:.1%}"
    curves = chart_spec(at, 0)
    assert {trace["name"] for trace in curves["data"]} == {"train", "validation"}
    assert len(curves["data"][0]["x"]) == 3  # three epochs


def test_running_run_shows_progress_time_left_and_stops(run_factory) -> None:
    run = run_factory("running", epochs=3)
    (epoch,) = rundir.epoch_rows(run.path)
    rundir.append_metrics(run.path, {"kind": "batch", "epoch": 2, "step": 5, "steps": 10,
                                     "seconds": 5.0, "loss": 1.0, "accuracy": 0.5})
    at = open_train()
    bars = [bar.proto.text for bar in at.get("progress")]
    assert bars == ["Epoch 2 of 3", "Batch 5 of 10"]
    # 5 batches left at 1 s each, then one more epoch at the pace of the first.
    left = round(5 + epoch["seconds"])
    assert metric(at, "Time left") == f"0m {left:02d}s"
    assert metric(at, "Validation accuracy") == f"{epoch['val_accuracy']:.1%}"
    at.button(key=f"train_stop_{run.run_id}").click()
    rerun(at)
    assert rundir.stop_requested(run.path)
    assert at.button(key=f"train_stopping_{run.run_id}").disabled


@pytest.mark.slow
def test_form_launches_a_real_run_and_shows_its_curves() -> None:
    at = open_train(data_config=DataConfig(source="digits", max_train_images=200,
                                           max_test_images=100))
    at.selectbox(key="train_arch_scratch").select("simple_cnn")
    at.radio(key="train_length").set_value("epochs")
    rerun(at)
    at.number_input(key="train_epochs").set_value(1)
    at.select_slider(key="train_batch").set_value(32)
    at.text_input(key="train_name").input("tiny digits")
    at.button(key="train_start").click()
    rerun(at)
    (launched,) = runs.list_runs()
    config = launched.config
    assert config.name == "tiny digits" and config.model == ModelConfig(
        architecture="simple_cnn", weights="none")
    assert (config.training.epochs, config.training.batch_size) == (1, 32)
    assert config.data.max_train_images == 200
    assert not config.augment.horizontal_flip  # digits: the recommended augmentation
    assert at.session_state["train_tab"] == LIVE
    assert at.session_state["selected_run"] == launched.run_id  # Runs and Errors pick it too
    assert "#### tiny digits" in texts(at.markdown)
    finished = runs.wait(launched.run_id, timeout=300)
    assert finished.status == "completed", finished.info.get("error")
    rerun(at)
    assert "finished and scored" in at.success[0].value
    assert metric(at, "Test accuracy") == f"{finished.info['test_accuracy']:.1%}"
    assert len(at.get("plotly_chart")) == 1
    assert chart_spec(at, 0)["data"][0]["x"] == [1]


def seconds_shown(text: str) -> int:
    """'1m 15s' -> 75 (format_seconds' wording, hours not needed here)."""
    minutes, secs = text.removesuffix("s").split("m ")
    return 60 * int(minutes) + int(secs)


@pytest.mark.parametrize(("before", "since_start"), [(0.0, 75.0), (600.0, 30.0)],
                         ids=["epoch 1", "resumed"])
def test_elapsed_counts_from_the_training_clock_during_epoch_1(
        run_factory, before: float, since_start: float) -> None:
    """No epoch finished yet (epoch 1, or the first epoch of a resumed attempt): elapsed is the
    worker's clock (elapsed_before + time since training_started), not '–' or one epoch's time."""
    run = run_factory("running", epochs=3)
    rundir.reset_metrics(run.path)
    rundir.update_status(run.path, training_started=time.time() - since_start,
                         elapsed_before=before, train_seconds=before)
    rundir.append_metrics(run.path, {"kind": "batch", "epoch": 1, "step": 2, "steps": 10,
                                     "seconds": 4.0, "elapsed": before + 4.0})
    at = open_train()
    shown = seconds_shown(metric(at, "Elapsed"))
    assert shown >= before + since_start  # the clock's lower bound; it only grows
    assert shown < before + since_start + 60  # not some other record (epoch or batch time)


def test_stopped_run_resumes_from_the_train_page(run_factory, fake_worker) -> None:
    run = run_factory("stopped", name="cut short", epochs=5)
    rundir.update_status(run.path, partial_epoch=5, partial_batches=4, steps_per_epoch=10,
                         train_seconds=630.0)
    at = open_train(selected_run=run.run_id, train_tab=LIVE)
    assert "Stopped during epoch 5 (40 % done); Resume trains it again." in texts(at.caption)
    assert metric(at, "Training time") == "10m 30s"  # every attempt, from status
    at.button(key=f"train_resume_{run.run_id}").click()
    rerun(at)
    assert runs.load(run.run_id).status in ("queued", "running")
    assert len(fake_worker) == 1 and fake_worker[0][-1] == "--resume"
    assert str(run.path.resolve()) in fake_worker[0]
    assert at.button(key=f"train_stop_{run.run_id}")  # the card now offers Stop again


def test_resume_is_disabled_with_the_reason_when_refused(run_factory, fake_worker) -> None:
    run = run_factory("stopped", name="no checkpoint")
    (run.path / rundir.LAST_MODEL).unlink()  # scored, but resuming would retrain from epoch 1
    at = open_train(selected_run=run.run_id, train_tab=LIVE)
    button = at.button(key=f"train_resume_{run.run_id}")
    assert button.disabled and "has no resume checkpoint" in button.help
    assert fake_worker == []


def test_live_card_names_the_runs_own_data_not_the_pickers(run_factory) -> None:
    run = run_factory("running", name="on cifar")  # the factory trains CIFAR-10, 4 classes
    at = open_train(selected_run=run.run_id)  # the picker says Digits (nothing chosen)
    assert "**Data:** Digits" in texts(at.markdown)
    assert "CIFAR-10 · first 4 classes" in texts(at.caption)


def test_curves_follow_each_new_epoch_of_a_running_run(run_factory) -> None:
    run = run_factory("running", epochs=3)
    at = open_train()
    assert len(chart_spec(at, 0)["data"][0]["x"]) == 1
    (first,) = rundir.epoch_rows(run.path)
    rundir.append_metrics(run.path, {**first, "epoch": 2, "val_accuracy": 0.5})
    rerun(at)  # the same second: the figure is rebuilt because the metrics file grew
    assert len(chart_spec(at, 0)["data"][0]["x"]) == 2
    assert metric(at, "Validation accuracy") == "50.0%"


def test_a_queued_card_is_its_place_in_line_only(run_factory) -> None:
    run = run_factory("queued", name="waiting")
    rundir.append_metrics(run.path, {"kind": "epoch", "epoch": 1, "seconds": 1.0, "loss": 1.0,
                                     "accuracy": 0.4, "val_loss": 1.1, "val_accuracy": 0.3})
    at = open_train()  # e.g. a stopped run resumed: back in line with epochs on disk
    assert "#### waiting" in texts(at.markdown)
    assert [bar.proto.text for bar in at.get("progress")] == ["Queued: waiting for a free slot"]
    assert not at.get("plotly_chart") and not at.metric


def test_only_the_persons_own_active_runs_are_watched_besides_the_focus(run_factory) -> None:
    run_factory("running", name="mine")
    theirs = run_factory("running", name="theirs")
    rundir.update_status(theirs.path, owner="someone-else", owner_name="Someone")
    run_factory("completed", name="newest")
    at = open_train(person=classroom.Person(key="teacher", name="Teacher", teacher=True))
    shown = texts(at.markdown)  # a teacher sees every run, yet watches only their own here
    assert "#### newest" in shown and "#### mine" in shown and "#### theirs" not in shown
    at.session_state["selected_run"] = theirs.run_id  # picked on Runs: watched
    rerun(at)
    assert "#### theirs" in texts(at.markdown)


# --- how long to train, the config's defaults, the new settings


def keys(elements) -> set[str]:
    return {element.key for element in elements}


def launched_config(at: AppTest) -> RunConfig:
    """Press Start; the config of the run it launched (the one id not there before: two runs
    launched in the same second sort by their random suffix, not by age)."""
    before = {run.run_id for run in runs.list_runs()}
    at.button(key="train_start").click()
    rerun(at)
    assert not at.error, at.error[0].value
    (launched,) = [run for run in runs.list_runs() if run.run_id not in before]
    return launched.config


def budgeted_defaults(seconds: float, data: DataConfig) -> RunConfig:
    """What the untouched form must launch: RunConfig()'s defaults, a time budget (so early
    stopping and reduce-on-plateau off), and what the page adds: the data choice and its
    recommended augmentation, no pretrained weights for a scratch network."""
    defaults = RunConfig()
    return replace(defaults, data=data, augment=recommended_augment(data.source),
                   model=replace(defaults.model, weights="none"),
                   training=replace(defaults.training, time_budget_s=seconds),
                   callbacks=replace(defaults.callbacks, early_stopping=False, reduce_lr=False))


def test_the_untouched_form_launches_the_defaults_for_two_minutes(fake_worker) -> None:
    at = open_train()
    length = at.radio(key="train_length")
    assert (length.value, length.options) == ("quick", [
        "Train for 2 minutes", "Train for … minutes", "A number of epochs"])
    assert "fits the number of epochs and the learning-rate schedule" in length.help
    toggles = keys(at.toggle)  # a budget ends with its schedule: no early stopping, no plateau
    assert not toggles & {"train_early", "train_reduce", "train_restore"}
    assert "train_epochs" not in keys(at.number_input)
    assert any("Early stopping and reduce-on-plateau are off" in c.value for c in at.caption)
    assert launched_config(at) == budgeted_defaults(120.0, DataConfig())
    assert len(fake_worker) == 1


def test_a_typed_budget_and_a_number_of_epochs(fake_worker) -> None:
    at = open_train()
    at.radio(key="train_length").set_value("minutes")
    rerun(at)
    at.number_input(key="train_budget_minutes").set_value(7)
    config = launched_config(at)
    assert config.training.time_budget_s == 420.0
    assert not config.callbacks.early_stopping and not config.callbacks.reduce_lr
    at.session_state["train_tab"] = SETUP  # a launch opens the live tab
    rerun(at)
    at.radio(key="train_length").set_value("epochs")
    rerun(at)
    assert {"train_early", "train_reduce", "train_restore"} <= keys(at.toggle)
    at.number_input(key="train_epochs").set_value(4)
    config = launched_config(at)
    assert config.training.time_budget_s is None and config.training.epochs == 4
    defaults = RunConfig()
    assert (config.callbacks, config.optimizer) == (defaults.callbacks, defaults.optimizer)


def set_defaults(monkeypatch: pytest.MonkeyPatch, cls: type, **changes: Any) -> None:
    """Give a config dataclass other defaults for one test (its __init__'s defaults are read
    when RunConfig() builds its sections), as a change of the default recipe would."""
    unknown = set(changes) - {item.name for item in fields(cls)}
    assert not unknown, unknown
    monkeypatch.setattr(cls.__init__, "__defaults__", tuple(
        changes.get(item.name, item.default) for item in fields(cls)))


def test_the_form_follows_a_changed_default_recipe(
        monkeypatch: pytest.MonkeyPatch, fake_worker) -> None:
    set_defaults(monkeypatch, TrainingConfig, batch_size=384, label_smoothing=0.2,
                 steps_per_execution=16, calibrate=False, mixed_precision=True)
    set_defaults(monkeypatch, OptimizerConfig, name="sgd", learning_rate=2e-3,
                 schedule="linear", warmup_fraction=0.2, use_ema=True, ema_momentum=0.995,
                 nesterov=True, momentum=0.85)
    set_defaults(monkeypatch, CallbacksConfig, early_stopping=False, reduce_lr=False,
                 checkpoint=False)
    set_defaults(monkeypatch, ModelConfig, architecture="simple_cnn", dropout=0.35,
                 dense_units=96, pooling="max")
    assert RunConfig().training.batch_size == 384  # the patch took
    at = open_train()
    assert launched_config(at) == budgeted_defaults(120.0, DataConfig())


def test_distribute_is_offered_only_with_two_gpus_or_more(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for gpus, refusal in (([], "this computer has no GPU"), (["0"], "this computer has one GPU"),
                          (["0", "1"], None)):
        monkeypatch.setattr(settings, "visible_gpus", lambda gpus=gpus: gpus)
        forms.gpu_count.clear()
        at = open_train()
        toggle = at.toggle(key="train_distribute")
        assert toggle.disabled == (refusal is not None), gpus
        assert (refusal or "MirroredStrategy") in toggle.help
    forms.gpu_count.clear()


def test_feature_caching_is_offered_for_head_only_transfer() -> None:
    at = open_train()
    assert "train_cache_features" not in keys(at.toggle)
    at.radio(key="train_kind").set_value("transfer")
    rerun(at)
    assert "train_cache_features" not in keys(at.toggle)  # the default trains every layer
    at.radio(key="train_trainable").set_value("head")
    rerun(at)
    assert at.toggle(key="train_cache_features").value == ModelConfig().cache_features
    assert {"train_flip_tta", "train_calibrate", "train_ema", "train_mixed", "train_xla"} <= keys(
        at.toggle)
    assert "Linear (warm up, then straight down to 0)" in at.selectbox(
        key="train_schedule").options


# --- a budgeted run on the live card


def budgeted(run: runs.Run, seconds: float = 120.0, **status: Any) -> runs.Run:
    """A fabricated run turned into one with a time budget, with these status fields."""
    config = run.config
    replace(config, training=replace(config.training, time_budget_s=seconds),
            callbacks=replace(config.callbacks, early_stopping=False)).save(
                run.path / rundir.CONFIG)
    rundir.update_status(run.path, time_budget_s=seconds, **status)
    return runs.load(run.run_id)


FIT = {"budget_epochs": 57, "budget_images_per_second": 1650.4,
       "budget_planned_seconds": 118.0, "budget_fitted_at": 6.0}


def test_a_budgeted_run_shows_it_measures_its_speed_first(run_factory) -> None:
    run = budgeted(run_factory("running", epochs=3))
    rundir.append_metrics(run.path, {"kind": "batch", "epoch": 2, "step": 5, "steps": 10,
                                     "seconds": 5.0, "elapsed": 30.0})
    at = open_train()
    assert ":material/timer: Budget 2:00 · measuring speed…" in [m.value for m in at.markdown]
    bars = [bar.proto.text for bar in at.get("progress")]
    assert bars == ["Epoch 2: measuring speed to fit the epochs to the budget", "Batch 5 of 10",
                    "0:30 of the 2:00 budget"]
    assert metric(at, "Elapsed") == "0m 30s"
    assert metric(at, "Time left") == "1m 30s"  # to the budget, until the plan is made


def test_a_budgeted_run_shows_the_fit_and_progress_over_the_fitted_epochs(run_factory) -> None:
    run = budgeted(run_factory("running", epochs=3), **FIT)
    rundir.append_metrics(run.path, {"kind": "batch", "epoch": 2, "step": 5, "steps": 10,
                                     "seconds": 5.0, "elapsed": 45.0})
    at = open_train()
    assert (":material/timer: Budget 2:00 · 57 epochs fitted at 1,650 images/s · planned 1:58"
            in [m.value for m in at.markdown])
    bars = at.get("progress")
    assert [bar.proto.text for bar in bars] == ["Epoch 2 of 57", "Batch 5 of 10",
                                                "0:45 of the 2:00 budget"]
    assert bars[0].proto.value == int(100 * 1.5 / 57)  # over the fitted epochs, not 3
    assert metric(at, "Time left") == "1m 13s"  # 118 planned - 45 so far


def test_a_finished_budgeted_run_shows_the_budget_and_its_training_time(run_factory) -> None:
    run = budgeted(run_factory("completed", epochs=3), **FIT)
    rundir.update_status(run.path, train_seconds=117.4)
    at = open_train(selected_run=run.run_id, train_tab=LIVE)
    assert (":material/timer: Budget 2:00 · 57 epochs fitted at 1,650 images/s · planned 1:58 · "
            "trained 1:57" in [m.value for m in at.markdown])
    assert metric(at, "Training time") == "1m 57s"
