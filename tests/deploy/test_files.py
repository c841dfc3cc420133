"""The files of ``deploy/`` that cannot run here as a whole: the systemd unit is checked by
``systemd-analyze verify``; the Dockerfile and the compose file by what they must say (a
non-root user, the files they copy exist, the proxy they trust is the one they run)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DEPLOY, ROOT


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze not found (apt-get install -y systemd; scripts/test.sh "
                    "does it)", pytrace=False)
    unit = (DEPLOY / "systemd" / "livehub.service").read_text()
    assert "ExecStart=/opt/livehub/bin/livehub serve" in unit
    livehub = Path(sys.executable).parent / "livehub"
    assert livehub.exists(), "the livehub script of this virtualenv"
    local = tmp_path / "livehub.service"
    local.write_text(unit.replace("/opt/livehub/bin/livehub", str(livehub)))
    result = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "livehub.service" not in result.stderr, result.stderr  # no warning about it
    for hardening in ("DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict",
                      "CapabilityBoundingSet=\n"):
        assert hardening in unit


def test_dockerfile_runs_as_a_user_and_copies_what_exists() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) == 2 and all(s.endswith("-slim") or " AS " in s for s in stages)
    final = text[text.rindex("\nFROM "):]
    user = re.search(r"^USER (\S+)", final, re.M)
    assert user is not None and user.group(1).split(":")[0] not in ("root", "0")
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "*" in ignored and "!livehub/" in ignored and "!pyproject.toml" in ignored
    assert 'ENTRYPOINT ["livehub", "serve"]' in final


def test_compose_trusts_the_proxy_it_runs() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    trusted = re.search(r"LIVEHUB_TRUSTED_PROXIES: (\S+)", text)
    proxy = re.search(r"ipv4_address: (\S+)", text)
    assert trusted and proxy and trusted.group(1) == proxy.group(1)
    assert "./nginx/livehub.conf:/etc/nginx/conf.d/default.conf:ro" in text
    assert (DEPLOY / "nginx" / "livehub.conf").exists()
    assert re.search(r"LIVEHUB_BROKER: redis", text)
    assert text.count("<<: *hub\n") == 2  # two nodes
    assert "dockerfile: deploy/Dockerfile" in text


def test_caddyfile_adapts_as_committed(tmp_path: Path) -> None:
    """The committed Caddyfile, unmodified, is valid for Caddy and says what docs/deploy.md
    promises (the running test rewrites only its address and upstreams)."""
    import json

    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.fail("caddy not found (apt-get install -y caddy; scripts/test.sh does it)",
                    pytrace=False)
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([caddy, "adapt", "--config", str(DEPLOY / "caddy" / "Caddyfile"),
                             "--adapter", "caddyfile"], capture_output=True, text=True,
                            env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    text = json.dumps(json.loads(result.stdout))
    for expected in ('"flush_interval": -1', '"policy": "least_conn"', '"dial": "hub1:8000"',
                     '"dial": "hub2:8000"', '"uri": "/ready"'):
        assert expected in text, expected
