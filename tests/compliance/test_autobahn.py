"""Autobahn|Testsuite, core profile, against the raw channel WebSocket (compliance/autobahn.py).

The first run installs Python 2.7 and wstest into ``.autobahn/`` (~2 min, needs the Debian
archive and PyPI); later runs take ~30 s.  Strict: every case OK, no NON-STRICT, every close
verdict OK.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.autobahn
@pytest.mark.timeout(900)
def test_autobahn_core_profile_is_strictly_ok() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "compliance" / "autobahn.py"), "core"],
                          capture_output=True, text=True, timeout=880, check=False)
    tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
    assert done.returncode == 0, tail
    summary = json.loads((ROOT / ".autobahn" / "reports" / "core" / "summary.json").read_text())
    assert summary["cases"] >= 300, summary
    assert summary["failed"] == 0 and summary["non_strict"] == 0, summary
