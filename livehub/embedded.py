"""``livehub.Hub``: a hub inside a Python process (publish, history, presence, ASGI, serve).

A ``Hub`` is the same node the standalone server runs (``livehub.serve.build_app``): the same
broker (memory, or Redis shared with standalone servers), the same protocols and the same
rules.  It is created without an event loop (at import time of the host app) and starts on
the first use, or explicitly with ``start``, ``async with hub``, or the host framework's
lifespan (``FastAPI(lifespan=hub.lifespan)``).  Its endpoints are reached either through the
ASGI adapter (``hub.asgi()``, mounted in the host app) or through livehub's own server on a
port of its own (``async with hub.serve(port=8001)``), or both at once.

Theory of operation: the ``App`` (routes, context, flusher) is built in ``start``, inside the
running loop, because the flusher and the heartbeats belong to a loop.  ``start`` is
idempotent and guarded by a lock, so concurrent first requests start the node once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

from livehub.app import App
from livehub.asgi import AsgiApp, Authenticate
from livehub.asgi.types import ASGIApp
from livehub.config import Config, load
from livehub.errors import ConfigError
from livehub.results import History, Member, Message, Published
from livehub.serve import build_app
from livehub.wire.cursor import StreamPosition, encode_cursor
from livehub.wire.payload import PayloadKind

__all__ = ["Hub", "decode_payload", "encode_payload"]


def encode_payload(data: object) -> tuple[bytes, PayloadKind]:
    """A Python value as a payload: ``bytes`` stay binary, ``str`` is text, anything else is
    encoded as compact JSON (as the server API does with its ``data`` field).

    Raises ``TypeError`` for what JSON cannot hold, ``ValueError`` for NaN or infinity."""
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data), PayloadKind.BINARY
    if isinstance(data, str):
        return data.encode(), PayloadKind.TEXT
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode(), PayloadKind.JSON


def decode_payload(data: bytes, kind: PayloadKind) -> Any:
    """The Python value of a stored payload (the inverse of ``encode_payload``)."""
    if kind is PayloadKind.JSON:
        return json.loads(data)
    if kind is PayloadKind.TEXT:
        return data.decode()
    return data


def _config(config: Config | str | os.PathLike[str] | None, broker: str | None) -> Config:
    if config is None:
        # a library's defaults: no built-in examples (the clock channel, /echo)
        cfg = load(environ={})
        cfg = dataclasses.replace(cfg, server=dataclasses.replace(cfg.server, echo=False,
                                                                  clock=False))
    elif isinstance(config, Config):
        cfg = config
    else:
        cfg = load(argparse.Namespace(config=os.fspath(config)), environ={})
    if broker is None:
        return cfg
    if broker == "memory":
        settings = dataclasses.replace(cfg.broker, broker="memory")
    elif broker.startswith(("redis://", "rediss://", "unix://")):
        settings = dataclasses.replace(cfg.broker, broker="redis", redis_url=broker)
    else:
        raise ConfigError(f"broker must be 'memory' or a redis:// URL, not {broker!r}")
    return dataclasses.replace(cfg, broker=settings)


class Hub:
    """One livehub node embedded in this process.

    ``broker``: ``"memory"`` (the default: this process only) or a Redis URL
    (``"redis://host:6379/0"``: shared with every other hub and ``livehub serve`` process on
    that Redis).  ``config``: a ``livehub.config.Config`` or the path of a TOML file like the
    server's (``docs/configuration``); by default the built-in defaults, without the clock and
    echo examples.  ``authenticate``: the default hook of ``asgi()`` (see there).

    Every method may be called before ``start``: the hub then starts in the running loop.
    """

    def __init__(self, *, broker: str | None = None,
                 config: Config | str | os.PathLike[str] | None = None,
                 authenticate: Authenticate | None = None) -> None:
        self.config = _config(config, broker)
        self._authenticate = authenticate
        self._app: App | None = None
        self._lock: asyncio.Lock | None = None
        self._listeners = 0

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._app is not None

    @property
    def api_key(self) -> str | None:
        """The server API key (generated at random unless the config sets one)."""
        return self.config.server.api_key

    async def start(self) -> None:
        """Connect the broker and start the periodic work (heartbeats, token expiry);
        idempotent."""
        await self._started()

    async def _started(self) -> App:
        app = self._app
        if app is not None:
            return app
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._app is None:
                app = build_app(self.config)
                await app.ctx.node.start()
                app.start_tasks()
                self._app = app
            return self._app

    async def stop(self, drain: float = 2.0) -> None:
        """Tell every connection the hub is going away (disconnect 3001 / close 1001), wait
        up to ``drain`` seconds for them to close, disconnect the broker."""
        app, self._app = self._app, None
        if app is not None:
            await app.stop(drain)

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """The lifespan of a host app: ``FastAPI(lifespan=hub.lifespan)``,
        ``Starlette(lifespan=hub.lifespan)``."""
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    # -- publishing and reading ------------------------------------------------------------

    async def publish(self, channel: str, data: object, *, event: str | None = None
                      ) -> Published:
        """Publish ``data`` to ``channel``: stored in history and delivered to every
        subscriber, on every transport and every node of the broker.

        ``bytes`` are sent as binary (base64 on text-only transports), ``str`` as text,
        anything else as JSON.  ``event`` names the SSE event.  Raises
        ``livehub.errors.LivehubError`` subclasses: ``BadChannel``, ``UnknownNamespace``,
        ``PayloadTooLarge``, ``Unavailable`` (the broker cannot serve now: retry)."""
        payload, kind = encode_payload(data)
        app = await self._started()
        position = await app.ctx.node.publish(channel, payload, kind, event=event)
        return _published(channel, position)

    async def history(self, channel: str, *, limit: int | None = None,
                      since: Published | None = None) -> History:
        """The retained publications of ``channel``, oldest first: the newest ``limit``
        ones (all by default), or those after ``since``."""
        app = await self._started()
        node = app.ctx.node
        position = None if since is None else StreamPosition(since.epoch, since.offset)
        result = await node.history(channel, since=position)
        pubs = list(result.publications)
        if limit is not None:
            pubs = pubs[-limit:] if limit > 0 else []
        messages = [Message(channel, decode_payload(p.data, p.kind), p.position.offset,
                            p.event) for p in pubs]
        top = result.top
        return History(channel, messages, top.offset, top.epoch,
                       encode_cursor({channel: top}))

    async def presence(self, channel: str) -> dict[str, Member]:
        """Who is subscribed to ``channel`` (a namespace with ``presence = true``), by client
        id, across every node of the broker."""
        app = await self._started()
        node = app.ctx.node
        node.options(channel)
        entries = await node.presence_of(channel)
        return {client: Member(info.client, info.user,
                               None if info.conn_info is None else json.loads(info.conn_info))
                for client, info in entries.items()}

    # -- front ends --------------------------------------------------------------------------

    def asgi(self, *, prefix: str = "", authenticate: Authenticate | None = None,
             fallback: ASGIApp | None = None) -> ASGIApp:
        """The hub's endpoints as an ASGI application (``livehub.asgi``): mount it
        (``app.mount("/live", hub.asgi())``), or serve it with a ``prefix`` and a
        ``fallback`` app for every other path (Django: ``hub.asgi(prefix="/live",
        fallback=get_asgi_application())``).  As the top-level app it also runs the hub's
        lifespan.

        ``authenticate(scope)`` (sync or async) returns the user id of a request from the
        host app's own session, or None (then tokens decide, then anonymous); the permission
        model treats the request as that user's, on every endpoint."""
        return AsgiApp(self._started, prefix=prefix,
                       authenticate=authenticate or self._authenticate, fallback=fallback,
                       lifespan=(self.start, self.stop))

    @contextlib.asynccontextmanager
    async def serve(self, *, host: str | None = None, port: int | None = None,
                    sock: socket.socket | None = None) -> AsyncIterator[int]:
        """``async with hub.serve(port=8001) as port:`` runs livehub's own server (HTTP/1.1 on
        uvloop/httptools, every endpoint of ``livehub serve``) for this hub inside the running
        event loop, next to the host app's code; yields the port (``port=0`` picks a free
        one).  Leaving the block stops listening, and stops the hub if the block started it.

        (A method rather than ``livehub.serve(hub)``: ``livehub.serve`` is the module of the
        ``livehub serve`` command.)"""
        owner = not self.started
        app = await self._started()
        if self._listeners:
            raise ConfigError("this hub already listens: one listener per hub")
        if sock is None and (host is not None or port is not None):
            sock = socket.create_server((host or app.ctx.settings.host,
                                         app.ctx.settings.port if port is None else port),
                                        backlog=4096, reuse_port=False)
        await app.listen(sock)
        self._listeners += 1
        try:
            yield app.port
        finally:
            self._listeners -= 1
            app.stop_listening()
            if owner:
                await self.stop()


def _published(channel: str, position: StreamPosition) -> Published:
    return Published(channel, position.offset, position.epoch,
                     encode_cursor({channel: position}))

