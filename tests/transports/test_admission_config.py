"""The connection budget settings: file, ``LIVEHUB_*`` environment and flags; bad values are
configuration errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from livehub.config import load
from livehub.errors import ConfigError

from ..app.test_config import parse


def test_connection_settings_from_file_env_and_flags(tmp_path: Path) -> None:
    server = load(parse(), environ={}).server
    assert (server.max_connections, server.max_connections_per_ip) == (0, 1000)
    assert tuple(server.trusted_proxies) == ()
    path = tmp_path / "livehub.toml"
    path.write_text('[server]\nmax_connections = 5000\ntrusted_proxies = ["10.0.0.0/8"]\n')
    server = load(parse("--config", str(path)), environ={}).server
    assert server.max_connections == 5000 and tuple(server.trusted_proxies) == ("10.0.0.0/8",)
    server = load(parse("--config", str(path), "--max-connections-per-ip", "7"),
                  environ={"LIVEHUB_TRUSTED_PROXIES": "192.0.2.1, 2001:db8::/32"}).server
    assert server.max_connections_per_ip == 7
    assert tuple(server.trusted_proxies) == ("192.0.2.1", "2001:db8::/32")


@pytest.mark.parametrize("environ", [
    {"LIVEHUB_TRUSTED_PROXIES": "not-an-address"},
    {"LIVEHUB_MAX_CONNECTIONS_PER_IP": "-1"},
])
def test_bad_values_are_configuration_errors(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load(parse(), environ=environ)


def test_serve_refuses_to_start_with_a_bad_proxy() -> None:
    r = subprocess.run([sys.executable, "-m", "livehub", "serve", "--port", "0",
                        "--trusted-proxies", "10.0.0.300"],
                       capture_output=True, timeout=30, check=False)
    assert r.returncode == 2 and b"trusted_proxies" in r.stderr
    assert b"Traceback" not in r.stderr
