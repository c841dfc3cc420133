"""Run the load lab as ``python -m livehub.bench``."""

from __future__ import annotations

import sys

from livehub.bench.cli import main

sys.exit(main(sys.argv[1:]))
