"""`python -m cifarkit ...`: see cifarkit.cli."""

import os
import sys

from cifarkit.cli import main


def _exit(code: int) -> None:
    """End the process. After TensorFlow has loaded, skip the interpreter's teardown: it takes
    seconds (~5 s here), during which a worker would keep its device slot and its memory, and
    everything the command wrote is already on disk, closed (atomic replaces, with-blocks)."""
    if "tensorflow" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    _exit(main())
