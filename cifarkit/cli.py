"""`python -m cifarkit`: train, evaluate, predict, runs, datasets and tune from the command line."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cifarkit import classroom, jobs, queue, runs, searches, settings
from cifarkit.config import RunConfig, load_json_object, set_dotted
from cifarkit.searches import Search
from cifarkit.tuneconfig import TuneConfig

# Train flags: flag -> (dotted config field, type). One table instead of one block per flag.
TRAIN_FLAGS: dict[str, tuple[str, Any]] = {
    "--name": ("name", str),
    "--seed": ("seed", int),
    "--source": ("data.source", str),
    "--label-mode": ("data.label_mode", str),
    "--classes": ("data.classes", lambda text: tuple(filter(None, text.split(",")))),
    "--num-classes": ("data.num_classes", int),
    "--data-path": ("data.path", str),
    "--max-train": ("data.max_train_images", int),
    "--max-test": ("data.max_test_images", int),
    "--architecture": ("model.architecture", str),
    "--input-size": ("model.input_size", int),
    "--weights": ("model.weights", str),
    "--trainable-fraction": ("model.trainable_fraction", float),
    "--dropout": ("model.dropout", float),
    "--optimizer": ("optimizer.name", str),
    "--lr": ("optimizer.learning_rate", float),
    "--schedule": ("optimizer.schedule", str),
    "--epochs": ("training.epochs", int),
    "--batch-size": ("training.batch_size", int),
    "--steps-per-epoch": ("training.steps_per_epoch", int),
    "--label-smoothing": ("training.label_smoothing", float),
    "--time-budget": ("training.time_budget_s", float),  # seconds; epochs are fitted to it
    "--steps-per-execution": ("training.steps_per_execution", int),
    "--rotation": ("augment.rotation", float),
    "--zoom": ("augment.zoom", float),
    "--shift": ("augment.shift", float),
    "--contrast": ("augment.contrast", float),
    "--brightness": ("augment.brightness", float),
}
DATA_FLAGS = {flag: entry for flag, entry in TRAIN_FLAGS.items() if entry[0].startswith("data.")}
TRAIN_SWITCHES: dict[str, str] = {
    "--hflip": "augment.horizontal_flip",
    "--vflip": "augment.vertical_flip",
    "--early-stopping": "callbacks.early_stopping",
    "--reduce-lr": "callbacks.reduce_lr",
    "--mixed-precision": "training.mixed_precision",
    "--xla": "training.jit_compile",
    "--ema": "optimizer.use_ema",
    "--distribute": "training.distribute",
}


def build_parser() -> argparse.ArgumentParser:
    from cifarkit import importcli

    parser = argparse.ArgumentParser(prog="python -m cifarkit", description=__doc__)
    parser.add_argument("--user", metavar="NAME",
                        help="who you are, before the command (default: CIFARKIT_USER, else "
                        "your login name); a teacher when CIFARKIT_TEACHER_PASSCODE is the "
                        "class passcode")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_train(commands)
    _add_evaluate(commands)
    _add_predict(commands)
    importcli.add_parser(commands)  # import MODEL: cifarkit/importcli.py
    _add_runs(commands)
    _add_datasets(commands)
    _add_tune(commands)
    _add_class(commands)
    return parser


def _add_train(commands: Any) -> None:
    train = commands.add_parser("train", help="train a model (foreground, with a progress bar)",
                                description="Train from a JSON config and/or flags. Flags "
                                "override the config. --run-dir runs an existing run directory.")
    _add_launch_flags(train, runs.KIND, "RunConfig JSON file")
    _add_config_flags(train, TRAIN_FLAGS)
    for flag, dotted in TRAIN_SWITCHES.items():
        train.add_argument(flag, dest=dotted, action=argparse.BooleanOptionalAction,
                           default=None, help=f"sets {dotted}")
    train.set_defaults(handler=cmd_train)


def _add_launch_flags(parser: argparse.ArgumentParser, kind: jobs.JobKind,
                      config_help: str) -> None:
    """What train and tune share: a config file, the worker's folder, --resume and --detach."""
    folder_flag = kind.worker[1]
    parser.add_argument("--config", type=Path, help=config_help)
    parser.add_argument(folder_flag, type=Path,
                        help=f"run this existing {kind.noun} directory (the worker's entry)")
    parser.add_argument("--resume", action="store_true",
                        help=f"with {folder_flag}: continue it where it stopped")
    parser.add_argument("--detach", action="store_true",
                        help=f"start the {kind.noun} in the background and return its id")


