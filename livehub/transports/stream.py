"""SSE (``GET /events``) and HTTP streaming (``GET /stream``) endpoints and their connections.

Both take over the socket after validating the request, write the response head, and hand a
write-only ``Outgoing`` connection to the hub.  Resume position comes from ``Last-Event-ID``
(what ``EventSource`` sends on reconnection), ``?last_event_id=`` or ``?cursor=``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from livehub.codes import Disconnect, DisconnectInfo
from livehub.core.hub import Subscription
from livehub.transports.context import ServerContext
from livehub.transports.outgoing import Outgoing

log = logging.getLogger(__name__)

MAX_IGNORED_INPUT = 64 * 1024
CLOSE_TIMEOUT = 3.0


class StreamConnection(Outgoing, asyncio.Protocol):
    """A taken-over HTTP connection that only sends: SSE or newline-delimited JSON."""

    __slots__ = ("_ctx", "_farewell", "_heartbeat_bytes", "_ignored", "subscription")

    def __init__(self, ctx: ServerContext, transport: asyncio.Transport, *,
                 heartbeat: bytes, goodbye: Callable[[DisconnectInfo], bytes]) -> None:
        super().__init__(transport, ctx.flusher, ctx.settings.max_buffer)
        self._ctx = ctx
        self._heartbeat_bytes = heartbeat
        self._farewell = goodbye
        self._ignored = 0
        self.subscription: Subscription | None = None
        ctx.connections[self] = None

    def data_received(self, data: bytes) -> None:
        self._ignored += len(data)
        if self._ignored > MAX_IGNORED_INPUT:
            self.close(Disconnect.BAD_REQUEST)

    def connection_lost(self, exc: Exception | None) -> None:
        self._drop()

    def heartbeat(self, now: float) -> None:
        self.write(self._heartbeat_bytes)

    def goodbye(self, info: DisconnectInfo) -> None:
        transport = self.transport
        if not transport.is_closing():
            transport.write(self._farewell(info))
            transport.close()
            # a peer that never reads must not keep the socket and its buffer forever
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, transport.abort)
        self._drop()

    def _drop(self) -> None:
        self.closed = True
        self._ctx.connections.pop(self, None)
        if self.subscription is not None:
            self._ctx.node.unsubscribe(self.subscription)
