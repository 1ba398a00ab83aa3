"""device_summary: what the Home page says about the hardware training will use."""

from __future__ import annotations

import os

import tensorflow as tf

from cifarkit import system


def test_device_summary_matches_what_tensorflow_sees() -> None:
    summary = system.device_summary()
    gpus = tf.config.list_physical_devices("GPU")
    assert summary["device"] == ("GPU" if gpus else "CPU")
    assert len(summary["gpus"]) == len(gpus)
    assert all(isinstance(name, str) and name for name in summary["gpus"])
    assert summary["cpu_count"] == (os.cpu_count() or 1)
    assert summary["tensorflow"] == tf.__version__
    assert summary["backend"] in ("tensorflow", "jax", "torch", "numpy")
