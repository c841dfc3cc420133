"""The admin settings go through the config like every other: TOML, environment, flags."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from livehub.config import add_arguments, load
from livehub.errors import ConfigError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_off_by_default() -> None:
    assert not load(parse(), environ={}).admin.enabled


def test_environment_file_and_flags(tmp_path: Path) -> None:
    env = load(parse(), environ={"LIVEHUB_ADMIN_PASSWORD": "from-the-environment"})
    assert env.admin.admin_password == "from-the-environment"
    assert env.admin.enabled
    path = tmp_path / "livehub.toml"
    path.write_text('[admin]\nadmin_token = "from-the-file-123"\nadmin_session_ttl = 60\n')
    filed = load(parse("--config", str(path)), environ={})
    assert filed.admin.admin_token == "from-the-file-123"
    assert filed.admin.admin_session_ttl == 60.0
    flagged = load(parse("--config", str(path), "--admin-session-ttl", "30",
                         "--admin-login-burst", "3"), environ={})
    assert (flagged.admin.admin_session_ttl, flagged.admin.admin_login_burst) == (30.0, 3)


def test_empty_secret_is_unset() -> None:
    assert not load(parse(), environ={"LIVEHUB_ADMIN_PASSWORD": ""}).admin.enabled


@pytest.mark.parametrize(("name", "value", "message"), [
    ("LIVEHUB_ADMIN_PASSWORD", "short", "at least 8"),
    ("LIVEHUB_ADMIN_SESSION_TTL", "0", "admin_session_ttl"),
    ("LIVEHUB_ADMIN_LOGIN_RATE", "0", "admin_login_rate"),
])
def test_bad_values_refused(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(parse(), environ={name: value})


def test_unknown_admin_setting_refused(tmp_path: Path) -> None:
    path = tmp_path / "livehub.toml"
    path.write_text('[admin]\npasword = "typo-typo-typo"\n')
    with pytest.raises(ConfigError, match=r"\[admin\]: unknown setting 'pasword'"):
        load(parse("--config", str(path)), environ={})


def test_pages_are_package_data() -> None:
    """The dashboard's files ship in the wheel (``[tool.setuptools.package-data]``)."""
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())[
        "tool"]["setuptools"]["package-data"]["livehub"]
    static = root / "livehub" / "admin" / "static"
    files = [p.relative_to(root / "livehub").as_posix() for p in static.iterdir()]
    assert {"admin/static/index.html", "admin/static/login.html", "admin/static/admin.js",
            "admin/static/admin.css"} <= set(files)
    assert all(any(fnmatch.fnmatch(f, pattern) for pattern in patterns) for f in files)
