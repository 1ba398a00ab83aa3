"""Fixtures for the AppTest page tests: fabricated run directories in every state.

`run_factory` writes what a real worker leaves behind (config.json, status.json, metrics.jsonl,
predictions.npz, eval.json and a real, tiny model.keras) under settings.runs_dir(), which the
root conftest points at a per-test folder. Active runs get a live stand-in worker process (a
sleeping Python whose pid the status records, as jobs._worker_alive requires), killed at
teardown. `fake_worker` makes jobs.start_worker spawn such stand-ins instead of real training.
`search_factory` does the same for searches (tune.json, status.json, search.log and keras-tuner's
keras_tuner/trial_<n>/trial.json, as keras-tuner 1.4 writes it), so every status renders without
TensorFlow running.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cifarkit import classroom, jobs, queue, rundir, runs, searchdir, searches, settings
from cifarkit.classroom import Person
from cifarkit.config import CallbacksConfig, DataConfig, ModelConfig, RunConfig, TrainingConfig
from cifarkit.evaluation import Predictions, summary_metrics
from cifarkit.labels import CIFAR10_LABELS, CIFAR100_COARSE_LABELS, CIFAR100_FINE_TO_COARSE
from cifarkit.tuneconfig import SearchSpace, TuneConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
STATUSES = ("queued", "running", "completed", "failed", "stopped", "interrupted", "cancelled")
# Six CIFAR-100 fine classes from three superclasses (two each), for the coarse toggle.
CIFAR100_SUBSET = ("maple_tree", "oak_tree", "bus", "train", "bee", "beetle")
SLEEPER = "import time; time.sleep(60)"
_POPEN = subprocess.Popen  # the real one, even while fake_worker patches the module
BASE_TIME = 1_780_000_000.0  # fabricated runs are created one minute apart from here
CONV_FILTERS = 8  # feature maps of the conv tiny model: enough that each class has its own heatmap

PERSON_KEY = "person"  # ui.state.PERSON: the session key ui.identity keeps the person under

RunFactory = Callable[..., runs.Run]


def page_path(name: str) -> str:
    """Absolute path of a page script: AppTest resolves relative paths against the test file."""
    return str(REPO_ROOT / name)


def assert_clean(at: Any) -> None:
    """No uncaught exception on the page; the messages are in the failure report if there is."""
    assert not at.exception, [(error.message, error.stack_trace[-3:]) for error in at.exception]


def chart_spec(at: Any, index: int) -> dict[str, Any]:
    """The index-th plotly chart on the page as a dict, typed arrays decoded to lists.

    Plotly serialises numeric arrays as {"dtype", "bdata", "shape"} (base64) in the JSON spec.
    """
    return _decode(json.loads(at.get("plotly_chart")[index].proto.spec))


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "bdata" in value and "dtype" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = [int(part) for part in str(value.get("shape", len(array))).split(",")]
        return array.reshape(shape).tolist()
    if isinstance(value, dict):
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def spawn_sleeper() -> subprocess.Popen:
    """A live process standing in for a worker: jobs tells a live worker by its pid (and start
    time, when recorded), so any live process will do."""
    return _POPEN([sys.executable, "-c", SLEEPER], stdin=subprocess.DEVNULL,
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _dead_pid() -> int:
    """The pid of a process that has already exited (an interrupted run's worker)."""
    process = _POPEN([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def record_worker(info: dict[str, Any], status: str,
                  sleepers: list[subprocess.Popen] | None) -> None:
    """Give a fabricated job's status the worker its status implies: a live stand-in for an
    active (queued/running) job, appended to `sleepers` for the caller to kill; a dead pid for
    an interrupted one (written as running, as its worker left it)."""
    if status in ("queued", "running"):
        if sleepers is None:
            raise ValueError(f"a {status} job needs a list to hold its stand-in worker")
        sleepers.append(spawn_sleeper())
        info["pid"] = sleepers[-1].pid
    elif status == "interrupted":
        info.update(status="running", pid=_dead_pid())


def settle(kind: jobs.JobKind, path: Path, info: dict[str, Any], status: str) -> Any:
    """Write a fabricated job's status.json and load it: it must read as the status meant."""
    rundir.write_json_atomic(path / rundir.STATUS, info)
    loaded = jobs.load(kind, path)
    assert loaded.status == status, f"fabricated {status} {kind.noun} reads as {loaded.status}"
    return loaded


def make_test_set(num_classes: int, count: int, cifar100: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels that depend only on the class set, so runs on it can be ensembled."""
    rng = np.random.default_rng(1000 + num_classes + (500 if cifar100 else 0))
    y_true = np.arange(count) % num_classes
    images = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
    return images, y_true.astype(np.int64)


def fake_probs(y_true: np.ndarray, num_classes: int, accuracy: float,
               rng: np.random.Generator) -> np.ndarray:
    """Probabilities right for about `accuracy` of the samples, with varied confidence."""
    probs = rng.dirichlet(np.ones(num_classes), size=len(y_true)).astype(np.float32)
    right = rng.random(len(y_true)) < accuracy
    for row, label in enumerate(y_true):
        target = label if right[row] else (label + 1 + rng.integers(num_classes - 1)) % num_classes
        probs[row, target] += 1.0 + rng.random()
    return probs / probs.sum(axis=1, keepdims=True)


def save_tiny_model(path: Path, num_classes: int, conv: bool = False, seed: int = 0) -> None:
    """A real Keras model (32x32x3 -> softmax) that predict.load_model can open in safe mode.

    conv=True puts a small convolution in (for Grad-CAM), with weights drawn from `seed` so
    heatmaps are the same on every test run; the default model has none (a linear classifier).
    """
    import keras

    body = ([keras.layers.Conv2D(CONV_FILTERS, 3, padding="same", activation="relu",
                                 name="conv"), keras.layers.GlobalAveragePooling2D()]
            if conv else [keras.layers.Flatten()])
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 255),
        *body,
        keras.layers.Dense(num_classes, activation="softmax"),
    ], name="tiny_cnn" if conv else "tiny")
    if conv:
        rng = np.random.default_rng(seed)
        model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32")
                           for w in model.get_weights()])
    model.save(path)


def _config(name: str, num_classes: int, cifar100: bool, epochs: int) -> RunConfig:
    if cifar100:
        data = DataConfig(source="cifar100", label_mode="fine",
                          classes=CIFAR100_SUBSET[:num_classes])
    else:
        data = DataConfig(source="cifar10", num_classes=num_classes)
    return RunConfig(name=name, data=data, model=ModelConfig(architecture="simple_cnn"),
                     training=TrainingConfig(epochs=epochs)).validate()


def _class_names(num_classes: int, cifar100: bool) -> list[str]:
    return list(CIFAR100_SUBSET[:num_classes] if cifar100 else CIFAR10_LABELS[:num_classes])


def _write_epochs(run_dir: Path, epochs: int, rng: np.random.Generator) -> None:
    for epoch in range(1, epochs + 1):
        progress = epoch / (epochs + 1)
        rundir.append_metrics(run_dir, {
            "kind": "epoch", "epoch": epoch, "seconds": round(2 + rng.random(), 3), "lr": 1e-3,
            "loss": 1.4 - 0.8 * progress, "accuracy": 0.3 + 0.5 * progress,
            "top5": 0.8 + 0.2 * progress, "val_loss": 1.5 - 0.6 * progress + 0.05 * rng.random(),
            "val_accuracy": 0.25 + 0.45 * progress + 0.03 * rng.random(),
            "val_top5": 0.75 + 0.2 * progress})


def _write_predictions(run_dir: Path, num_classes: int, cifar100: bool, accuracy: float,
                       test_images: int, rng: np.random.Generator) -> dict[str, float]:
    images, y_true = make_test_set(num_classes, test_images, cifar100)
    extra: dict[str, Any] = {}
    if cifar100:
        fine_to_coarse = [CIFAR100_FINE_TO_COARSE[i] for i in _fine_indices(num_classes)]
        extra = {"coarse_names": list(CIFAR100_COARSE_LABELS), "fine_to_coarse": fine_to_coarse}
    pred = Predictions(y_true=y_true, probs=fake_probs(y_true, num_classes, accuracy, rng),
                       class_names=_class_names(num_classes, cifar100), images=images, **extra)
    pred.save(run_dir / rundir.PREDICTIONS)
    metrics = summary_metrics(pred)
    rundir.write_json_atomic(run_dir / rundir.EVAL, metrics)
    return metrics


def _fine_indices(num_classes: int) -> list[int]:
    from cifarkit.labels import CIFAR100_FINE_LABELS

    return [CIFAR100_FINE_LABELS.index(name) for name in CIFAR100_SUBSET[:num_classes]]


def fabricate_run(number: int, status: str = "completed", *, name: str | None = None,
                  num_classes: int = 4, cifar100: bool = False, accuracy: float = 0.7,
                  epochs: int = 3, test_images: int = 40, conv: bool = False,
                  sleepers: list[subprocess.Popen] | None = None) -> runs.Run:
    """Write run folder number `number` under settings.runs_dir() as a worker would leave it.

    Active (queued/running) runs need a live worker: a stand-in is started and appended to
    `sleepers`, which the caller must kill. conv: the saved models have a convolution, which
    Grad-CAM needs.
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    rng = np.random.default_rng(number)
    run_dir = settings.runs_dir() / f"20260601-12{number:02d}00-simple_cnn-{number:04x}"
    run_dir.mkdir(parents=True)
    _config(name or f"{status}-{number}", num_classes, cifar100, epochs).save(
        run_dir / rundir.CONFIG)
    created = BASE_TIME + 60 * number
    info: dict[str, Any] = {"status": status, "created": created, "error": None,
                            "num_classes": num_classes}
    done = {"completed": epochs, "stopped": max(1, epochs - 1), "running": 1,
            "interrupted": 1, "failed": 1, "queued": 0, "cancelled": 0}[status]
    _write_epochs(run_dir, done, rng)
    if status == "cancelled":  # a STOP reached it in the device queue: it never started
        info["note"] = queue.CANCEL_NOTE
    elif status != "queued":
        info.update(started=created + 1, epochs_run=done, train_seconds=round(2.5 * done, 3),
                    peak_memory_mb=512.0, trainable_params=3073 * num_classes,
                    non_trainable_params=0, weights_mb=round(3073 * num_classes * 4 / 2**20, 4))
    record_worker(info, status, sleepers)
    if status == "failed":
        info.update(finished=created + 5, error="ValueError: the sky fell (fabricated)")
    if status in ("completed", "stopped", "interrupted"):
        save_tiny_model(run_dir / rundir.BEST_MODEL, num_classes, conv, seed=number)
        save_tiny_model(run_dir / rundir.LAST_MODEL, num_classes, conv, seed=number)
        info["checkpoint_epoch"] = done  # the epoch last.keras holds, as the worker records it
        info["model_file_mb"] = round((run_dir / rundir.BEST_MODEL).stat().st_size / 2**20, 3)
    if status in ("completed", "stopped"):
        metrics = _write_predictions(run_dir, num_classes, cifar100, accuracy, test_images, rng)
        info.update(finished=created + 10, **{f"test_{k}": v for k, v in metrics.items()})
    return settle(runs.KIND, run_dir, info, status)


@pytest.fixture
def run_factory() -> Iterator[RunFactory]:
    """make(status, name=..., num_classes=4, cifar100=False, accuracy=0.7, epochs=3,
    test_images=40, conv=False) -> Run; stand-in workers of active runs are killed at teardown."""
    sleepers: list[subprocess.Popen] = []
    counter = itertools.count()

    def make(status: str = "completed", **options: Any) -> runs.Run:
        return fabricate_run(next(counter), status, sleepers=sleepers, **options)

    yield make
    for process in sleepers:
        process.kill()
        process.wait()


@pytest.fixture
def run_in_every_status(run_factory: RunFactory) -> dict[str, runs.Run]:
    """One fabricated run per status (status -> run): what a picker must filter."""
    return {status: run_factory(status) for status in STATUSES}


def mark_imported(run: runs.Run, model_name: str = "tiny") -> runs.Run:
    """Turn a fabricated run into what modelfiles.import_model writes: no epochs, imported."""
    info = {key: value for key, value in run.info.items() if key != "epochs_run"}
    info.update(imported=True, model_name=model_name)
    rundir.write_json_atomic(run.path / rundir.STATUS, info)
    return runs.load(run.path)


@pytest.fixture
def shown_images(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, np.ndarray]]:
    """(caption, pixels) of every st.image call, in order: what the page actually drew.

    AppTest only exposes media URLs; the pixels let a test compare a heatmap with one computed
    straight from cifarkit. Page code calls .image on columns and placeholders (DeltaGenerator).
    """
    from PIL import Image
    from streamlit.delta_generator import DeltaGenerator

    captured: list[tuple[str, np.ndarray]] = []
    method = DeltaGenerator.image

    def spy(self: DeltaGenerator, image: Any, caption: Any = None, *args: Any,
            **kwargs: Any) -> Any:
        pixels = np.asarray(image) if isinstance(image, Image.Image | np.ndarray) else None
        captured.append((str(caption), pixels))
        return method(self, image, caption, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "image", spy)
    return captured


@pytest.fixture
def fake_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """jobs.start_worker launches a sleeping stand-in instead of training; yields the worker
    commands. Patching Popen patches it for everyone: other commands (settings.slots() asking
    nvidia-smi) run as they are and are not recorded.

    The real start_worker code still runs (status queued, pid recorded, log opened), so a test of
    Resume sees on disk exactly what a real resume writes, without TensorFlow in a subprocess.
    """
    commands: list[list[str]] = []
    started: list[subprocess.Popen] = []

    def popen(command: list[str], **kwargs: Any) -> subprocess.Popen:
        if list(command[1:3]) != ["-m", "cifarkit"]:  # not a worker (nvidia-smi -L, say)
            return _POPEN(command, **kwargs)
        commands.append(list(command))
        kwargs.pop("env", None)
        process = _POPEN([sys.executable, "-c", SLEEPER, *command[3:]], **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(jobs.subprocess, "Popen", popen)
    yield commands
    for process in started:
        process.kill()
        process.wait()


# --- fabricated searches (the Tune page's tests and the ownership tests)

SCORES = (0.55, 0.72, 0.61)  # a completed search's trials; trial 1 is the best
VALUES = ({"base_filters": 16, "blocks": 2, "dropout": 0.1, "learning_rate": 1e-3,
           "optimizer": "adam", "augmentation": 0.05, "batch_size": 32},
          {"base_filters": 32, "blocks": 3, "dropout": 0.3, "learning_rate": 3e-3,
           "optimizer": "sgd", "augmentation": 0.15, "batch_size": 64},
          {"base_filters": 16, "blocks": 3, "dropout": 0.2, "learning_rate": 2e-4,
           "optimizer": "adam", "augmentation": 0.0, "batch_size": 64})
TRACEBACK = "Traceback (most recent call last):\n  File \"x.py\"\nValueError: bad trial"

SearchFactory = Callable[..., searches.Search]


def tiny_tune(name: str) -> TuneConfig:
    base = RunConfig(name=name, data=DataConfig(source="digits", max_train_images=200),
                     model=ModelConfig(architecture="custom_cnn", weights="none"),
                     training=TrainingConfig(epochs=4),
                     callbacks=CallbacksConfig(early_stopping=False))
    return TuneConfig(name=name, base=base, max_trials=3, epochs_per_trial=2,
                      space=SearchSpace(base_filters=(16, 32), blocks_min=2, blocks_max=3,
                                        batch_sizes=(32, 64)))


def trial_json(trial: int, status: str, score: float | None = None,
               message: str | None = None) -> dict[str, Any]:
    """A trial.json as keras-tuner writes it (metrics observed at step 0 = the one epoch)."""
    metrics = {} if score is None else {
        "val_accuracy": {"direction": "max", "observations": [{"value": [score], "step": 0}]},
        "val_loss": {"direction": "min", "observations": [{"value": [2 - score], "step": 0}]}}
    return {"trial_id": str(trial), "hyperparameters": {"space": [], "values": VALUES[trial]},
            "metrics": {"metrics": metrics}, "score": score, "best_step": 0, "status": status,
            "message": message}


# What each search status leaves in keras_tuner/: (trial.json status, score, message) per trial.
TRIALS = {
    "queued": [],
    "cancelled": [],
    "running": [("COMPLETED", SCORES[0], None), ("RUNNING", None, None)],
    "completed": [("COMPLETED", score, None) for score in SCORES],
    "failed": [("COMPLETED", SCORES[0], None), ("FAILED", None, TRACEBACK)],
    "stopped": [("COMPLETED", SCORES[0], None), ("RUNNING", None, None)],
    "interrupted": [("COMPLETED", SCORES[0], None), ("RUNNING", None, None)],
}


def fabricate_search(number: int, status: str, sleepers: list[subprocess.Popen]) -> searches.Search:
    """Search folder number `number` under settings.searches_dir() as its worker leaves it."""
    path = settings.searches_dir() / f"20260601-12{number:02d}00-random-{number:04x}"
    path.mkdir(parents=True)
    tiny_tune(f"search-{status}").save(path / searchdir.TUNE)
    for trial, (state, score, message) in enumerate(TRIALS[status]):
        folder = searchdir.project_dir(path) / f"trial_{trial}"
        folder.mkdir(parents=True)
        rundir.write_json_atomic(folder / searchdir.TRIAL_FILE,
                                 trial_json(trial, state, score, message))
    info: dict[str, Any] = {"status": status, "created": 1_780_000_000.0 + 60 * number,
                            "error": None, "planned_trials": 3, "trial_epochs": 2}
    record_worker(info, status, sleepers)
    if status == "running":
        rundir.append_metrics(path, {"kind": "batch", "epoch": 1, "step": 3, "steps": 10,
                                     "seconds": 1.5, "loss": 2.0, "accuracy": 0.3})
    if status == "failed":
        info["error"] = "RuntimeError: the sky fell (fabricated)"
        (path / searchdir.LOG).write_text("loading digits\nRuntimeError: the sky fell\n")
    if status == "stopped":
        rundir.request_stop(path)  # a stopped worker leaves its STOP file behind
    if status == "completed":
        info.update(best_trial=1, best_score=SCORES[1])
    return settle(searches.KIND, path, info, status)


@pytest.fixture
def search_factory() -> Iterator[SearchFactory]:
    """make(status) -> Search; stand-in workers of active searches are killed at teardown."""
    sleepers: list[subprocess.Popen] = []
    counter = itertools.count()
    yield lambda status="completed": fabricate_search(next(counter), status, sleepers)
    for process in sleepers:
        process.kill()
        process.wait()


def open_page(page: str, timeout: float = 60, **session: object) -> Any:
    """Run a page under AppTest with the given session state and check it rendered cleanly.
    The page is opened as page_person() unless `person=` names someone else (None: nobody yet)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(page, default_timeout=timeout)
    session.setdefault(PERSON_KEY, page_person())
    for key, value in session.items():
        if value is not None:
            at.session_state[key] = value
    return rerun(at)


def page_person() -> Person:
    """Who opens a page in a page test unless it says otherwise (pages ask for a name first):
    the person the Python API acts as, so jobs a test makes without `by=` are theirs, and
    fabricated jobs (no owner recorded) are anyone's."""
    return classroom.local_person()


def give_to(kind: jobs.JobKind, job: Any, person: Person) -> Any:
    """Make a fabricated job `person`'s, as jobs.create records its owner in status.json."""
    rundir.update_status(job.path, owner=person.key, owner_name=person.name)
    return jobs.load(kind, job.path)


def open_with_runs(page: str, key: str, picked: Sequence[runs.Run]) -> Any:
    """Open a page and choose these runs in its run multiselect `key` (rendered cleanly)."""
    at = open_page(page)
    at.multiselect(key=key).set_value([run.run_id for run in picked])
    return rerun(at)


def offered_statuses(options: Sequence[str], made: Mapping[str, Any]) -> list[str]:
    """Which fabricated jobs (status -> job) a picker offers, by the job's name in its label;
    every option must name one of them."""
    found = {status: [label for label in options if job.name in label]
             for status, job in made.items()}
    assert sum(len(labels) for labels in found.values()) == len(options), (options, found)
    return sorted(status for status, labels in found.items() if labels)


def rerun(at: Any) -> Any:
    """Run the AppTest again (after widget changes) and check it rendered cleanly."""
    at.run()
    assert_clean(at)
    return at