def _add_config_flags(parser: argparse.ArgumentParser,
                      flags: dict[str, tuple[str, Any]]) -> None:
    """One option per config field (train's table), read back by config_from_args."""
    for flag, (dotted, kind) in flags.items():
        parser.add_argument(flag, dest=dotted, type=kind, default=None, help=f"sets {dotted}")


def _add_evaluate(commands: Any) -> None:
    evaluate = commands.add_parser("evaluate", help="metrics and hardest classes of a run")
    evaluate.add_argument("run", help="run id (its folder name in the runs folder)")
    evaluate.add_argument("--coarse", action="store_true", help="roll up to CIFAR-100 superclasses")
    evaluate.add_argument("--top", type=int, default=5, help="how many hardest classes to list")
    evaluate.set_defaults(handler=cmd_evaluate)


def _add_predict(commands: Any) -> None:
    predict = commands.add_parser("predict", help="top-k classes for image files")
    predict.add_argument("images", nargs="+", type=Path)
    predict.add_argument("--run", action="append", required=True,
                         help="run id; repeat to average an ensemble")
    predict.add_argument("--top", type=int, default=5)
    predict.set_defaults(handler=cmd_predict)


def _add_runs(commands: Any) -> None:
    parser = commands.add_parser("runs", help="list, stop, resume or delete runs")
    _add_job_verbs(parser.add_subparsers(dest="action", required=True), runs.KIND)


def _add_job_verbs(actions: Any, kind: jobs.JobKind) -> None:
    """list, stop, resume and delete: the same verbs for every kind of job (runs, tune)."""
    actions.add_parser("list", help=f"every {kind.noun} with its status").set_defaults(
        handler=cmd_jobs_list, kind=kind)
    for action, handler in (("stop", cmd_job_stop), ("resume", cmd_job_resume),
                            ("delete", cmd_job_delete)):
        sub = actions.add_parser(action, help=f"{action} a {kind.noun}")
        sub.add_argument("job", metavar=kind.noun, help=f"{kind.noun} id (its folder name)")
        sub.set_defaults(handler=handler, kind=kind)


