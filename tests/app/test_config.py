"""Configuration precedence (defaults < TOML < environment < flags) and its errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from livehub.config import add_arguments, describe, load
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


# -- authorization settings and presets (issue 9) ----------------------------------------------


def test_auth_section_and_the_old_names(tmp_path: Path) -> None:
    new = tmp_path / "new.toml"
    new.write_text('[auth]\ntoken_hmac_secret = "s1"\ntoken_cookie = "sess"\n'
                   'token_audience = "aud"\n')
    cfg = load(parse("--config", str(new)), environ={})
    assert (cfg.auth.token_hmac_secret, cfg.auth.token_cookie, cfg.auth.token_audience) == (
        "s1", "sess", "aud")
    old = tmp_path / "old.toml"
    old.write_text('[centrifugo]\ntoken_hmac_secret = "s2"\nclient_insecure = true\n'
                   'token_jwks_public_endpoint = "http://keys.test/jwks"\nuni = true\n')
    cfg = load(parse("--config", str(old)), environ={})
    assert cfg.auth.token_hmac_secret == "s2" and cfg.auth.client_insecure
    assert cfg.auth.token_jwks_url == "http://keys.test/jwks"  # Centrifugo's own name
    assert cfg.centrifugo.uni
    cfg = load(parse("--token-hmac-secret", "s3"), environ={"LIVEHUB_TOKEN_COOKIE": "c"})
    assert cfg.auth.token_hmac_secret == "s3" and cfg.auth.token_cookie == "c"


def test_secure_defaults_keep_channels_without_namespace_public(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[namespaces.user]\nhistory_size = 5\n")
    cfg = load(parse("--config", str(path)), environ={})
    public, user = cfg.namespaces.options("news"), cfg.namespaces.options("user:42")
    assert public.allow_subscribe_for_client and public.anonymous_subscribe
    assert not user.allow_subscribe_for_client and not user.anonymous_subscribe


def test_production_preset_closes_the_examples() -> None:
    cfg = load(parse("--production"), environ={"LIVEHUB_API_KEY": "k"})
    assert cfg.production and not cfg.server.echo and not cfg.server.clock
    assert "chat" not in cfg.namespaces.namespaces
    assert not [d for d in describe(cfg) if "example" in d or "'chat'" in d]
    assert load(parse(), environ={"LIVEHUB_PRODUCTION": "1",
                                  "LIVEHUB_API_KEY": "k"}).production


@pytest.mark.parametrize(("argv", "env", "fragment"), [
    (["--production"], {}, "needs an API key"),
    (["--production", "--insecure-api"], {"LIVEHUB_API_KEY": "k"}, "insecure_api"),
    (["--production", "--client-insecure"], {"LIVEHUB_API_KEY": "k"}, "client_insecure"),
    (["--production", "--dev"], {"LIVEHUB_API_KEY": "k"}, "exclude each other"),
    (["--cors-credentials"], {}, "explicit allowed_origins"),
    (["--cors-credentials", "--allowed-origins", "https://a.test,null"], {}, "'null' origin"),
    (["--insecure-api", "--host", "0.0.0.0"], {}, "loopback"),
])
def test_refused_configurations(argv: list[str], env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load(parse(*argv), environ=env)


def test_open_doors_are_announced() -> None:
    lines = describe(load(parse(), environ={}))
    warnings = [line for line in lines if line.startswith("WARNING: ")]
    for fragment in ("/echo", "clock", "anonymous clients may publish ('chat'",
                     "allowed_origins is *"):
        assert any(fragment in w for w in warnings), (fragment, warnings)
    quiet = load(parse("--production", "--allowed-origins", "https://app.test"),
                 environ={"LIVEHUB_API_KEY": "k"})
    assert not [line for line in describe(quiet) if line.startswith("WARNING: ")]


def test_mercure_section_env_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "livehub.toml"
    path.write_text('[mercure]\nmercure_topics = ["books=https://example.com/books/"]\n'
                    'mercure_max_topics = 5\n'
                    '[namespaces.books]\nhistory_size = 10\n')
    cfg = load(parse("--mercure-subscriptions"), environ={
        "LIVEHUB_CONFIG": str(path), "LIVEHUB_MERCURE_JOURNAL": "books:$journal"})
    assert cfg.mercure.mercure_topics == ("books=https://example.com/books/",)
    assert cfg.mercure.mercure_max_topics == 5
    assert cfg.mercure.mercure_journal == "books:$journal"        # env
    assert cfg.mercure.mercure_subscriptions is True               # flag
    assert load(parse(), environ={}).mercure.mercure               # on by default (serve)
    assert not load(parse("--production", "--api-key", "k"), environ={}).mercure.mercure
    with pytest.raises(ConfigError, match="mercure_topics"):
        load(parse("--mercure-topics", "no-equals-sign"), environ={})


def test_mercure_needs_its_namespaces(tmp_path: Path) -> None:
    path = tmp_path / "livehub.toml"
    path.write_text("[namespaces.game]\nclient_publish = true\n")
    cfg = load(parse(), environ={"LIVEHUB_CONFIG": str(path)})
    assert not cfg.mercure.mercure            # not asked for: off, said at start-up
    assert "Mercure hub: off" in "\n".join(describe(cfg))
    with pytest.raises(ConfigError, match="needs namespaces \\['mercure'\\]"):
        load(parse("--mercure"), environ={"LIVEHUB_CONFIG": str(path)})
