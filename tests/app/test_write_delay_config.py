"""The batching window's settings (issue 15): ``write_delay`` in ``[server]`` (global) and per
namespace, through the TOML file, the environment and the flag like every setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from livehub.errors import ConfigError

from .test_config import load, parse


def test_off_by_default() -> None:
    cfg = load(parse(), environ={})
    assert cfg.server.write_delay == 0.0
    assert cfg.namespaces.default.write_delay is None  # None: the server's window


def test_global_and_per_namespace_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "livehub.toml"
    path.write_text("[server]\nwrite_delay = 0.002\n"
                    "[namespaces.ticker]\nwrite_delay = 0.02\n"
                    "[namespaces.game]\nwrite_delay = 0\n"
                    "[namespaces.chat]\n")
    cfg = load(parse("--config", str(path)), environ={})
    assert cfg.server.write_delay == 0.002
    assert cfg.namespaces.options("ticker:x").write_delay == 0.02
    assert cfg.namespaces.options("game:x").write_delay == 0.0
    assert cfg.namespaces.options("chat:x").write_delay is None


def test_environment_and_flag_set_the_global_window() -> None:
    cfg = load(parse(), environ={"LIVEHUB_WRITE_DELAY": "0.005"})
    assert cfg.server.write_delay == 0.005 and cfg.namespaces.default.write_delay == 0.005
    cfg = load(parse("--write-delay", "0.001"), environ={"LIVEHUB_WRITE_DELAY": "0.005"})
    assert cfg.server.write_delay == 0.001 and cfg.namespaces.default.write_delay == 0.001


@pytest.mark.parametrize("content", ["[server]\nwrite_delay = -0.001\n",
                                     "[server]\nwrite_delay = 5\n",
                                     "[namespaces.x]\nwrite_delay = 2.5\n",
                                     "[server]\nwrite_delay = 'soon'\n"])
def test_refused_windows_say_what(tmp_path: Path, content: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match="write_delay"):
        load(parse("--config", str(path)), environ={})