def _add_datasets(commands: Any) -> None:
    parser = commands.add_parser("datasets", help="list, download or export datasets")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="datasets and where they are").set_defaults(
        handler=cmd_datasets_list)
    download = actions.add_parser("download", help="fetch an official CIFAR archive")
    download.add_argument("name", choices=["cifar10", "cifar100"])
    download.set_defaults(handler=cmd_datasets_download)
    export = actions.add_parser(
        "export", help="write a dataset as TFRecord shards and a manifest",
        description="Write the dataset that train's data flags describe (source, labels, "
        "classes, caps) into a new or empty folder as train/test TFRecord shards and "
        "manifest.json. Train on it with: train --source tfrecord --data-path DIR.")
    export.add_argument("--format", choices=["tfrecord"], default="tfrecord",
                        help="file format (tfrecord, the only one)")
    export.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="folder to create (or an empty one); never overwritten")
    export.add_argument("--config", type=Path, help="RunConfig JSON whose data section to use")
    _add_config_flags(export, DATA_FLAGS)
    export.set_defaults(handler=cmd_datasets_export)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig JSON (if any) with every given train flag applied on top, validated."""
    fields = [*(dotted for dotted, _ in TRAIN_FLAGS.values()), *TRAIN_SWITCHES.values()]
    _budget_turns_off_early_stopping(args)
    return _from_args(args, RunConfig, fields)


def _budget_turns_off_early_stopping(args: argparse.Namespace) -> None:
    """--time-budget alone turns early stopping off (a budget ends the run when its schedule
    ends; the two are refused together), unless a flag or the config file asks for it."""
    if getattr(args, "training.time_budget_s", None) is None or \
            getattr(args, "callbacks.early_stopping", None) is not None:
        return
    callbacks = (load_json_object(args.config) if args.config else {}).get("callbacks")
    if not (isinstance(callbacks, dict) and "early_stopping" in callbacks):
        setattr(args, "callbacks.early_stopping", False)


def _from_args(args: argparse.Namespace, config_class: Any, fields: list[str]) -> Any:
    """args.config's JSON (if any) with each of these dotted fields that a flag gave set on
    top, as config_class, validated: one merge for train, export and tune."""
    raw = load_json_object(args.config) if args.config else {}
    for dotted in fields:
        value = getattr(args, dotted, None)
        if value is not None:
            set_dotted(raw, dotted, value)
    return config_class.from_dict(raw).validate()


def _exit_code(status: dict[str, Any]) -> int:
    """0 when a job ended as asked (completed, or stopped by a user), else 1."""
    return 0 if status.get("status") in ("completed", "stopped") else 1


def cmd_train(args: argparse.Namespace) -> int:
    """The worker (--run-dir) or a foreground run: both wait in the device queue first, and
    import TensorFlow only once they hold a slot; --detach leaves the waiting to a worker."""
    if args.run_dir:
        folder = _worker_dir(runs.KIND, args.run_dir)  # checked before TensorFlow loads
        return _in_slot(folder, runs.KIND, lambda: _exit_code(
            _training().train(folder, resume=args.resume, verbose=2)))
    config = config_from_args(args)  # fail fast, before TensorFlow loads
    if args.detach:
        run = runs.launch(config)
        print(f"started run {run.run_id} in {run.path}")
        return 0
    run_dir = runs.create(config)
    print(f"run {run_dir.name} in {run_dir}")
    return _in_slot(run_dir, runs.KIND, lambda: _print_status(
        _training().train(run_dir, verbose=1)))


def _training() -> Any:
    """cifarkit.training, imported on demand: it loads TensorFlow (seconds, a gigabyte)."""
    from cifarkit import training

    return training


def _in_slot(folder: Path, kind: jobs.JobKind, work: Callable[[], int]) -> int:
    """work()'s exit code once the job holds a device slot (cifarkit.queue), printing its place
    in line whenever it changes (the worker's log, a foreground terminal). The slot is held
    until this process ends. A STOP while waiting cancels the job: exit 0, as asked."""
    def show(_position: int) -> None:
        print(queue.wait_text(folder) or "queued", flush=True)

    try:
        with queue.slot(folder, kind.noun, on_wait=show, until_exit=True):
            return work()
    except queue.Cancelled as cancelled:
        print(cancelled, flush=True)
        return 0


def _worker_dir(kind: jobs.JobKind, path: Path) -> Path:
    """The folder a worker was told to run: a job folder by jobs.job_dir's rules (an id, its
    config inside), wherever its root is; kind.error, one line, for anything else."""
    return jobs.job_dir(kind, path, path.parent)


def _print_status(status: dict[str, Any]) -> int:
    """The final status in lines; returns its exit code (_exit_code)."""
    print(f"status: {status.get('status')}")
    if status.get("error"):
        print(f"error: {status['error']}")
    for key in ("test_accuracy", "test_top5_accuracy", "test_macro_f1", "train_seconds",
                "epochs_run", "trainable_params", "model_file_mb", "peak_memory_mb"):
        if key in status:
            print(f"{key}: {status[key]}")
    return _exit_code(status)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cifarkit import evaluation

    run = runs.load(args.run)
    if not run.has_predictions:
        raise runs.RunError(f"run {run.run_id} has no test predictions yet ({run.status})")
    predictions = evaluation.Predictions.load(run.path / "predictions.npz")
    if args.coarse:
        predictions = evaluation.coarse_predictions(predictions)
    for key, value in evaluation.summary_metrics(predictions).items():
        print(f"{key}: {value:.4f}")
    table = evaluation.per_class_table(predictions)
    print(f"\nhardest {args.top} classes:")
    print(table.head(args.top).to_string(index=False))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Top-k for each readable image; each unreadable one is reported on stderr and skipped.

    Exits 2 (like every other bad input) when any image was skipped, though the others are
    still printed: a script sees that something was left out.
    """
    import numpy as np

    from cifarkit import images, predict

    loaded = [runs.load(run) for run in args.run]
    names = [list(run.class_names) for run in map(_run_classes, loaded)]
    if any(n != names[0] for n in names):
        raise runs.RunError("the runs of an ensemble must share the same classes")
    models = [predict.load_model(run.path / "model.keras") for run in loaded]
    inference = [predict.run_inference(run.path) for run in loaded]  # flip TTA, temperature
    size = models[0].input_shape[1]
    readable: list[tuple[Path, np.ndarray]] = []
    for path in args.images:
        try:
            readable.append((path, images.load_input(path, size)))
        except images.ImageError as error:
            print(f"skipped: {error}", file=sys.stderr)
    if readable:
        probs = predict.predict_probs(models, np.stack([image for _, image in readable]),
                                      inference=inference)
        for (path, _), row in zip(readable, probs, strict=True):
            ranked = ", ".join(f"{name} {p:.1%}" for name, p in predict.top_k(row, names[0],
                                                                                 args.top))
            print(f"{path}: {ranked}")
    skipped = len(args.images) - len(readable)
    if skipped:
        print(f"error: {skipped} of {len(args.images)} images could not be read",
              file=sys.stderr)
    return 2 if skipped else 0


