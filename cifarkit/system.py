"""What hardware training will run on, for the Home page and bug reports.

TensorFlow is imported inside the function: it takes seconds, and only this question needs it.
"""

from __future__ import annotations

import os
import platform
import resource
from typing import Any


def device_summary() -> dict[str, Any]:
    """CPU count, visible GPUs and library versions; "device" is "GPU" when any GPU is visible."""
    import keras
    import tensorflow as tf

    gpus = [_gpu_name(tf, gpu) for gpu in tf.config.list_physical_devices("GPU")]
    return {
        "device": "GPU" if gpus else "CPU",
        "gpus": gpus,
        "cpu_count": os.cpu_count() or 1,
        "processor": platform.processor() or platform.machine(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }


def _gpu_name(tf: Any, gpu: Any) -> str:
    """The card's marketing name when TensorFlow knows it (e.g. "NVIDIA H100"), else its id."""
    details = tf.config.experimental.get_device_details(gpu)
    return str(details.get("device_name") or gpu.name)


def peak_memory_mb() -> float:
    """Peak resident memory of this process (Linux reports kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
