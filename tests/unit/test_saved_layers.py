"""A saved default model loads in a fresh process through the app's loader alone.

In the test process the builder has already imported (and so registered) every custom layer;
the Predict page's process may have imported nothing but cifarkit.predict.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cifarkit.config import AugmentConfig, RunConfig
from cifarkit.models.builder import build_model

ROOT = Path(__file__).resolve().parents[2]


def test_the_default_model_with_a_shift_loads_in_a_fresh_process(tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    build_model(RunConfig(augment=AugmentConfig(shift=0.0625)), num_classes=3).save(path)
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from cifarkit import predict; "
         "m = predict.load_model(sys.argv[1]); print(m.output_shape)", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip().endswith("(None, 3)")
