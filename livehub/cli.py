"""The ``livehub`` command: ``serve`` runs the hub, ``bench`` runs the load lab."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
from collections.abc import Sequence

from livehub import __version__
from livehub.backend import build as build_backend
from livehub.config import Config, add_arguments, describe, load
from livehub.core.hub import Hub
from livehub.errors import ConfigError
from livehub.server.app import App

log = logging.getLogger("livehub")


def build_app(config: Config) -> App:
    broker, presence = build_backend(config.broker)
    hub = Hub(broker, config.namespaces)
    return App.create(hub, config.server, centrifugo=config.centrifugo, presence=presence)


async def serve(config: Config, sock: socket.socket | None = None) -> None:
    app = build_app(config)
    await app.start(sock)
    for line in describe(config):
        text = line.replace(f":{config.server.port}/", f":{app.port}/")
        if line.startswith("WARNING: "):
            log.warning("%s", text.removeprefix("WARNING: "))
        else:
            log.info("%s", text)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: closing connections")
    await app.stop()


def _run(coro_config: Config, sock: socket.socket | None = None) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(coro_config, sock))
    else:
        uvloop.run(serve(coro_config, sock))


def run(config: Config, sock: socket.socket | None = None) -> int:
    """Serve one process until SIGINT/SIGTERM (on ``sock`` if given); the exit code."""
    try:
        _run(config, sock)
    except ConfigError as exc:
        print(f"livehub: configuration error: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"livehub: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


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
    args = parser.parse_args(argv)
    try:
        config = load(args)
    except ConfigError as exc:
        print(f"livehub: configuration error: {exc.message}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if config.broker.workers > 1:
        from livehub.workers import supervise
        try:
            return supervise(config)
        except OSError as exc:
            print(f"livehub: cannot start: {exc}", file=sys.stderr)
            return 1
    return run(config)
