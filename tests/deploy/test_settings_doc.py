"""docs/settings.md is the output of ``livehub settings --markdown``: it fails here when the
code and the committed file differ, and every setting has a line of meaning."""

from __future__ import annotations

import subprocess
import sys

from livehub.settings_doc import MISSING, markdown, undocumented

from .conftest import ROOT

REGENERATE = "regenerate it: .venv/bin/python -m livehub settings --markdown > docs/settings.md"


def test_committed_reference_matches_the_code() -> None:
    committed = (ROOT / "docs" / "settings.md").read_text()
    assert committed == markdown(), f"docs/settings.md is out of date: {REGENERATE}"


def test_every_setting_has_a_meaning() -> None:
    assert undocumented() == [], "add a docstring under each of these fields"
    assert MISSING not in markdown()


def test_every_flag_of_serve_help_is_in_the_reference() -> None:
    out = subprocess.run([sys.executable, "-m", "livehub", "serve", "--help"], cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=60).stdout
    flags = {word.rstrip(",") for word in out.split() if word.startswith("--")}
    flags = {f.split("=")[0] for f in flags if not f.startswith("--no-")} - {"--help"}
    reference = (ROOT / "docs" / "settings.md").read_text()
    assert flags, out
    assert [f for f in sorted(flags) if f"`{f}`" not in reference] == []


def test_cli_prints_the_reference() -> None:
    out = subprocess.run([sys.executable, "-m", "livehub", "settings", "--markdown"],
                         cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout == markdown()
    assert "| `admin_password` | `LIVEHUB_ADMIN_PASSWORD` | `--admin-password` | unset |" \
        in out.stdout
