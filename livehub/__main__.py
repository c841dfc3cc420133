"""``python -m livehub``."""

from __future__ import annotations

import sys

from livehub.cli import main

sys.exit(main())
