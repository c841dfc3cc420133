"""Run one server process: build the node from its config, serve until SIGINT/SIGTERM, drain."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys

from livehub.app import App
from livehub.backend import build as build_backend
from livehub.config import Config, describe
from livehub.core.node import Node
from livehub.errors import ConfigError

log = logging.getLogger("livehub")


def build_app(config: Config) -> App:
    broker, presence = build_backend(config.broker, config.limits)
    node = Node(broker, config.namespaces, presence=presence, limits=config.limits)
    return App.create(node, config.server, centrifugo=config.centrifugo)


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
