"""The accelerator path: float policy, XLA and multi-GPU strategy, decided from the devices seen.

`decide` is a pure function of a device description (GPU names, CPU flags) so every branch is
tested on a CPU-only machine; `detect` reads the real devices and `strategy` builds the
tf.distribute strategy the decision asks for. Nothing here assumes one device: a run builds and
compiles its model inside `strategy(...).scope()` and batches `batch_size × replicas` images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cifarkit.config import TrainingConfig

BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # /proc/cpuinfo flags with bf16 compute
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class Devices:
    """What a worker can compute on."""

    gpus: tuple[str, ...] = ()  # visible GPU names
    cpu_flags: frozenset[str] = frozenset()  # lower-case /proc/cpuinfo flags


@dataclass(frozen=True)
class Decision:
    """How a run uses the devices."""

    policy: str  # Keras dtype policy: mixed_float16 | mixed_bfloat16 | float32
    jit_compile: bool  # XLA
    mirrored: bool  # MirroredStrategy over every visible GPU
    replicas: int  # devices a step runs on: the global batch is batch_size × replicas
    notes: tuple[str, ...] = ()  # why a requested speed-up was not used (for status "note")


def decide(training: TrainingConfig, devices: Devices) -> Decision:
    """The policy, XLA and strategy for this config on these devices."""
    notes: list[str] = []
    policy = _policy(training.mixed_precision, devices, notes)
    mirrored = training.distribute and len(devices.gpus) > 1
    if training.distribute and not mirrored:
        notes.append(f"training.distribute: {len(devices.gpus)} GPU(s) visible, so one device "
                     "trains (MirroredStrategy needs two or more)")
    # XLA: the config value stands on every device. On a GPU it fuses kernels; on this class's
    # CPUs it measured slower (390 vs 572 images/s), which is why its default is off.
    return Decision(policy=policy, jit_compile=training.jit_compile, mirrored=mirrored,
                    replicas=len(devices.gpus) if mirrored else 1, notes=tuple(notes))


def _policy(mixed: bool, devices: Devices, notes: list[str]) -> str:
    if not mixed:
        return "float32"
    if devices.gpus:
        return "mixed_float16"
    if devices.cpu_flags & BF16_CPU_FLAGS:
        return "mixed_bfloat16"
    notes.append("training.mixed_precision: no GPU and this CPU has no bfloat16 instructions "
                 "(avx512_bf16 or amx_bf16), so training runs in float32")
    return "float32"


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The flags of the first processor listed in /proc/cpuinfo text ("flags : a b c")."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, ARM
            return frozenset(value.lower().split())
    return frozenset()


def detect() -> Devices:
    """The GPUs TensorFlow sees and this CPU's flags (none where /proc/cpuinfo is missing)."""
    import tensorflow as tf

    try:
        text = CPUINFO.read_text()
    except OSError:
        text = ""
    gpus = tuple(device.name for device in tf.config.list_physical_devices("GPU"))
    return Devices(gpus=gpus, cpu_flags=cpu_flags(text))


def strategy(decision: Decision) -> Any:
    """MirroredStrategy when the decision mirrors, else TensorFlow's default (no-op) strategy."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy() if decision.mirrored else tf.distribute.get_strategy()
