"""What a protocol plug-in sees of the application: a router it registers its endpoints on.

Protocols (``livehub.protocols.*``) never import the application; the composition root
(``livehub.app``) builds the ``ServerContext``, hands a ``Router`` to each protocol's
``install`` and owns the listening socket.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from livehub.transports.context import ServerContext
from livehub.transports.http import HttpConnection, Request, Response

Endpoint = Callable[[ServerContext, Request, HttpConnection], Awaitable[Response | None]]
"""An endpoint: answers with a ``Response``, or takes the connection over and returns None."""
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
        when listed, gets the endpoint's answer without its body)."""