def _run_classes(run: runs.Run) -> Any:
    from cifarkit import evaluation

    return evaluation.Predictions.load(run.path / "predictions.npz")


def cmd_jobs_list(args: argparse.Namespace) -> int:
    """One line per job, newest first; a damaged one shows as damaged with the reason, so it
    can be seen and deleted."""
    header, width, row = JOB_LISTS[args.kind.noun]
    print(header)
    found = [*jobs.list_jobs(args.kind), *jobs.list_damaged(args.kind)]
    waiting = queue.wait_texts()  # "queued, 3rd in line, about 4 min", after the columns
    for job in sorted(found, key=lambda job: job.job_id, reverse=True):
        details = job.reason if isinstance(job, jobs.Damaged) else row(job)
        wait = waiting.get(job.path.resolve()) if job.status == "queued" else None
        print(f"{job.job_id:{width}} {job.status:12} {details}" + (f"  {wait}" if wait else ""))
    return 0


def _run_columns(run: runs.Run) -> str:
    accuracy = run.info.get("test_accuracy")
    shown = f"{accuracy:.3f}" if isinstance(accuracy, float) else "-"
    return f"{run.info.get('epochs_run', 0):>6} {shown:>8}"


def _search_columns(search: Search) -> str:
    progress = searches.search_progress(search)
    best = progress["best"] or {}
    trials = f"{progress['finished']}/{progress['planned']}"
    return f"{trials:>8} {_score_text(best.get('score')):>8}"


# `runs list` / `tune list`: kind noun -> (header, id column width, the kind's own columns).
JOB_LISTS = {
    "run": (f"{'run':44} {'status':12} {'epochs':>6} {'accuracy':>8}", 44, _run_columns),
    "search": (f"{'search':36} {'status':12} {'trials':>8} {'best':>8}", 36, _search_columns),
}


def cmd_job_stop(args: argparse.Namespace) -> int:
    job = jobs.stop(args.kind, args.job)
    if job.status == "queued":  # still waiting for a device slot: a stop cancels it
        print(f"cancelled {args.kind.noun} {job.job_id} while it waited in the queue; resume "
              "puts it back in line")
    else:
        print(f"asked {args.kind.noun} {job.job_id} to stop; it stops after the current batch")
    return 0


def cmd_job_resume(args: argparse.Namespace) -> int:
    job = jobs.resume(args.kind, args.job)
    print(f"resumed {args.kind.noun} {job.job_id}")
    return 0


def cmd_job_delete(args: argparse.Namespace) -> int:
    jobs.delete(args.kind, args.job)
    print(f"deleted {args.kind.noun} {args.job}")
    return 0


def cmd_datasets_list(args: argparse.Namespace) -> int:
    from cifarkit import datasets

    for info in datasets.catalog():
        where = info.location or ("not downloaded" if info.key in datasets.ARCHIVE_SOURCES
                                  else "give its path")
        if info.problem:
            where = f"BROKEN: {where} {info.problem}"
        classes = f"{info.num_classes} classes" if info.num_classes else "any classes"
        print(f"{info.key:10} {classes:>12}  {info.title}  [{where}]")
    return 0


