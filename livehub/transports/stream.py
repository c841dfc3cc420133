"""The one stream connection: a taken-over HTTP response that only sends (SSE, NDJSON...).

Every protocol's SSE and HTTP-streaming endpoints use it (``/events`` and ``/stream`` of the
plain protocol, Centrifugo's ``/connection/sse`` and ``/connection/http_stream`` and their
unidirectional forms).  A protocol describes its wire with a ``StreamFraming`` (content type,
chunked or not, heartbeat, the goodbye message) and opens the stream with ``open_stream``; the
connection owns the rest: the response head, buffering (``Outgoing``), ignoring input up to a
bound, the goodbye and closing, and releasing what it holds when the socket goes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from livehub.codes import Disconnect, DisconnectInfo
from livehub.core.hub import Subscription
from livehub.transports.context import ServerContext
from livehub.transports.messages import Request, Response
from livehub.transports.outgoing import Outgoing
from livehub.transports.routing import Exchange

log = logging.getLogger(__name__)

MAX_IGNORED_INPUT = 64 * 1024
"""Bytes a stream's client may send (ignored) before it is closed with 3501."""
CLOSE_TIMEOUT = 3.0
"""Seconds a peer that never reads may keep a closed stream's socket and its buffer."""
LAST_CHUNK = b"0\r\n\r\n"
"""The end of a chunked body (RFC 9112 §7.1)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamFraming:
    """How one kind of stream looks on the wire; the protocol chooses, the connection applies."""

    content_type: str
    chunked: bool
    """An HTTP/1.1 chunked body (its messages are chunks, the goodbye is followed by the last
    chunk), or a body that ends with the connection (SSE, HTTP/1.0 clients)."""
    goodbye: Callable[[DisconnectInfo], bytes]
    """The last message, framed: why the stream ends (a ``disconnect`` event or line)."""
    heartbeat: bytes | None = None
    """Written on every heartbeat tick; None when the protocol pings on its own."""
    preamble: bytes = b""
    """Written right after the response head (SSE ``retry:``)."""

    def headers(self, extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The response headers of a stream (``extra``: CORS and the like)."""
        # a stream ends with the server closing the socket: say so even when chunked, or a
        # client pool reuses the socket for its next request after the last chunk (RFC 9112
        # §9.6)
        framing = [("transfer-encoding", "chunked")] if self.chunked else []
        return [("content-type", self.content_type), *self.head_headers(), *extra, *framing,
                ("connection", "close")]

    @staticmethod
    def head_headers() -> list[tuple[str, str]]:
        """Headers that keep proxies from buffering or caching the stream."""
        return [("cache-control", "no-cache, no-transform"), ("x-accel-buffering", "no")]

    def head_response(self) -> Response:
        """The answer to ``HEAD``: the head a ``GET`` would get, no stream (RFC 9110 §9.3.2)."""
        return Response(200, content_type=self.content_type, headers=self.head_headers(),
                        streamed=True)


class StreamConnection(Outgoing, asyncio.Protocol):
    """A taken-over HTTP response that only sends; input is ignored up to a bound.

    ``subscription`` (if set) is released when the connection ends; subclasses that hold more
    (a protocol session) override ``on_closed``, which runs exactly once.
    """

    __slots__ = ("_ctx", "_framing", "_ignored", "authenticated", "subscription")

    def __init__(self, ctx: ServerContext, transport: asyncio.Transport,
                 framing: StreamFraming) -> None:
        super().__init__(transport, ctx.flusher, ctx.settings.max_buffer)
        self._ctx = ctx
        self._framing = framing
        self._ignored = 0
        self.subscription: Subscription | None = None
        self.authenticated = ""
        """The user of the credentials it was opened with ("": anonymous)."""
        ctx.connections[self] = time.monotonic()

    def data_received(self, data: bytes) -> None:
        self._ignored += len(data)
        if self._ignored > MAX_IGNORED_INPUT:
            self.close(Disconnect.BAD_REQUEST)

    def connection_lost(self, exc: Exception | None) -> None:
        self._drop()

    def heartbeat(self, now: float) -> None:
        beat = self._framing.heartbeat
        if beat is not None:
            self.write(beat)

    def goodbye(self, info: DisconnectInfo) -> None:
        transport = self.transport
        if not transport.is_closing():
            framing = self._framing
            last = framing.goodbye(info)
            transport.write(last + LAST_CHUNK if framing.chunked else last)
            transport.close()
            # a peer that never reads must not keep the socket and its buffer forever
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, transport.abort)
        self._drop()

    def _drop(self) -> None:
        self.closed = True
        opened = self._ctx.connections.pop(self, None)
        if opened is not None:
            self._ctx.stats.ended(self, opened)
            self.on_closed()

    @property
    def transport_name(self) -> str:
        return "sse" if self._framing.content_type.startswith("text/event-stream") \
            else "http_stream"

    def channels(self) -> tuple[str, ...]:
        return () if self.subscription is None else self.subscription.channels

    def user(self) -> str:
        return self.authenticated

    def on_closed(self) -> None:
        """Release what the connection holds (once, when it ends)."""
        if self.subscription is not None:
            self._ctx.node.unsubscribe(self.subscription)


S = TypeVar("S", bound=StreamConnection)


def open_stream(exchange: Exchange, request: Request, framing: StreamFraming,
                factory: Callable[[asyncio.Transport], S], *,
                headers: Sequence[tuple[str, str]] = ()) -> S:
    """Take ``exchange`` over with the stream ``factory`` builds and send the response head
    (with ``headers`` of the protocol's own) and the framing's preamble through it."""
    conn, _ = exchange.take_over(factory)
    head = exchange.stream_head(request, 200,
                                framing.headers([*exchange.extra_headers(request), *headers]))
    conn.write(head + framing.preamble)
    return conn
