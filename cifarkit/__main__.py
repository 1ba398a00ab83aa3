"""`python -m cifarkit ...`: see cifarkit.cli."""

import sys

from cifarkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
