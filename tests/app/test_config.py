"""Configuration precedence (defaults < TOML < environment < flags) and its errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from livehub.config import add_arguments, load
from livehub.errors import ConfigError, UnknownNamespace


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_generate_an_api_key() -> None:
    cfg = load(parse(), environ={})
    assert cfg.server.host == "127.0.0.1" and cfg.server.port == 8000
    assert cfg.api_key_generated and cfg.server.api_key and len(cfg.server.api_key) == 32
    assert cfg.namespaces.options("chat:x").client_publish
    assert not cfg.namespaces.options("news").client_publish


def test_precedence(tmp_path: Path) -> None:
    path = tmp_path / "livehub.toml"
    path.write_text('[server]\nport = 9001\nhost = "127.0.0.2"\napi_key = "from-file"\n'
                    'allowed_origins = ["https://a.test"]\n'
                    '[channels]\nhistory_size = 7\n'
                    '[namespaces.game]\nclient_publish = true\nhistory_ttl = 5\n')
    env = {"LIVEHUB_CONFIG": str(path), "LIVEHUB_PORT": "9002", "LIVEHUB_ECHO": "false",
           "LIVEHUB_HISTORY_SIZE": "9"}
    cfg = load(parse("--port", "9003"), environ=env)
    assert cfg.server.port == 9003                      # flag beats env beats file
    assert cfg.server.host == "127.0.0.2"                # file
    assert cfg.server.api_key == "from-file" and not cfg.api_key_generated
    assert cfg.server.echo is False                      # env
    assert tuple(cfg.server.allowed_origins) == ("https://a.test",)
    assert cfg.namespaces.default.history_size == 9
    assert cfg.namespaces.options("game:1").client_publish
    with pytest.raises(UnknownNamespace):                # a file with namespaces replaces them
        cfg.namespaces.options("chat:1")


def test_env_api_key_and_lists() -> None:
    cfg = load(parse(), environ={"LIVEHUB_API_KEY": "k", "LIVEHUB_HOST": "127.0.0.1",
                                 "LIVEHUB_ALLOWED_ORIGINS": "http://a, http://b"})
    assert cfg.server.api_key == "k"
    assert tuple(cfg.server.allowed_origins) == ("http://a", "http://b")


@pytest.mark.parametrize(("content", "env", "fragment"), [
    ("[server]\nport = 'x'\n", {}, "port"),
    ("[server]\nnope = 1\n", {}, "unknown setting"),
    ("[sever]\n", {}, "unknown sections"),
    ("not toml ===", {}, "not valid TOML"),
    ("[namespaces.bad]\nhistory_size = -1\n", {}, "history_size"),
    ("", {"LIVEHUB_PORT": "70000"}, "port"),
    ("", {"LIVEHUB_ECHO": "maybe"}, "boolean"),
    ("[namespaces.'bad ns']\n", {}, "namespace"),
])
def test_errors_say_what_and_where(tmp_path: Path, content: str, env: dict[str, str],
                                   fragment: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=fragment):
        load(parse("--config", str(path)), environ=env)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(parse("--config", "/nonexistent/livehub.toml"), environ={})
