"""`python -m offline.run` (what `make run` calls), kept at this path for the Makefile and the README: the command lives in offline/cli/run.py."""
from __future__ import annotations

import sys

from offline.cli.run import main

if __name__ == "__main__":
    sys.exit(main())
