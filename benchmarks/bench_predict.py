"""Benchmark 5: prediction latency of one image and of a batch, on a loaded model.

The model is a run's best model, loaded by predict.load_model (what the Predict page loads):
a 1-epoch default run trained now into a temporary folder (on at most --train-images images of
the real CIFAR-10 sample: latency does not depend on how well it learnt), or --run-dir for an
existing run. After warm-up calls, each case is timed over many calls; median and 95th
percentile, and the largest difference of its probabilities from the Predict page's.
Side by side, for 1 image and a batch (256), without and with flip TTA:
  - predict.predict_probs, the Predict page's call (model.predict underneath);
  - model.predict_on_batch (Keras' compiled predict step, without predict's data adapter);
  - model(x, training=False), the model called eagerly.
Target (issue 10): one image in under 30 ms on a 2-core CPU once the model is loaded.

Run on demand, on a quiet machine (about 2 minutes on 2 cores, most of it the 1-epoch run):
    CIFARKIT_DATA_DIR=../shared/data python benchmarks/bench_predict.py
    python benchmarks/bench_predict.py --run-dir runs/<run id>
    CIFARKIT_DATA_DIR=../shared/data python benchmarks/bench_predict.py --quick   (smoke run)
Prints one Markdown table and writes benchmarks/results/predict-<host>.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import benchlib

TARGET_MS = 30.0  # issue 10: one image, once the model is loaded
WARMUP_CALLS = 3  # untimed calls per case: tracing, first allocations


def train_run(root: Path, source: str, train_images: int) -> Path:
    """A 1-epoch run of the app's defaults, launched and awaited as the Train page does."""
    from cifarkit import runs
    from cifarkit.config import DataConfig, RunConfig

    defaults = RunConfig()
    config = replace(defaults, name="bench-predict",
                     data=DataConfig(source=source, max_train_images=train_images,
                                     max_test_images=512),
                     training=replace(defaults.training, epochs=1, time_budget_s=None),
                     callbacks=replace(defaults.callbacks, early_stopping=False))
    run = runs.launch(config, root)
    finished = runs.wait(run.run_id, timeout=1800, root=root)
    if finished.status != "completed":
        raise RuntimeError(f"the 1-epoch run ended {finished.status}: "
                           f"{finished.info.get('error')}")
    return finished.path


def callers(model: Any, flip_tta: bool) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Each way of turning a uint8 batch into class probabilities, with or without flip TTA."""
    from cifarkit import predict

    inference = [predict.Inference(flip_tta=flip_tta)]

    def tta(call: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], np.ndarray]:
        def probs(batch: np.ndarray) -> np.ndarray:
            images = batch.astype(np.float32)
            out = np.asarray(call(images))
            return (out + np.asarray(call(images[:, :, ::-1]))) / 2 if flip_tta else out
        return probs

    return {
        "predict.predict_probs (model.predict)":
            lambda batch: predict.predict_probs([model], batch, inference=inference),
        "model.predict_on_batch": tta(model.predict_on_batch),
        "model(x, training=False)": tta(lambda images: model(images, training=False)),
    }


def latencies(call: Callable[[np.ndarray], np.ndarray], batch: np.ndarray,
              calls: int) -> list[float]:
    """Milliseconds of each of `calls` timed calls, after WARMUP_CALLS untimed ones."""
    for _ in range(WARMUP_CALLS):
        call(batch)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call(batch)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, 100 * share))


def measure(model: Any, images: np.ndarray, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for size, calls in ((1, args.calls), (args.batch, args.batch_calls)):
        batch = images[np.arange(size) % len(images)]
        for flip_tta in (False, True):
            paths = callers(model, flip_tta)
            reference = next(iter(paths.values()))(batch)  # the Predict page's probabilities
            for path, call in paths.items():
                times = latencies(call, batch, calls)
                median = statistics.median(times)
                rows.append({"images": size, "flip_tta": flip_tta, "path": path,
                             "calls": calls, "median_ms": round(median, 2),
                             "p95_ms": round(percentile(times, 0.95), 2),
                             "images_per_second": round(size / median * 1e3, 1),
                             "max_difference": float(np.abs(call(batch) - reference).max())})
    return rows


def test_images(run_dir: Path, side: int) -> np.ndarray:
    """The run's kept test images (uint8), else random ones of the model's input side."""
    from cifarkit import rundir
    from cifarkit.evaluation import Predictions

    predictions = run_dir / rundir.PREDICTIONS
    if predictions.is_file():
        kept = Predictions.load(predictions).images
        if kept is not None and len(kept):
            return np.asarray(kept, dtype=np.uint8)
    return np.random.default_rng(0).integers(0, 256, (256, side, side, 3), dtype=np.uint8)


def markdown(rows: list[dict[str, Any]], model_name: str) -> str:
    cells = [[row["images"], "on" if row["flip_tta"] else "off", row["path"],
              f"{row['median_ms']:.1f}", f"{row['p95_ms']:.1f}", f"{row['images_per_second']:,.0f}",
              f"{row['max_difference']:.1e}"] for row in rows]
    table = benchlib.markdown_table(["images", "flip TTA", "call", "median ms", "p95 ms",
                                     "images/s", "max |Δp| vs page"], cells)
    page = [row for row in rows if row["images"] == 1 and row["path"].startswith("predict.")]
    lines = [f"model: {model_name}", "", table, ""]
    for row in page:
        tta = "with" if row["flip_tta"] else "without"
        lines.append(f"one image on the Predict page's path, {tta} flip TTA: "
                     f"**{row['median_ms']:.1f} ms** median (target < {TARGET_MS:g} ms)")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, help="an existing run's folder (default: train "
                        "a 1-epoch default run into a temporary folder)")
    parser.add_argument("--source", default="cifar10", choices=["cifar10", "cifar100", "digits"],
                        help="data of the 1-epoch run (cifar10)")
    parser.add_argument("--train-images", type=int, default=2_000,
                        help="images the 1-epoch run trains on (2000)")
    parser.add_argument("--batch", type=int, default=256, help="images in the batch case (256)")
    parser.add_argument("--calls", type=int, default=100, help="timed calls for one image (100)")
    parser.add_argument("--batch-calls", type=int, default=20,
                        help="timed calls for the batch (20)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 256 training images, 5 calls each, batch 32")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_images, args.calls, args.batch_calls, args.batch = 256, 5, 3, 32
    for name in ("train_images", "batch", "calls", "batch_calls"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.run_dir is not None and not args.run_dir.is_dir():
        parser.error(f"--run-dir: no such folder: {args.run_dir}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from cifarkit import predict, rundir

    with tempfile.TemporaryDirectory() as root:
        if args.run_dir is None and args.source != "digits":
            benchlib.require_data(args.source)
        run_dir = args.run_dir or train_run(Path(root), args.source, args.train_images)
        model = predict.load_model(run_dir / rundir.BEST_MODEL)
        images = test_images(run_dir, model.input_shape[1])
        rows = measure(model, images, args)
    print(markdown(rows, model.name))
    benchlib.write_result("predict-quick" if args.quick else "predict",
                          {"model": model.name, "run_dir": str(args.run_dir or "temporary"),
                           "input_shape": list(model.input_shape[1:]), "rows": rows,
                           "target_ms": TARGET_MS})


if __name__ == "__main__":
    main()
