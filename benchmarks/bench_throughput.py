"""Benchmark 3: training images per second of each model, and the share of peak FLOP/s reached.

Each scratch model of the catalog (resnet50_style only with --all) and a few transfer models
(MobileNetV2, EfficientNetB0, ResNet50, random weights) at their default input size, built and
compiled by cifarkit (models.builder.build_model, training.configure_keras and compile_model:
what a run trains), fed synthetic uint8 32x32 images from memory through pipeline.make_dataset
(the model resizes them, as it does CIFAR's). Variants, one change at a time from the default:
  base    float32, no XLA, steps_per_execution 1
  mixed   training.mixed_precision (bfloat16 on a CPU that has it, float16 on a GPU)
  xla     training.jit_compile
  spe     training.steps_per_execution = --spe (16)
  all     mixed + xla + spe together (the accelerator path; default on a GPU only)
Steady state: a few warm-up steps (tracing, XLA compiling), then steps timed until --seconds pass.
FLOPs per image are counted from the model's conv and dense layers (forward multiply-adds x 2);
a training step is taken as 3x the forward pass (forward, and backward through activations and
weights). On a GPU the share of its peak is shown: --peak-tflops, else a table of known GPUs.

Run on demand, on a quiet machine (about 6 minutes on 2 cores):
    python benchmarks/bench_throughput.py
    python benchmarks/bench_throughput.py --quick      (smoke run)
    python benchmarks/bench_throughput.py --models resnet_fast --variants base spe --spe 4
Prints one Markdown table and writes benchmarks/results/throughput-<host>.json.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import benchlib

TRANSFER_MODELS = ("MobileNetV2", "EfficientNetB0", "ResNet50")
SLOW_SCRATCH = ("resnet50_style",)  # minutes per measurement on a CPU: only with --all
VARIANTS = ("base", "mixed", "xla", "spe", "all")
TRAINING_FLOPS_PER_FORWARD = 3  # forward + backward (activations and weights)
SIDE = 32  # synthetic images' side (pixels), as CIFAR's
NUM_CLASSES = 10
DATA_IMAGES = 1024  # synthetic images in memory, repeated


def default_batch() -> int:
    """RunConfig's batch size: what a run trains with."""
    from cifarkit.config import RunConfig

    return RunConfig().training.batch_size


# Dense (no sparsity) peak TFLOP/s from the vendors' data sheets: (16-bit tensor, float32).
# float32 is TF32 on the tensor cores where the GPU has them (TensorFlow's and JAX's default).
# Checked in order: a more specific name comes before the name it contains.
KNOWN_GPUS: tuple[tuple[str, float, float], ...] = (
    ("H200", 989.0, 494.0),
    ("H100 PCIe", 756.0, 378.0),
    ("H100", 989.0, 494.0),
    ("A100", 312.0, 156.0),
    ("L40S", 362.0, 183.0),
    ("L4", 121.0, 60.0),
    ("V100", 125.0, 15.7),
    ("T4", 65.0, 8.1),
)


def peak_tflops(gpu_name: str, mixed: bool) -> float | None:
    """The data-sheet peak of a GPU named like `gpu_name` (16-bit if mixed), None if unknown."""
    for name, half, single in KNOWN_GPUS:
        if name.lower() in gpu_name.lower():
            return half if mixed else single
    return None


def forward_flops(model: Any) -> int:
    """FLOPs of one image's forward pass through the conv and dense layers (2 per multiply-add).

    Nested models (the backbone, the augmentation) are walked; normalisation, activations and
    pooling are left out (a few % at most). A layer called twice is counted once.
    """
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += forward_flops(layer)
            continue
        total += _layer_flops(layer)
    return total


def _layer_flops(layer: Any) -> int:
    import keras

    if not isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D |
                      keras.layers.SeparableConv2D | keras.layers.Dense):
        return 0
    inputs, outputs = layer.input.shape, layer.output.shape
    positions = math.prod(outputs[1:-1])  # output pixels (1 for a dense layer on vectors)
    if isinstance(layer, keras.layers.Dense):
        return 2 * positions * inputs[-1] * outputs[-1]
    window = math.prod(layer.kernel_size)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return 2 * positions * window * outputs[-1]
    if isinstance(layer, keras.layers.SeparableConv2D):
        depth = inputs[-1] * layer.depth_multiplier
        return 2 * positions * (window * depth + depth * outputs[-1])
    return 2 * positions * window * inputs[-1] // layer.groups * outputs[-1]