def cmd_datasets_download(args: argparse.Namespace) -> int:
    from cifarkit import datasets

    path = datasets.ensure_archive(args.name, progress=_print_progress)
    print(f"\n{args.name} is at {path}")
    return 0


def cmd_datasets_export(args: argparse.Namespace) -> int:
    """Load what the data flags describe and write it as a TFRecord folder."""
    data = config_from_args(args).data  # fail fast, before TensorFlow loads
    from cifarkit import datasets

    out = datasets.check_export_target(args.out)  # refused before anything is loaded
    dataset = datasets.load(data, progress=_print_progress)
    export = datasets.export_tfrecords(dataset, out, data.source, progress=_print_export_progress)
    manifest = export.manifest
    side = manifest.image_size
    print(f"exported {dataset.name}: {manifest.counts['train']:,} train and "
          f"{manifest.counts['test']:,} test images ({side}×{side}) in "
          f"{sum(manifest.shards.values())} shards, {export.size_bytes / 1e6:.1f} MB, to "
          f"{export.folder}")
    print(f"train on it: python -m cifarkit train --source tfrecord --data-path {export.folder}")
    return 0


def _print_export_progress(split: str, done: int, total: int) -> None:
    sys.stdout.write(f"\r{split}: {done:,} of {total:,} images".ljust(60))  # over a download bar
    sys.stdout.write("\n" if done == total else "")
    sys.stdout.flush()


def _print_progress(done: int, total: int | None) -> None:
    if total:
        filled = int(30 * done / total)
        sys.stdout.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done / 2**20:.1f} MB "
                         f"of {total / 2**20:.1f} MB")
    else:
        sys.stdout.write(f"\r{done / 2**20:.1f} MB")
    sys.stdout.flush()


# --- tune: hyperparameter searches (cifarkit.searches) ---------------------------------------


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(value) for value in text.split(",") if value)


def _words(text: str) -> tuple[str, ...]:
    return tuple(filter(None, text.split(",")))


# Tune flags: flag -> (dotted TuneConfig field, type). Data, seed and the best run's epochs come
# from the train flags (under "base."); the values a search varies come from the space flags.
TUNE_BASE_FLAGS = ("--seed", "--source", "--label-mode", "--classes", "--num-classes",
                   "--data-path", "--max-train", "--max-test", "--architecture", "--input-size",
                   "--epochs")
TUNE_FLAGS: dict[str, tuple[str, Any]] = {
    "--name": ("name", str),
    "--algorithm": ("algorithm", str),
    "--max-trials": ("max_trials", int),
    "--epochs-per-trial": ("epochs_per_trial", int),
    "--objective": ("objective", str),
    "--base-filters": ("space.base_filters", _ints),
    "--blocks-min": ("space.blocks_min", int),
    "--blocks-max": ("space.blocks_max", int),
    "--dropout-min": ("space.dropout_min", float),
    "--dropout-max": ("space.dropout_max", float),
    "--lr-min": ("space.learning_rate_min", float),
    "--lr-max": ("space.learning_rate_max", float),
    "--optimizers": ("space.optimizers", _words),
    "--augmentation-min": ("space.augmentation_min", float),
    "--augmentation-max": ("space.augmentation_max", float),
    "--batch-sizes": ("space.batch_sizes", _ints),
    **{flag: (f"base.{dotted}", kind) for flag, (dotted, kind) in TRAIN_FLAGS.items()
       if flag in TUNE_BASE_FLAGS},
}


TUNE_HINTS = {
    "--algorithm": "random | hyperband | bayesian",
    "--objective": "val_accuracy (maximised) | val_loss (minimised)",
    "--max-trials": "hyperband may need fewer",
    "--epochs-per-trial": "hyperband: the most any trial trains",
    "--epochs": "of the run that trains the best trial",
    "--base-filters": "custom_cnn width choices, e.g. 16,32,64",
    "--blocks-min": "custom_cnn depth",
    "--lr-min": "sampled on a log scale",
    "--optimizers": "e.g. adam,sgd",
    "--augmentation-min": "strength of rotation, zoom and shift",
}


