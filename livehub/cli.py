"""The ``livehub`` command: ``serve`` runs the hub, ``bench`` runs the load lab, ``settings``
prints the settings reference."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from livehub import __version__
from livehub.config import add_arguments, configured_secrets, load
from livehub.errors import ConfigError
from livehub.ops.logs import configure as configure_logs
from livehub.serve import run

log = logging.getLogger("livehub")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        from livehub.bench.cli import main as bench_main
        return bench_main(argv[1:])
    parser = argparse.ArgumentParser(prog="livehub", description="livehub real-time hub")
    parser.add_argument("--version", action="version", version=f"livehub {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="run the hub")
    add_arguments(serve_parser)
    sub.add_parser("bench", help="run the load lab (livehub bench --help)")
    settings_parser = sub.add_parser(
        "settings", help="print the settings reference (every setting, its variable, flag, "
                         "default and meaning; docs/settings.md)")
    settings_parser.add_argument("--markdown", action="store_true",
                                 help="Markdown (the only format for now)")
    args = parser.parse_args(argv)
    if args.command == "settings":
        from livehub.settings_doc import markdown
        serve_only = argparse.ArgumentParser(prog="livehub serve")
        add_arguments(serve_only)
        sys.stdout.write(markdown(serve_only))
        return 0
    try:
        config = load(args)
    except ConfigError as exc:
        print(f"livehub: configuration error: {exc.message}", file=sys.stderr)
        return 2
    configure_logs(config.log_level, config.server.log_format, secrets=configured_secrets(config))
    if config.broker.workers > 1:
        from livehub.workers import supervise
        try:
            return supervise(config)
        except OSError as exc:
            print(f"livehub: cannot start: {exc}", file=sys.stderr)
            return 1
    return run(config)