def gpu_names() -> list[str]:
    """The visible GPUs' names, from the backend that will train (JAX sees its own devices)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return [device.device_kind for device in jax.devices() if device.platform == "gpu"]
    from cifarkit.system import device_summary

    return list(device_summary()["gpus"])


def variant_config(architecture: str, variant: str, spe: int, batch: int | None) -> Any:
    """The app's defaults for `architecture` at its default input size, changed by `variant`."""
    from cifarkit.config import ModelConfig, RunConfig
    from cifarkit.models.catalog import model_info

    info = model_info(architecture)
    defaults = RunConfig()
    model = ModelConfig(architecture=architecture, input_size=info.default_input,
                        weights="none")
    train = replace(defaults.training, batch_size=batch or defaults.training.batch_size,
                    mixed_precision=variant in ("mixed", "all"),
                    jit_compile=variant in ("xla", "all"),
                    steps_per_execution=spe if variant in ("spe", "all") else 1)
    return replace(defaults, name=f"throughput-{architecture}-{variant}", model=model,
                   training=train)


class _Clock:
    """Times each call into the compiled step (one execution: steps_per_execution batches)."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def callback(self, seconds: float, warmup: int) -> Any:
        import keras

        clock = self

        class StopAfter(keras.callbacks.Callback):
            def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
                if logs:  # reading a value waits for an asynchronous device to finish
                    np.asarray(next(iter(logs.values())))
                clock.ends.append(time.perf_counter())
                timed = clock.ends[warmup - 1:]
                if len(timed) >= 2 and timed[-1] - timed[0] >= seconds:
                    self.model.stop_training = True

        return StopAfter()


def steps_per_execution(wanted: int, base_images_per_second: float | None, batch: int,
                        seconds: float) -> int:
    """`wanted`, or fewer when that many of the model's steps would outlast the timed seconds.

    Steps per execution save the per-step Python overhead, which only matters for short steps;
    a 16-step execution of a slow model would take minutes and change nothing.
    """
    if not base_images_per_second:
        return wanted
    fitting = int(seconds * base_images_per_second / batch)
    return max(1, min(wanted, fitting))


def measure(architecture: str, variant: str, args: argparse.Namespace,
            data: tuple[np.ndarray, np.ndarray],
            base_images_per_second: float | None = None) -> dict[str, Any]:
    """Steady-state training images/s of one model and variant (base measured first, if any)."""
    import keras

    from cifarkit import pipeline, training
    from cifarkit.models.builder import build_model

    batch = args.batch or default_batch()
    spe = steps_per_execution(args.spe, base_images_per_second, batch, args.seconds)
    config = variant_config(architecture, variant, spe, args.batch)
    training.configure_keras(config)
    spe, batch = config.training.steps_per_execution, config.training.batch_size
    model = build_model(config, NUM_CLASSES, SIDE)
    training.compile_model(model, config, NUM_CLASSES, steps_per_epoch=1000)
    model.steps_per_execution = spe  # whether or not compile_model passed it on
    flops = forward_flops(model)
    dataset = pipeline.make_dataset(*data, NUM_CLASSES, batch, training=True, repeat=True)
    warmup = max(1, math.ceil(args.warmup_steps / spe))  # executions, tracing included
    clock = _Clock()
    started = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=spe * 100_000, verbose=0,
              callbacks=[clock.callback(args.seconds, warmup)])
    timed = clock.ends[warmup - 1:]
    images_per_second = (len(timed) - 1) * spe * batch / (timed[-1] - timed[0])
    policy = keras.mixed_precision.global_policy().name
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    return {"model": architecture, "variant": variant, "input_size": config.model.input_size,
            "batch_size": batch, "policy": policy, "jit_compile": config.training.jit_compile,
            "steps_per_execution": spe, "params": int(model.count_params()),
            "timed_steps": (len(timed) - 1) * spe,
            "first_steps_seconds": round(timed[0] - started, 1),
            "images_per_second": round(images_per_second, 1),
            "forward_gflops_per_image": round(flops / 1e9, 4),
            "training_tflops_per_second": round(
                TRAINING_FLOPS_PER_FORWARD * flops * images_per_second / 1e12, 4)}


def add_peak_share(row: dict[str, Any], gpu: str | None, peak_flag: float | None) -> None:
    """Share of the device's peak FLOP/s (None on a CPU without --peak-tflops, or unknown GPU)."""
    mixed = row["policy"].startswith("mixed")
    peak = peak_flag or (peak_tflops(gpu, mixed) if gpu else None)
    row["peak_tflops"] = peak
    row["peak_share"] = round(row["training_tflops_per_second"] / peak, 4) if peak else None


