"""Benchmark 2: augmented images per second of cifarkit's input pipeline, and what it costs a step.

Side by side, in one run, on the same in-memory uint8 images (synthetic: speed does not depend
on what the pixels show, so no dataset is needed) with the default recipe's augmentation,
random horizontal flips and a random shift of up to ±2 pixels filled by reflection:
  - the seeds' per-image loop: Keras' legacy ImageDataGenerator(horizontal_flip=True,
    width_shift_range=2, height_shift_range=2, fill_mode="reflect").flow(x, y, batch_size);
  - cifarkit: pipeline.make_dataset batches through the model's augmentation layers
    (augment.augmentation_layers: one RandomShift layer with the flip folded in);
  - for scale: make_dataset alone, and make_dataset through Keras' RandomFlip +
    RandomTranslation (what augmentation_layers built before RandomShift);
  - training images per second of the default model (RunConfig() defaults, built and compiled
    as a run does) with and without that augmentation: the step's slowdown.

Run on demand, on a quiet machine:
    python benchmarks/bench_pipeline.py            (about a minute on 2 cores)
    python benchmarks/bench_pipeline.py --quick    (smoke run, seconds)
Prints one Markdown table and writes benchmarks/results/pipeline-<host>.json (a --quick run
writes pipeline-quick-<host>.json, so a smoke run never replaces a measurement).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import benchlib

SHIFT_PIXELS = 2  # the default recipe's translation, ± pixels at 32 x 32
SIDE = 32  # CIFAR image side (pixels)
NUM_CLASSES = 10
TARGET = 3.0  # issue 10: at least 3x the per-image loop's images per second


def synthetic(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 CIFAR-shaped images and labels."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (count, SIDE, SIDE, 3), dtype=np.uint8),
            rng.integers(0, NUM_CLASSES, count))


def median_rate(measure: Callable[[], float], repeats: int) -> float:
    """Median images/s over `repeats` measurements (others' work on the CPUs makes outliers)."""
    return statistics.median(measure() for _ in range(repeats))


def loop_rate(x: np.ndarray, y: np.ndarray, batch: int, batches: int) -> float:
    """Images/s of the seeds' ImageDataGenerator: a scipy affine transform per image."""
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    generator = ImageDataGenerator(horizontal_flip=True, width_shift_range=SHIFT_PIXELS,
                                   height_shift_range=SHIFT_PIXELS, fill_mode="reflect")
    flow = generator.flow(x, y, batch_size=batch, seed=0)
    next(flow)  # warm-up
    start = time.perf_counter()
    images = sum(len(next(flow)[0]) for _ in range(batches))
    return images / (time.perf_counter() - start)


def pipeline_rate(x: np.ndarray, y: np.ndarray, batch: int, batches: int,
                  layers: Any | None) -> float:
    """Images/s of make_dataset's batches, each through `layers` in training mode (None: none)."""
    import tensorflow as tf

    from cifarkit import pipeline

    dataset = pipeline.make_dataset(x, y, NUM_CLASSES, batch, training=True, repeat=True)
    step = tf.function(lambda images: layers(images, training=True)) if layers else None
    batches_iter = iter(dataset)
    for _ in range(2):  # warm-up: tf.data threads start, the function is traced
        images, _ = next(batches_iter)
        if step:
            step(images)
    start = time.perf_counter()
    count = 0
    for _ in range(batches):
        images, _ = next(batches_iter)
        out = step(images) if step else images
        count += int(out.shape[0])
    np.asarray(out[:1])  # the last result exists
    return count / (time.perf_counter() - start)


def keras_layers() -> Any:
    """RandomFlip + RandomTranslation for ±2 px, reflect-filled: augmentation before RandomShift."""
    import keras

    factor = SHIFT_PIXELS / SIDE
    return keras.Sequential([keras.layers.RandomFlip("horizontal", seed=0),
                             keras.layers.RandomTranslation(factor, factor, seed=3,
                                                            fill_mode="reflect")])


def training_rate(x: np.ndarray, y: np.ndarray, augmented: bool, steps: int,
                  warmup: int) -> dict[str, Any]:
    """Training images/s of the default model, with the default recipe's augmentation or none."""
    import keras

    from cifarkit import pipeline, training
    from cifarkit.config import AugmentConfig, RunConfig
    from cifarkit.models.builder import build_model

    defaults = RunConfig()
    augment = AugmentConfig(horizontal_flip=augmented, shift=SHIFT_PIXELS / SIDE if augmented
                            else 0.0)
    config = replace(defaults, augment=augment)
    training.configure_keras(config)
    batch = config.training.batch_size
    model = build_model(config, NUM_CLASSES, SIDE)
    training.compile_model(model, config, NUM_CLASSES, steps_per_epoch=warmup + steps)
    dataset = pipeline.make_dataset(x, y, NUM_CLASSES, batch, training=True, repeat=True)
    model.fit(dataset, epochs=1, steps_per_epoch=warmup, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    seconds = time.perf_counter() - start
    keras.backend.clear_session()
    return {"model": config.model.architecture, "batch_size": batch,
            "images_per_second": steps * batch / seconds}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from cifarkit.augment import augmentation_layers
    from cifarkit.config import AugmentConfig

    x, y = synthetic(args.images)
    ours = augmentation_layers(AugmentConfig(horizontal_flip=True, shift=SHIFT_PIXELS / SIDE))
    old = keras_layers()
    rates = {
        "per-image loop (ImageDataGenerator.flow)":
            median_rate(lambda: loop_rate(x, y, args.batch, args.batches), args.repeats),
        "make_dataset only (no augmentation)":
            median_rate(lambda: pipeline_rate(x, y, args.batch, args.batches, None),
                        args.repeats),
        "make_dataset + RandomFlip + RandomTranslation (Keras)":
            median_rate(lambda: pipeline_rate(x, y, args.batch, args.batches, old),
                        args.repeats),
        "make_dataset + augmentation_layers (cifarkit RandomShift)":
            median_rate(lambda: pipeline_rate(x, y, args.batch, args.batches, ours),
                        args.repeats),
    }
    loop = rates["per-image loop (ImageDataGenerator.flow)"]
    rows = [{"what": what, "images_per_second": round(rate), "vs_loop": round(rate / loop, 2)}
            for what, rate in rates.items()]
    result: dict[str, Any] = {
        "images": args.images, "batch_size": args.batch, "batches": args.batches,
        "repeats": args.repeats, "quick": args.quick, "shift_pixels": SHIFT_PIXELS, "rows": rows,
        "speedup": round(rates["make_dataset + augmentation_layers (cifarkit RandomShift)"]
                         / loop, 2), "target": TARGET}
    if args.train_steps:
        plain = training_rate(x, y, False, args.train_steps, args.warmup)
        augmented = training_rate(x, y, True, args.train_steps, args.warmup)
        result["training"] = {
            "model": plain["model"], "batch_size": plain["batch_size"],
            "steps": args.train_steps,
            "images_per_second_without": round(plain["images_per_second"]),
            "images_per_second_with": round(augmented["images_per_second"]),
            "slowdown_percent": round(100 * (1 - augmented["images_per_second"]
                                             / plain["images_per_second"]), 1)}
    return result


def markdown(result: dict[str, Any]) -> str:
    rows = [[row["what"], f"{row['images_per_second']:,}", f"{row['vs_loop']:.2f}×"]
            for row in result["rows"]]
    training = result.get("training")
    if training:
        rows.append([f"training {training['model']}, batch {training['batch_size']}, "
                     "no augmentation", f"{training['images_per_second_without']:,}", ""])
        rows.append([f"training {training['model']}, batch {training['batch_size']}, "
                     f"flip + ±{SHIFT_PIXELS} px", f"{training['images_per_second_with']:,}",
                     f"step slowdown {training['slowdown_percent']:.1f} %"])
    table = benchlib.markdown_table(["pipeline", "images/s", "vs loop"], rows)
    return (f"{table}\n\ncifarkit's pipeline against the per-image loop: "
            f"**{result['speedup']:.2f}×** (target ≥ {TARGET:g}×)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5_000, help="images in memory (5000)")
    parser.add_argument("--batch", type=int, default=256, help="batch size (256)")
    parser.add_argument("--batches", type=int, default=20, help="timed batches (20)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="measurements per pipeline, median kept (3)")
    parser.add_argument("--train-steps", type=int, default=15,
                        help="timed training steps per model, 0 = skip training (15)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps (3)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 512 images, 3 batches, 1 repeat, 2 training steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.batches, args.repeats, args.train_steps, args.warmup = 512, 3, 1, 2, 1
    for name in ("images", "batch", "batches", "repeats", "warmup"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.train_steps < 0:
        parser.error("--train-steps must be 0 or more")
    return args


def main(argv: list[str] | None = None) -> None:
    result = measure(parse_args(argv))
    print(markdown(result))
    benchlib.write_result("pipeline-quick" if result["quick"] else "pipeline", result)


if __name__ == "__main__":
    main()