def _add_tune(commands: Any) -> None:
    tune = commands.add_parser(
        "tune", help="hyperparameter search with keras-tuner (list, stop, resume, best)",
        description="Search hyperparameters (random, hyperband or bayesian) from a TuneConfig "
        "JSON and/or flags; flags override the config. Lists take commas: --batch-sizes 32,64. "
        "The search runs as its own process; Ctrl-C asks it to stop after the current batch.")
    _add_launch_flags(tune, searches.KIND, "TuneConfig JSON file")
    for flag, (dotted, kind) in TUNE_FLAGS.items():
        hint = f" ({TUNE_HINTS[flag]})" if flag in TUNE_HINTS else ""
        tune.add_argument(flag, dest=dotted, type=kind, default=None, help=f"sets {dotted}{hint}",
                          metavar=flag[2:].upper().replace("-", "_"))
    tune.set_defaults(handler=cmd_tune)
    actions = tune.add_subparsers(dest="action", required=False)
    _add_job_verbs(actions, searches.KIND)
    best = actions.add_parser("best", help="the best trial as a RunConfig (save or train it)")
    best.add_argument("search", help="search id (its folder name)")
    best.add_argument("--save", type=Path, help="write the RunConfig JSON here")
    best.add_argument("--train", action="store_true", help="launch a run with it (background)")
    best.set_defaults(handler=cmd_tune_best)


def tune_config_from_args(args: argparse.Namespace) -> TuneConfig:
    """The TuneConfig JSON (if any) with every given tune flag applied on top, validated."""
    return _from_args(args, TuneConfig, [dotted for dotted, _ in TUNE_FLAGS.values()])


def cmd_tune(args: argparse.Namespace) -> int:
    if args.search_dir:
        folder = _worker_dir(searches.KIND, args.search_dir)

        def work() -> int:
            from cifarkit import tuning  # loads TensorFlow: only once a slot is held

            return _exit_code(tuning.search(folder, resume=args.resume, verbose=2))

        return _in_slot(folder, searches.KIND, work)
    tune = tune_config_from_args(args)  # fail fast, before TensorFlow loads
    search = searches.launch_search(tune)
    print(f"started search {search.search_id} in {search.path}")
    if args.detach:
        return 0
    try:
        search = _follow_search(search)
    except KeyboardInterrupt:
        searches.stop_search(search.path)
        print("\nstopping after the current batch ...")
        search = searches.wait_search(search.path, timeout=3600)
    _print_search_summary(search)
    return _exit_code({"status": search.status})


def _follow_search(search: Search) -> Search:
    """Print its place in the queue while it waits, then each trial as it finishes, until the
    worker process ends."""
    shown, waiting = 0, None
    while True:
        place = queue.wait_text(search.path)
        if place and place != waiting:
            print(place, flush=True)
        waiting = place
        progress = searches.search_progress(search)
        for row in progress["table"].iloc[shown:].to_dict("records"):
            print(f"trial {row['trial']} {row['status']}: {progress['objective']} "
                  f"{_score_text(row['score'])}")
        shown = progress["finished"]
        if progress["status"] not in searches.ACTIVE:
            return searches.load_search(search.path)
        time.sleep(1.0)


def _print_search_summary(search: Search) -> None:
    progress = searches.search_progress(search)
    print(f"status: {progress['status']} ({progress['finished']} of {progress['planned']} "
          "trials finished)")
    if progress["error"]:
        print(f"error: {progress['error']}")
    best = progress["best"]
    if best:
        values = ", ".join(f"{name}={best[name]}" for name in search.config.hyperparameters())
        print(f"best: trial {best['trial']} {progress['objective']} "
              f"{_score_text(best['score'])} ({values})")
        print(f"train it: python -m cifarkit tune best {search.search_id} --train")


def _score_text(value: Any) -> str:
    """4 decimals, or "-" for a trial without a score (failed, NaN, not finished)."""
    return f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else "-"


