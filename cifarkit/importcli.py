"""`python -m cifarkit import MODEL`: a .keras or .h5 model from elsewhere becomes a run.

Its own module so cli.py only registers the verb; TensorFlow loads once the flags are checked.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cifarkit import conventions
from cifarkit.config import DataConfig, RunConfig

# Where the test images come from: flag -> DataConfig field (the rest keep their defaults).
DATA_FLAGS: dict[str, tuple[str, Any]] = {
    "--source": ("source", str),
    "--label-mode": ("label_mode", str),
    "--data-path": ("path", str),
}


def add_parser(commands: Any) -> None:
    """The import verb and its flags, on cli.build_parser's subcommands."""
    parser = commands.add_parser(
        "import", help="import a .keras or .h5 model file as a run",
        description="Score a model trained elsewhere on a test set and add it as a completed "
        "run. Its input convention (the pixel scale it was trained on) is tested on "
        f"{conventions.SAMPLE} test images under each candidate and the clearly best is used "
        "unless --convention says otherwise.")
    parser.add_argument("model", type=Path, help=".keras or .h5 model file")
    names = parser.add_mutually_exclusive_group()
    names.add_argument("--labels", type=Path, help="labels.txt: one class name per line, "
                       "in output order (Teachable Machine's '0 cat' lines too)")
    names.add_argument("--names", help="class names in output order, separated by commas")
    for flag, (field, kind) in DATA_FLAGS.items():
        parser.add_argument(flag, dest=field, type=kind, help=f"test set: data.{field}")
    parser.add_argument("--max-test", type=int, help="score at most this many test images")
    parser.add_argument("--convention", choices=conventions.CHOICES, default=conventions.AUTO,
                        help="pixel scale the model expects (default: auto, the clearly best; "
                        "write --convention=-1-1 for −1…1)")
    parser.add_argument("--mean", help="with --convention mean_std: R,G,B mean in 0…1 units")
    parser.add_argument("--std", help="with --convention mean_std: R,G,B std in 0…1 units")
    parser.add_argument("--name", default="", help="run name (default: the model's own)")
    parser.set_defaults(handler=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    """Check every flag first, then load, compare conventions, score and save the run."""
    class_names = _class_names(args)
    data = _data_config(args)
    convention = _convention(args)
    from cifarkit import modelfiles

    run = modelfiles.import_model(args.model, class_names, args.name, data_config=data,
                                  convention=convention, max_images=args.max_test,
                                  progress=_show_progress)
    print(file=sys.stderr)
    _print_result(run.info)
    print(f"imported as run {run.run_id} in {run.path}")
    return 0


def _class_names(args: argparse.Namespace) -> list[str] | None:
    from cifarkit.labels import parse_names

    if args.labels is not None:
        from cifarkit.modelfiles import read_labels

        return read_labels(args.labels.read_text(encoding="utf-8"))
    return parse_names(args.names) if args.names is not None else None


def _data_config(args: argparse.Namespace) -> DataConfig | None:
    """The test set the flags name, validated like a run's; None lets the names decide."""
    fields = {field: getattr(args, field) for field, _ in DATA_FLAGS.values()
              if getattr(args, field) is not None}
    if not fields:
        return None
    return RunConfig.from_dict({"data": fields}).validate().data


def _convention(args: argparse.Namespace) -> str | conventions.Convention:
    if args.convention != conventions.MEAN_STD:
        if args.mean or args.std:
            raise ValueError("--mean and --std go with --convention mean_std")
        return args.convention
    return conventions.get(conventions.MEAN_STD,
                           conventions.parse_numbers(args.mean or ""),
                           conventions.parse_numbers(args.std or ""))


def _show_progress(done: int, total: int) -> None:
    print(f"\rscoring test images: {done:,}/{total:,}", end="", file=sys.stderr, flush=True)


def _print_result(info: dict[str, Any]) -> None:
    comparison = info.get("convention_comparison", {})
    chosen = info.get("input_convention", {})
    print(f"input conventions on {comparison.get('images')} test images: "
          f"{comparison.get('text')}")
    verdict = "clearly best" if comparison.get("clear") else "no clear winner"
    print(f"input convention: {chosen.get('label')} ({verdict}; best scored: "
          f"{conventions.SHORT.get(comparison.get('best'), comparison.get('best'))})")
    for key in ("test_accuracy", "test_top5_accuracy", "test_images"):
        if key in info:
            print(f"{key}: {info[key]}")
