"""Benchmark 4: head-only transfer with and without feature caching, side by side in one run.

The same frozen backbone (MobileNetV2 at 96 px unless told otherwise), the same starting weights,
the same split and epochs, trained twice:
  - the ordinary way: every batch runs resize, flip, preprocess and the frozen backbone;
  - with cifarkit.headonly: the backbone's pooled features of each image and its mirror are
    computed once, then only the head trains on them.
Reported: steady-state seconds per epoch (median over the epochs after the first, which also
traces the step; validation included in both), the cached path's one-off extraction (from the
call to its first epoch), test accuracy of each (plain, no flip TTA) and the per-epoch ratio.

ImageNet weights are used when Keras finds them in ~/.keras/models (no download is tried from
here without internet: the build fails at once); otherwise random weights, with the backbone's
BatchNorm statistics set from one batch of training images, since a randomly initialised
MobileNetV2 in inference mode shrinks every image to features of about 1e-13, on which no head
learns. The table says which. Random features still show the speed ratio, and the two accuracies
compare the two paths.

Run on demand, on a quiet machine (the default takes a few minutes on 2 cores):
    CIFARKIT_DATA_DIR=../shared/data python benchmarks/bench_headonly.py
A quick smoke run:
    CIFARKIT_DATA_DIR=../shared/data python benchmarks/bench_headonly.py --images 200 --epochs 2
Prints one Markdown table and writes benchmarks/results/headonly-<host>.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import benchlib
from cifarkit import settings
from cifarkit.config import (
    AugmentConfig,
    CallbacksConfig,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainingConfig,
)

SPEED_TARGET = 5.0  # issue 10: at least 5x faster per epoch with caching
ACCURACY_TOLERANCE = 0.01  # issue 10: accuracy within a point
CALIBRATION_IMAGES = 256  # random weights: training images the BatchNorm statistics come from
ARCHIVE = "cifar-10-python.tar.gz"


def bench_config(args: argparse.Namespace, weights: str) -> RunConfig:
    """Head only, flips on (the default augmentation), early stopping and LR cuts off, so both
    paths train the same epochs on the same schedule."""
    return RunConfig(
        name="bench-headonly",
        data=DataConfig(source="cifar10", max_train_images=args.images,
                        max_test_images=args.test_images),
        model=ModelConfig(architecture=args.architecture, input_size=args.input_size,
                          weights=weights, trainable_fraction=0.0),
        augment=AugmentConfig(horizontal_flip=True, shift=0.0),  # flips cache as two views
        training=TrainingConfig(epochs=args.epochs, batch_size=args.batch_size),
        callbacks=CallbacksConfig(early_stopping=False, reduce_lr=False),
    )


def epoch_clock() -> Any:
    """A callback timing every epoch and noting when training began (for the cached path, the
    end of its one-off extraction). Keras is imported here, so --help answers at once."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.train_began = 0.0
            self.epochs: list[float] = []
            self.val_accuracy: list[float] = []
            self._start = 0.0

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.train_began = time.perf_counter()

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.epochs.append(time.perf_counter() - self._start)
            self.val_accuracy.append(float((logs or {}).get("val_accuracy", float("nan"))))

    return EpochClock()


def build(config: RunConfig, data: Any, initial: list | None) -> Any:
    """The run's model, compiled as a run compiles it; `initial` weights make both paths start
    from the very same model."""
    from cifarkit import training
    from cifarkit.models.builder import build_model

    training.configure_keras(config)
    model = build_model(config, len(data.dataset.class_names), data.x_train.shape[1])
    if initial is not None:
        model.set_weights(initial)
    elif config.model.weights == "none":
        calibrate_batch_norm(model, data.x_train[:CALIBRATION_IMAGES])
    training.compile_model(model, config, len(data.dataset.class_names), data.steps_per_epoch)
    return model


