"""The settings reference (docs/settings.md), generated from the code: every setting, its
TOML key, environment variable, flag, effective default and one line of meaning.

``livehub settings --markdown`` prints it.  The sections are the settings dataclasses; a
setting's meaning is the docstring under its field (read from the source with ``ast``); the
defaults are those ``livehub.config.load`` gives with no file, environment or flag; flags of
``livehub serve`` that belong to no section are listed with their help.  A test compares the
committed file with this output, so the reference cannot drift from ``livehub serve --help``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

from livehub.config import ENV_PREFIX, Config, add_arguments, load

SECTIONS: tuple[tuple[str, Callable[[Config], Any], str], ...] = (
    ("server", lambda c: c.server,
     "The HTTP server: address, server API key, CORS, heartbeats, timeouts, connection "
     "budgets."),
    ("channels", lambda c: c.namespaces.default,
     "Options of channels without a namespace; the same keys configure each "
     "`[namespaces.NAME]` table (TOML only)."),
    ("broker", lambda c: c.broker, "Which broker a node uses: memory, or Redis for many "
     "processes and machines (docs/redis.md)."),
    ("auth", lambda c: c.auth, "Client tokens, for every protocol (docs/security.md)."),
    ("centrifugo", lambda c: c.centrifugo,
     "The Centrifugo client protocol and node discovery (docs/centrifugo.md)."),
    ("limits", lambda c: c.limits, "Budgets against abuse (docs/limits.md)."),
    ("mercure", lambda c: c.mercure,
     "The Mercure hub at /.well-known/mercure: topics and channels, the journal, discovery, "
     "active subscriptions (docs/mercure.md)."),
    ("mercure", lambda c: c.mercure_auth,
     "Authorization of the Mercure hub at /.well-known/mercure (docs/mercure.md)."),
    ("admin", lambda c: c.admin, "The admin dashboard at /admin (docs/admin.md)."),
)
"""Each TOML section, how to find its settings in a ``Config``, and what it is about."""

MISSING = "(no description: add a docstring under the field)"


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of the dataclass ``cls``, as one line."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for stmt, after in zip(body, [*body[1:], None], strict=True):
        if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[stmt.target.id] = " ".join(after.value.value.split()).replace("``", "`")
    return docs


def _default(value: object, name: str, config: Config) -> str:
    if name == "api_key" and config.api_key_generated:
        return "random, printed at start-up"
    if value is None or value == "":
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ", ".join(str(v) for v in value) if value else "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def markdown(parser: argparse.ArgumentParser | None = None) -> str:
    """The reference as Markdown (``parser``: the flags of ``livehub serve``)."""
    if parser is None:
        parser = argparse.ArgumentParser(prog="livehub serve")
        add_arguments(parser)
    config = load(parser.parse_args([]), environ={})
    lines = [
        "# Settings reference",
        "",
        "Generated from the code by `livehub settings --markdown > docs/settings.md`; a test "
        "fails when this file and the code differ.",
        "",
        "Every setting comes, lowest precedence first, from its default, the TOML file "
        "(`--config` / `LIVEHUB_CONFIG`, in the table named by its section), the environment "
        "(`LIVEHUB_<NAME>`) and its flag (`--<name>`; booleans also `--no-<name>`, lists are "
        "comma-separated). The presets `--dev` and `--production` change some defaults "
        "(`livehub/config.py`). The defaults below are those with no file, environment or "
        "flag.",
        "",
    ]
    documented: set[str] = set()
    for section, get, about in SECTIONS:
        values = get(config)
        docs = field_docs(type(values))
        lines += [f"## `[{section}]`", "", about, "",
                  "| setting | environment | flag | default | meaning |",
                  "|---|---|---|---|---|"]
        for f in dataclasses.fields(values):
            documented.add(f.name)
            lines.append(
                f"| `{f.name}` | `{ENV_PREFIX}{f.name.upper()}` | `{_flag(f.name)}` | "
                f"{_cell(_default(getattr(values, f.name), f.name, config))} | "
                f"{_cell(docs.get(f.name, MISSING))} |")
        lines.append("")
    lines += ["## Other flags of `livehub serve`", "",
              "| flag | meaning |", "|---|---|"]
    for action in parser._actions:  # argparse has no public list of its actions
        names = [s for s in action.option_strings if s.startswith("--")]
        if not names or action.dest in documented or action.dest == "help":
            continue
        flag = names[0]
        help_text = " ".join((action.help or "").split()) or MISSING
        lines.append(f"| `{flag}` | {_cell(help_text)} |")
    lines.append("")
    return "\n".join(lines)


def undocumented() -> list[str]:
    """``section.setting`` of every setting without a line of meaning."""
    config = load(argparse.Namespace(), environ={})
    missing: list[str] = []
    for section, get, _ in SECTIONS:
        values = get(config)
        docs = field_docs(type(values))
        missing += [f"{section}.{f.name}" for f in dataclasses.fields(values)
                    if f.name not in docs]
    return missing
