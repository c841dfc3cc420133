"""The ``[broker]`` settings: TOML, environment and flags, and what is refused."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from livehub.backend import BrokerSettings, build, redacted
from livehub.config import add_arguments, load
from livehub.core.memory import MemoryBroker
from livehub.errors import ConfigError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_are_memory_and_one_process() -> None:
    config = load(parse(), environ={})
    assert config.broker == BrokerSettings()
    assert isinstance(build(config.broker)[0], MemoryBroker)


def test_environment_names_follow_the_settings() -> None:
    config = load(parse(), environ={"LIVEHUB_BROKER": "redis",
                                    "LIVEHUB_REDIS_URL": "redis://r:6380/2",
                                    "LIVEHUB_REDIS_PASSWORD": "pw", "LIVEHUB_WORKERS": "4",
                                    "LIVEHUB_REDIS_TLS_VERIFY": "false"})
    b = config.broker
    assert (b.broker, b.redis_url, b.redis_password, b.workers, b.redis_tls_verify) == (
        "redis", "redis://r:6380/2", "pw", 4, False)


def test_toml_table_and_flags_override(tmp_path: Path) -> None:
    path = tmp_path / "livehub.toml"
    path.write_text('[broker]\nbroker = "redis"\nredis_url = "rediss://h:1/0"\n'
                    'redis_tls_ca = "/ca.pem"\nworkers = 2\n')
    config = load(parse("--config", str(path), "--workers", "3"), environ={})
    assert (config.broker.redis_url, config.broker.redis_tls_ca, config.broker.workers) == (
        "rediss://h:1/0", "/ca.pem", 3)


@pytest.mark.parametrize(("env", "message"), [
    ({"LIVEHUB_WORKERS": "2"}, "needs a broker that every worker shares"),
    ({"LIVEHUB_BROKER": "kafka"}, "broker must be one of memory, redis"),
    ({"LIVEHUB_BROKER": "redis", "LIVEHUB_REDIS_PREFIX": "a b"}, "redis_prefix"),
    ({"LIVEHUB_WORKERS": "0"}, "workers must be 1-256"),
])
def test_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(parse(), environ=env)


def test_redis_url_is_checked_when_building() -> None:
    with pytest.raises(ConfigError, match="redis_url must start with"):
        build(BrokerSettings(broker="redis", redis_url="http://x"))
    with pytest.raises(ConfigError, match="rediss://"):
        build(BrokerSettings(broker="redis", redis_tls_ca="/ca.pem"))


def test_passwords_stay_out_of_logs() -> None:
    assert redacted("redis://user:secret@h:6379/0") == "redis://user:***@h:6379/0"
    assert redacted("redis://h:6379/0") == "redis://h:6379/0"
    described = BrokerSettings(broker="redis", redis_url="redis://:pw@h/0").describe()
    assert "pw" not in described and "***" in described


def test_workers_with_the_memory_broker_exit_with_a_configuration_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "livehub", "serve", "--workers", "2"],
                          capture_output=True, text=True, timeout=30, check=False,
                          cwd=Path(__file__).parent.parent)
    assert proc.returncode == 2
    assert "configuration error" in proc.stderr and "redis" in proc.stderr
