"""The Mercure authorization settings come like every setting: ``[mercure]`` in the TOML file,
``LIVEHUB_<NAME>`` and ``--<name>``, with wrong values refused at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from livehub.config import describe, load
from livehub.errors import ConfigError
from livehub.protocols.mercure.tokens import MercureAuthSettings

from ..app.test_config import parse


def test_defaults_are_closed() -> None:
    settings = load(parse(), environ={}).mercure_auth
    assert settings == MercureAuthSettings()
    assert not settings.mercure_anonymous and settings.mercure_jwt_algorithm == "HS256"


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "livehub.toml"
    path.write_text('[mercure]\nmercure_publisher_jwt_key = "file-pub"\n'
                    'mercure_subscriber_jwt_key = "file-sub"\nmercure_anonymous = true\n'
                    'mercure_issuers = ["https://a.example", "https://b.example"]\n')
    cfg = load(parse("--config", str(path)), environ={}).mercure_auth
    assert (cfg.mercure_publisher_jwt_key, cfg.mercure_subscriber_jwt_key) == ("file-pub",
                                                                              "file-sub")
    assert cfg.mercure_anonymous and cfg.mercure_issuers == ("https://a.example",
                                                             "https://b.example")
    cfg = load(parse("--config", str(path), "--no-mercure-anonymous",
                     "--mercure-audience", "https://hub.example/.well-known/mercure"),
               environ={"LIVEHUB_MERCURE_PUBLISHER_JWT_KEY": "env-pub",
                        "LIVEHUB_MERCURE_JWT_ALGORITHM": "HS512",
                        "LIVEHUB_MERCURE_ISSUERS": "https://c.example"}).mercure_auth
    assert cfg.mercure_publisher_jwt_key == "env-pub" and cfg.mercure_jwt_algorithm == "HS512"
    assert not cfg.mercure_anonymous and cfg.mercure_issuers == ("https://c.example",)
    assert cfg.mercure_audience == "https://hub.example/.well-known/mercure"


def test_anonymous_subscribers_are_an_open_door_in_the_start_up_log() -> None:
    lines = describe(load(parse("--mercure-anonymous"), environ={}))
    assert any("mercure_anonymous" in line for line in lines)


@pytest.mark.parametrize(("content", "fragment"), [
    ('[mercure]\nmercure_jwt_algorithm = "none"\n', "mercure_jwt_algorithm"),
    ('[mercure]\nmercure_jwt_algorithm = "HS257"\n', "mercure_jwt_algorithm"),
    ('[mercure]\nmercure_nope = 1\n', "unknown setting"),
    ('[mercure]\nmercure_anonymous = "perhaps"\n', "not a boolean"),
])
def test_bad_settings_say_what(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "livehub.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=fragment):
        load(parse("--config", str(path)), environ={})
