"""The default recipe's ablations: each technique taken out (or a rival put in), one at a time.

Every variant is a real run through the app's worker (runs.launch), on the real CIFAR-10 sample,
for the same number of epochs (about what the 2-minute budget fits on a quiet 2-core CPU), so
accuracy differences are the technique's, not the clock's. Flip test-time augmentation and the
temperature are measured inside every run: eval.json keeps the error before calibration, and the
"no flip TTA" variant scores the same training without the mirror.

Run on demand, on a quiet machine (about 2 minutes a variant on 2 cores):
    CIFARKIT_DATA_DIR=../shared/data python benchmarks/bench_recipe.py
    CIFARKIT_DATA_DIR=../shared/data python benchmarks/bench_recipe.py --variants recipe "no shift"
Prints one Markdown table and writes benchmarks/results/recipe-<host>.json. One seed per variant:
differences under about a point are noise on 1,035 test images.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import benchlib
from cifarkit import runs
from cifarkit.config import DataConfig, RunConfig, recommended_optimizer

EPOCHS = 28  # what the 2-minute budget fits for airbench_cpu on a quiet 2-core CPU

Variant = Callable[[RunConfig], RunConfig]


def _section(section: str, **changes: object) -> Variant:
    """A variant that changes fields of one config section."""
    return lambda config: replace(config, **{section: replace(getattr(config, section), **changes)})


VARIANTS: dict[str, Variant] = {
    "recipe": lambda config: config,
    "no flip TTA": _section("augment", flip_tta=False),
    "no shift": _section("augment", shift=0.0),
    "no label smoothing": _section("training", label_smoothing=0.0),
    "float32 (no bfloat16)": _section("training", mixed_precision=False),
    "EMA of the weights": _section("optimizer", use_ema=True),
    "batch 512 (peak 0.3)": lambda config: _section("optimizer", learning_rate=0.3)(
        _section("training", batch_size=512)(config)),
    "AdamW 2e-3 (decay 0.05)": _section("optimizer", name="adamw", learning_rate=2e-3,
                                        weight_decay=0.05),
    "resnet_fast (Adam)": lambda config: replace(
        config, model=replace(config.model, architecture="resnet_fast"),
        optimizer=recommended_optimizer("resnet_fast")),
}


def run_variant(name: str, config: RunConfig, root: Path) -> dict:
    run = runs.launch(replace(config, name=f"recipe-{name}"[:100]), root)
    finished = runs.wait(run.run_id, timeout=3600, root=root)
    info = finished.info
    if finished.status != "completed":
        raise RuntimeError(f"{name}: {finished.status}: {info.get('error')}")
    return {"variant": name, "epochs": info["epochs_run"],
            "train_seconds": round(info["train_seconds"], 1),
            "test_accuracy": round(info["test_accuracy"], 4),
            "ece": round(info["test_ece"], 4),
            "ece_uncalibrated": round(info["test_ece_uncalibrated"], 4)}


def markdown(rows: list[dict]) -> str:
    base = rows[0]["test_accuracy"]
    cells = [[row["variant"], row["epochs"], row["train_seconds"], f"{row['test_accuracy']:.3f}",
              f"{100 * (row['test_accuracy'] - base):+.1f}", f"{row['ece']:.3f}",
              f"{row['ece_uncalibrated']:.3f}"] for row in rows]
    return benchlib.markdown_table(["variant", "epochs", "training (s)", "test accuracy",
                                    "points vs first", "ECE", "ECE before calibration"], cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    benchlib.require_data("cifar10")
    base = RunConfig(data=DataConfig(source="cifar10"))
    base = replace(base, training=replace(base.training, epochs=args.epochs))
    with tempfile.TemporaryDirectory() as root:
        rows = [run_variant(name, VARIANTS[name](base), Path(root)) for name in args.variants]
    print(markdown(rows))
    benchlib.write_result("recipe", {"epochs": args.epochs, "rows": rows})


if __name__ == "__main__":
    main()