def markdown(rows: list[dict[str, Any]]) -> str:
    headers = ["model", "input", "batch", "variant", "policy", "XLA", "steps/exec", "images/s",
               "vs base", "GFLOP/img (fwd)", "TFLOP/s (train)", "of peak"]
    base = {row["model"]: row["images_per_second"] for row in rows if row["variant"] == "base"}
    cells = []
    for row in rows:
        ratio = (f"{row['images_per_second'] / base[row['model']]:.2f}×"
                 if base.get(row["model"]) else "")
        share = f"{100 * row['peak_share']:.1f} %" if row["peak_share"] is not None else "–"
        cells.append([row["model"], row["input_size"], row["batch_size"], row["variant"],
                      row["policy"], "on" if row["jit_compile"] else "off",
                      row["steps_per_execution"], f"{row['images_per_second']:,.0f}", ratio,
                      f"{row['forward_gflops_per_image']:.3f}",
                      f"{row['training_tflops_per_second']:.3f}", share])
    return benchlib.markdown_table(headers, cells)


def model_list(args: argparse.Namespace) -> list[str]:
    from cifarkit.models.catalog import model_info, names

    if args.models:
        for name in args.models:
            model_info(name)  # an unknown name is refused with the list of choices
        return list(args.models)
    scratch = [name for name in names(kind="scratch") if args.all or name not in SLOW_SCRATCH]
    return scratch + list(TRANSFER_MODELS)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", help="catalog names (default: every scratch "
                        "model but resnet50_style, and " + ", ".join(TRANSFER_MODELS) + ")")
    parser.add_argument("--all", action="store_true", help="include resnet50_style")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS,
                        help="default: base mixed xla spe, and all on a GPU")
    parser.add_argument("--spe", type=int, default=16,
                        help="steps_per_execution of the spe and all variants (16)")
    parser.add_argument("--batch", type=int, help="batch size (default: RunConfig's)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="timed seconds per measurement, after warm-up (3)")
    parser.add_argument("--warmup-steps", type=int, default=3,
                        help="untimed steps first, at least one execution (3)")
    parser.add_argument("--peak-tflops", type=float,
                        help="the device's peak TFLOP/s, for the share of peak (else: known "
                             "GPUs only)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: simple_cnn and MobileNetV2, base and spe, batch 16, "
                             "spe 2, 0.3 s each")
    args = parser.parse_args(argv)
    if args.quick:
        args.models = args.models or ["simple_cnn", "MobileNetV2"]
        args.variants = args.variants or ["base", "spe"]
        args.batch, args.spe, args.seconds, args.warmup_steps = args.batch or 16, 2, 0.3, 1
    for name in ("spe", "batch", "warmup_steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.seconds <= 0 or (args.peak_tflops is not None and args.peak_tflops <= 0):
        parser.error("--seconds and --peak-tflops must be above 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    gpus = gpu_names()
    variants = args.variants or (list(VARIANTS) if gpus else ["base", "mixed", "xla", "spe"])
    rng = np.random.default_rng(0)
    data = (rng.integers(0, 256, (DATA_IMAGES, SIDE, SIDE, 3), dtype=np.uint8),
            rng.integers(0, NUM_CLASSES, DATA_IMAGES))
    rows = []
    for architecture in model_list(args):
        base = None
        for variant in sorted(variants, key=lambda name: name != "base"):  # base first
            row = measure(architecture, variant, args, data, base)
            base = row["images_per_second"] if variant == "base" else base
            add_peak_share(row, gpus[0] if gpus else None, args.peak_tflops)
            print(f"{architecture:>16} {variant:>5}: {row['images_per_second']:,.0f} images/s",
                  file=sys.stderr, flush=True)
            rows.append(row)
    print(markdown(rows))
    benchlib.write_result("throughput-quick" if args.quick else "throughput",
                          {"gpus": gpus, "variants": variants, "seconds": args.seconds,
                           "rows": rows})


if __name__ == "__main__":
    main()
