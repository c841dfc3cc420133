"""The ``[limits]`` settings: file, ``LIVEHUB_*`` environment and flags, like every setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from livehub.config import load
from livehub.core.limits import Limits
from livehub.errors import ConfigError

from .test_config import parse


def test_limits_from_file_env_and_flags(tmp_path: Path) -> None:
    assert load(parse(), environ={}).limits == Limits()
    path = tmp_path / "livehub.toml"
    path.write_text("[limits]\nmax_publication_size = 5000\nmax_json_depth = 10\n")
    cfg = load(parse("--config", str(path)), environ={})
    assert (cfg.limits.max_publication_size, cfg.limits.max_json_depth) == (5000, 10)
    cfg = load(parse("--config", str(path), "--max-json-depth", "12"),
               environ={"LIVEHUB_MAX_PUBLICATION_SIZE": "6000"})
    assert (cfg.limits.max_publication_size, cfg.limits.max_json_depth) == (6000, 12)


@pytest.mark.parametrize(("content", "fragment"), [
    ("[limits]\nmax_publication_size = 0\n", "max_publication_size"),
    ("[limits]\nmax_json_depth = 1000\n", "max_json_depth"),
    ("[limits]\nnope = 1\n", "unknown setting"),
])
def test_bad_limits_say_what(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=fragment):
        load(parse("--config", str(path)), environ={})
