"""Run one server process: build the node from its config, serve until SIGINT/SIGTERM, drain."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import sys

from livehub.app import App
from livehub.backend import build as build_backend
from livehub.config import Config, describe
from livehub.core.node import Node
from livehub.errors import ConfigError
from livehub.ratelog import RateLimitedLog

log = logging.getLogger("livehub")
ratelog = RateLimitedLog(log, lines=1)
"""One line per kind of refusal per period, then a count of the suppressed ones."""


def build_app(config: Config) -> App:
    broker, presence = build_backend(config.broker, config.limits)
    node = Node(broker, config.namespaces, presence=presence, limits=config.limits)
    return App.create(node, config.server, centrifugo=config.centrifugo, auth=config.auth,
                      admin=config.admin, demo_secret=config.demo_secret,
                      production=config.production, mercure=config.mercure,
                      mercure_auth=config.mercure_auth)


async def serve(config: Config, sock: socket.socket | None = None) -> None:
    log_accept_failures(asyncio.get_running_loop())
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

    def on_signal() -> None:
        if stop.is_set():
            app.drain.hurry.set()  # a second signal: skip the waits of the drain
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    loop.add_signal_handler(signal.SIGHUP, app.reload_tls)
    await stop.wait()
    log.info("shutting down: draining connections")
    await app.drain.run(app)


def log_accept_failures(loop: asyncio.AbstractEventLoop) -> None:
    """asyncio's loop reports ``accept()`` failing for lack of descriptors (EMFILE, ulimit
    -n) to the loop's exception handler, once per failure: log it as one rate-limited line.
    (uvloop drops such connections inside libuv without telling; ``Admission`` warns from the
    descriptor numbers instead.)"""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
            ratelog.warning("emfile", "cannot accept connections: %s (raise ulimit -n or "
                            "lower max_connections)", exc.strerror)
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


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
