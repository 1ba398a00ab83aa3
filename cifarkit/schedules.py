"""Learning-rate schedules that saved models need, registered for `load_model(safe_mode=True)`.

A model saved with its optimizer (last.keras, model.keras) names its schedule by its registered
name; this small module (Keras only) is what a process must import to load one compiled.
cifarkit.training uses it, and cifarkit.models.layers imports it (as it does augment), so a fresh
process that loads a model with compile=True finds it.
"""

from __future__ import annotations

import math
from typing import Any

import keras


@keras.saving.register_keras_serializable(package="cifarkit")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from `start` to `peak`, then linear or cosine decay to 0 at total_steps.

    The step counts live in non-trainable variables that the compiled train step reads, so a
    time budget can set the total after compile and the very next step follows it (a Python
    number would be frozen into the traced function). get_config saves their current values,
    so a resumed run (last.keras, safe_mode=True) continues the same schedule.
    """

    def __init__(self, peak: float, total_steps: float, warmup_steps: float | None = None,
                 start: float = 0.0, decay: str = "linear", warmup_fraction: float = 0.0,
                 name: str = "warmup_decay") -> None:
        super().__init__()
        if decay not in ("linear", "cosine"):
            raise ValueError(f"decay must be linear or cosine, got {decay!r}")
        self.peak = float(peak)
        self.start = float(start)
        self.decay = decay
        self.warmup_fraction = float(warmup_fraction)
        self.name = name
        if warmup_steps is None:
            warmup_steps = round(self.warmup_fraction * total_steps)
        self.total_steps = keras.Variable(float(total_steps), dtype="float32", trainable=False,
                                          autocast=False, name="total_steps")
        self.warmup_steps = keras.Variable(float(warmup_steps), dtype="float32",
                                           trainable=False, autocast=False, name="warmup_steps")

    def set_total(self, total_steps: int, warmup: bool) -> None:
        """A new total; with warmup, the warm-up is re-based on it (the first plan only)."""
        if warmup:
            self.warmup_steps.assign(float(round(self.warmup_fraction * total_steps)))
        self.total_steps.assign(float(max(1, total_steps)))

    def __call__(self, step: Any) -> Any:
        ops = keras.ops
        step = ops.cast(step, "float32")
        total = ops.convert_to_tensor(self.total_steps)
        warm = ops.convert_to_tensor(self.warmup_steps)
        rising = self.start + (self.peak - self.start) * step / ops.maximum(warm, 1.0)
        done = ops.clip((step - warm) / ops.maximum(total - warm, 1.0), 0.0, 1.0)
        if self.decay == "cosine":
            falling = self.peak * 0.5 * (1.0 + ops.cos(math.pi * done))
        else:
            falling = self.peak * (1.0 - done)
        return ops.where(step < warm, rising, falling)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "start": self.start, "decay": self.decay,
                "warmup_fraction": self.warmup_fraction, "name": self.name,
                "total_steps": float(keras.ops.convert_to_numpy(self.total_steps)),
                "warmup_steps": float(keras.ops.convert_to_numpy(self.warmup_steps))}
