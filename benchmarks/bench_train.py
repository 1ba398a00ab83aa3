"""Accuracy, training time, throughput and memory of the scratch models on a real CIFAR sample.

Run on demand (not part of the tests):
    CIFARKIT_DATA_DIR=../shared/data python benchmarks/bench_train.py --epochs 10
Each model trains in its own worker process (as the app does), so peak memory is per model.
Prints a Markdown table for the README and writes benchmarks/results-<host>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cifarkit import runs
from cifarkit.config import (
    CallbacksConfig,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainingConfig,
    recommended_optimizer,
)

MODELS = ("airbench_cpu", "resnet_fast", "simple_cnn", "conv4_bn", "vgg_style")


def bench_config(architecture: str, source: str, epochs: int) -> RunConfig:
    """The app's defaults and each net's recommended optimizer, early stopping off so every
    model gets the same epochs."""
    return RunConfig(name=f"bench-{architecture}", data=DataConfig(source=source),
                     model=ModelConfig(architecture=architecture),
                     optimizer=recommended_optimizer(architecture),
                     training=TrainingConfig(epochs=epochs),
                     callbacks=CallbacksConfig(early_stopping=False))


def run_one(config: RunConfig, root: Path) -> dict:
    run = runs.launch(config, root)
    finished = runs.wait(run.run_id, timeout=3600, root=root)
    info = finished.info
    if finished.status != "completed":
        raise RuntimeError(f"{config.name}: {finished.status} {info.get('error')}")
    images = info["train_images"] * (1 - config.data.validation_split) * info["epochs_run"]
    return {
        "model": config.model.architecture, "epochs": info["epochs_run"],
        "test_accuracy": round(info["test_accuracy"], 4),
        "test_top5": round(info["test_top5_accuracy"], 4),
        "train_seconds": round(info["train_seconds"], 1),
        "images_per_second": round(images / info["train_seconds"]),
        "trainable_params": info["trainable_params"],
        "model_file_mb": info["model_file_mb"], "peak_memory_mb": info["peak_memory_mb"],
    }


def markdown(rows: list[dict]) -> str:
    header = ("| model | epochs | test acc | top-5 | train time (s) | images/s | "
              "params | file MB | peak RAM MB |")
    lines = [header, "|" + "---|" * 9]
    for row in rows:
        lines.append(f"| {row['model']} | {row['epochs']} | {row['test_accuracy']:.3f} | "
                     f"{row['test_top5']:.3f} | {row['train_seconds']} | "
                     f"{row['images_per_second']} | {row['trainable_params']:,} | "
                     f"{row['model_file_mb']:.2f} | {row['peak_memory_mb']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--source", default="cifar10", choices=["cifar10", "cifar100", "digits"])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        rows = [run_one(bench_config(name, args.source, args.epochs), Path(root))
                for name in args.models]
    print(markdown(rows))
    out = Path(__file__).with_name(f"results-{platform.node() or 'host'}.json")
    out.write_text(json.dumps({"source": args.source, "cpus": os.cpu_count(), "rows": rows},
                              indent=2))


if __name__ == "__main__":
    main()
