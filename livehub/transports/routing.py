"""What a protocol plug-in sees of the application: a router, and the exchange of a request.

Protocols (``livehub.protocols.*``) never import the application; the composition root
(``livehub.app``) builds the ``ServerContext``, hands a ``Router`` to each protocol's
``install`` and owns the listening socket.  An endpoint gets the request and its ``Exchange``:
the HTTP/1.1 connection it arrived on (``transports.http.HttpConnection``), or one stream of
an HTTP/2 connection (``transports.h2``), or whatever else implements the protocol (an ASGI
runner); the endpoint's code is the same for all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from livehub.transports.context import ServerContext
from livehub.transports.messages import Request, Response

P = TypeVar("P", bound=asyncio.BaseProtocol)


class Exchange(Protocol):
    """One request being answered, seen from its endpoint.

    An endpoint answers with a ``Response`` (the exchange sends it, with ``extra_headers``),
    or takes the exchange over for a long-lived answer (SSE, HTTP streaming, WebSocket):
    ``take_over(factory)`` hands the factory an ``asyncio.Transport`` that carries this
    exchange's response body from then on (the socket itself on HTTP/1.1; on HTTP/2 one
    stream, flow-controlled: its ``get_write_buffer_size`` counts what the peer's window does
    not let out yet, so the slow-consumer rule of ``Outgoing`` applies unchanged).

    Guarantees: ``take_over`` happens at most once per exchange and never for ``HEAD``
    (``MethodNotAllowed``); after it, the bytes the factory's protocol writes reach the peer
    in order; ``watch_lost``'s callback runs at most once, and only while the answer is not
    yet sent; ``closing`` is true once the client is gone or the server stops.
    """

    @property
    def closing(self) -> bool:
        """The client went away or the server is stopping: stop waiting (long-polling)."""

    def take_over(self, factory: Callable[[asyncio.Transport], P]) -> tuple[P, bytes]:
        """Hand the exchange to the protocol ``factory`` builds on its transport; return that
        protocol and the bytes received after the request (a WebSocket frame glued to the
        handshake), which the caller feeds once it has answered."""

    def stream_head(self, request: Request, status: int,
                    headers: list[tuple[str, str]]) -> bytes:
        """The response head of a taken-over exchange: the bytes to write first (HTTP/1.1),
        or b"" when the exchange sends the head itself (HTTP/2: a HEADERS frame, without the
        connection-specific fields of RFC 9113 §8.2.2)."""

    def extra_headers(self, request: Request) -> list[tuple[str, str]]:
        """Headers every answer to ``request`` carries (CORS)."""

    def watch_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` if the client goes away while the answer is being prepared."""


Endpoint = Callable[[ServerContext, Request, Exchange], Awaitable[Response | None]]
"""An endpoint: answers with a ``Response``, or takes the exchange over and returns None."""
Handler = Callable[[Request, Exchange], Awaitable[Response | None]]
"""An endpoint bound to its context: what a connection calls for one request."""
Precheck = Callable[[ServerContext, Request], None]
"""Judges a request from its head (raises ``LivehubError``), e.g. its credentials: run before
``100 Continue`` is sent to a client that waits for it before sending a body."""


class Router(Protocol):
    """Where a protocol mounts its endpoints."""

    @property
    def ctx(self) -> ServerContext:
        """The shared context (hub, settings, flusher, live connections)."""

    def route(self, path: str, methods: frozenset[str], endpoint: Endpoint, *,
              precheck: Precheck | None = None) -> None:
        """Serve ``methods`` on ``path`` with ``endpoint`` (OPTIONS handled by the app; HEAD,
        when listed, gets the endpoint's answer without its body).  A ``path`` ending in
        ``/*`` serves every path under it that has no route of its own."""