def calibrate_batch_norm(model: Any, images: Any) -> None:
    """Random weights only: the frozen backbone's BatchNorm statistics from one batch of images
    (momentum 0), so its features are of order 1 as a pretrained backbone's are."""
    import keras

    resize = [layer for layer in model.layers if layer.name == "resize"]
    x = images.astype("float32")
    for layer in resize:
        x = layer(x)
    backbone = model.get_layer("backbone")
    norms = [layer for layer in backbone.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.trainable, layer.momentum = True, 0.0
    backbone(model.get_layer("preprocess")(x), training=True)
    for layer in norms:
        layer.trainable, layer.momentum = False, 0.99


def run_path(cached: bool, config: RunConfig, data: Any, initial: list | None,
             verbose: int) -> tuple[dict, list | None]:
    """Train one path; its row and the starting weights (for the other path)."""
    import numpy as np

    from cifarkit import headonly

    model = build(config, data, initial)
    start_weights = model.get_weights() if initial is None else initial
    clock = epoch_clock()
    start = time.perf_counter()
    if cached:
        refusal = headonly.augmentation_refusal(config.augment)
        if refusal:  # fit_head would quietly train the ordinary way: nothing cached to time
            raise SystemExit(f"cannot benchmark caching: {refusal}")
        headonly.fit_head(model, config, data, [clock], epochs=config.training.epochs,
                          initial_epoch=0, verbose=verbose)
    else:
        model.fit(data.train, validation_data=data.validation, epochs=config.training.epochs,
                  steps_per_epoch=data.steps_per_epoch, shuffle=False,
                  callbacks=[clock], verbose=verbose)
    steady = clock.epochs[1:] or clock.epochs
    probs = model.predict(data.x_test.astype("float32"), batch_size=256, verbose=0)
    return {
        "path": "cached features" if cached else "ordinary (backbone every epoch)",
        "one_off_seconds": round(clock.train_began - start, 2) if cached else None,
        "first_epoch_seconds": round(clock.epochs[0], 2),
        "seconds_per_epoch": round(statistics.median(steady), 3),
        "epochs": len(clock.epochs),
        "val_accuracy": round(clock.val_accuracy[-1], 4),
        "test_accuracy": round(float(np.mean(probs.argmax(axis=1) == data.y_test)), 4),
    }, start_weights


def weights_choice(requested: str, config: RunConfig) -> str:
    """'imagenet' when asked for or (auto) when Keras has the file already; else 'none'."""
    if requested != "auto":
        return requested
    from cifarkit.models.builder import WeightsUnavailable, build_model

    try:  # Keras looks in ~/.keras/models first; offline, a missing file fails at once
        build_model(replace(config, model=replace(config.model, weights="imagenet")), 10, 32)
    except WeightsUnavailable:
        return "none"
    return "imagenet"


def markdown(rows: list[dict], summary: dict) -> str:
    lines = ["| path | one-off extraction (s) | 1st epoch (s) | s / epoch (steady) | epochs | "
             "val acc | test acc |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        one_off = "–" if row["one_off_seconds"] is None else f"{row['one_off_seconds']:.1f}"
        lines.append(f"| {row['path']} | {one_off} | {row['first_epoch_seconds']:.2f} | "
                     f"{row['seconds_per_epoch']:.3f} | {row['epochs']} | "
                     f"{row['val_accuracy']:.3f} | {row['test_accuracy']:.3f} |")
    lines.append(
        f"\n{summary['architecture']} at {summary['input_size']} px, weights "
        f"{summary['weights_note']}; {summary['train_images']:,} training / "
        f"{summary['val_images']:,} validation / {summary['test_images']:,} test images of the "
        f"CIFAR-10 sample, batch {summary['batch_size']}, {summary['cpus']} CPUs.\n"
        f"Per epoch, cached is **{summary['speedup']:.1f}× faster** (target ≥ {SPEED_TARGET:g}×); "
        f"test accuracy differs by **{summary['accuracy_gap'] * 100:.1f} points** "
        f"(target ≤ {ACCURACY_TOLERANCE * 100:g}); {_break_even(summary['break_even_epochs'])}.")
    return "\n".join(lines)


def _break_even(epochs: float | None) -> str:
    if epochs is None:
        return "extraction never pays for itself here"
    return f"extraction pays for itself after {epochs:.1f} epochs"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2500,
                        help="training images taken from the sample, validation carved from "
                             "them (default 2500; 0 = all 4,135)")
    parser.add_argument("--test-images", type=int, default=1035,
                        help="test images scored (default 1035, the whole sample)")
    parser.add_argument("--epochs", type=int, default=4,
                        help="epochs of each path (default 4; at least 2: the first is traced)")
    parser.add_argument("--architecture", default="MobileNetV2")
    parser.add_argument("--input-size", type=int, default=96, help="pixels (default 96)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--weights", default="auto", choices=["auto", "imagenet", "none"],
                        help="auto: ImageNet if Keras already has the file, else random")
    parser.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs: at least 2 (the first epoch also traces the training step)")
    args.images = args.images or None
    return args


def main() -> None:
    args = parse_args()
    folder = settings.data_dir()
    if folder is None or not (folder / ARCHIVE).is_file():
        print(f"skipped: the CIFAR-10 sample ({ARCHIVE}) is not in CIFARKIT_DATA_DIR; "
              "set it to the folder holding it (../shared/data here)")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from cifarkit import training

    config = bench_config(args, "none")
    weights = weights_choice(args.weights, config)
    config = bench_config(args, weights)
    data = training.prepare_data(config)
    ordinary, initial = run_path(False, config, data, None, args.verbose)
    cached, _ = run_path(True, config, data, initial, args.verbose)
    rows = [ordinary, cached]
    saved = ordinary["seconds_per_epoch"] - cached["seconds_per_epoch"]
    summary = {
        "architecture": args.architecture, "input_size": args.input_size,
        "weights": weights,
        "weights_note": "ImageNet" if weights == "imagenet" else
        f"none (random; BatchNorm statistics from {CALIBRATION_IMAGES} training images)",
        "train_images": len(data.x_train), "val_images": len(data.x_val),
        "test_images": len(data.x_test), "batch_size": args.batch_size,
        "cpus": os.cpu_count(),
        "speedup": round(ordinary["seconds_per_epoch"] / cached["seconds_per_epoch"], 2),
        "accuracy_gap": round(abs(ordinary["test_accuracy"] - cached["test_accuracy"]), 4),
        "break_even_epochs": round(cached["one_off_seconds"] / saved, 2) if saved > 0 else None,
        "speed_target": SPEED_TARGET, "accuracy_tolerance": ACCURACY_TOLERANCE,
    }
    print(markdown(rows, summary))
    benchlib.write_result("headonly", {"summary": summary, "rows": rows})


if __name__ == "__main__":
    main()