def cmd_tune_best(args: argparse.Namespace) -> int:
    config = searches.best_run_config(args.search)
    print(config.to_json())
    if args.save:
        config.save(args.save)
        print(f"saved to {args.save}")
    if args.train:
        run = runs.launch(config)
        print(f"started run {run.run_id} in {run.path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors print one clear line and exit 2 instead of a traceback.

    ValueError covers ConfigError, RunError, SearchError, DatasetError and classroom.NotAllowed
    (someone else's job, a class limit); OSError covers files that are missing, unreadable or
    cannot be written (a full disk included). --user names who acts for every verb called.
    """
    args = build_parser().parse_args(argv)
    try:
        with _acting(args.user):
            return args.handler(args)
    except (ValueError, OSError) as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return 2


def _one_line(error: BaseException) -> str:
    """The error's message on one line (some libraries' messages span several)."""
    return " ".join(str(error).split()) or type(error).__name__


def _acting(user: str | None) -> contextlib.AbstractContextManager[Any]:
    """--user as the person every lifecycle verb acts for; without it they ask
    classroom.local_person() (CIFARKIT_USER or the login name) when they need to."""
    return classroom.acting_as(classroom.local_person(user)) if user else contextlib.nullcontext()


# --- class: the teacher's class settings (cifarkit.classroom) --------------------------------


def _or_none(kind: Any) -> Any:
    """A flag's type that also takes "none" (no limit)."""
    def parse(text: str) -> Any:
        return None if text.strip().lower() == "none" else kind(text)
    parse.__name__ = kind.__name__  # argparse names the type in its "invalid ... value" line
    return parse


def _list_or_none(kind: Any) -> Any:
    """Comma-separated values, or "none" (every value allowed)."""
    def parse(text: str) -> tuple[Any, ...]:
        return () if text.strip().lower() == "none" else tuple(
            kind(value.strip()) for value in text.split(",") if value.strip())
    parse.__name__ = kind.__name__
    return parse


# class set flags: flag -> (ClassRules field, type, help). "none" lifts a limit.
CLASS_FLAGS: dict[str, tuple[str, Any, str]] = {
    "--max-epochs": ("max_epochs", _or_none(int),
                     "epochs per run; a search counts trials × epochs per trial"),
    "--max-minutes": ("max_minutes", _or_none(float),
                      "training minutes per job, every attempt together"),
    "--max-jobs": ("max_jobs", _or_none(int),
                   "queued + running jobs per student, runs and searches together"),
    "--architectures": ("architectures", _list_or_none(str),
                        "allowed architectures, e.g. custom_cnn,resnet_fast"),
    "--input-sizes": ("input_sizes", _list_or_none(int), "allowed input sizes, e.g. 32,64"),
}


def _add_class(commands: Any) -> None:
    parser = commands.add_parser(
        "class", help="show or (teacher) set the class limits",
        description="Class limits apply to students' launches and resumes, from the app and "
        "the CLI alike; teachers are exempt. 'none' lifts a limit.")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("show", help="the class settings in force").set_defaults(
        handler=cmd_class_show)
    change = actions.add_parser("set", help="change class settings (teacher only)")
    for flag, (dotted, kind, text) in CLASS_FLAGS.items():
        change.add_argument(flag, dest=dotted, type=kind, default=argparse.SUPPRESS, help=text)
    change.add_argument("--students-see-others", dest="students_see_others",
                        action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                        help="students see each other's jobs, read-only")
    change.set_defaults(handler=cmd_class_set)


def cmd_class_show(args: argparse.Namespace) -> int:
    """Anyone may look: a student should know the limits they launch under."""
    rules, problem = classroom.read_class_rules()
    print(f"class settings ({settings.classroom_file()}):")
    _print_rules(rules)
    if problem:
        print(f"warning: {problem}")
    found = classroom.teachers()
    print(f"teacher passcode: {'configured' if found.passcode else 'not configured'}; "
          f"teacher e-mail addresses: {len(found.emails)}")
    if found.problem:
        print(f"warning: {found.problem}")
    return 0


def cmd_class_set(args: argparse.Namespace) -> int:
    changes = {name: value for name, value in vars(args).items()
               if name in classroom.ClassRules.__dataclass_fields__}
    if not changes:
        raise ValueError("nothing to change: give at least one setting (see --help)")
    rules = classroom.set_class_rules(classroom.local_person(), **changes)
    print(f"saved class settings to {settings.classroom_file()}:")
    _print_rules(rules)
    return 0


def _print_rules(rules: classroom.ClassRules) -> None:
    for name, value in rules.to_dict().items():
        shown = ("all" if value == () else "no limit" if value is None
                 else ", ".join(map(str, value)) if isinstance(value, tuple) else value)
        print(f"  {name:20} {shown}")
