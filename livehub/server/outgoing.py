"""Outgoing buffers of long-lived connections: coalesced writes and the slow-consumer rule.

Fan-out calls ``Outgoing.write`` for every subscriber; that only appends to a list.  The first
write of a loop iteration registers the connection with the loop's ``Flusher``, which, once per
iteration, joins each dirty connection's pending bytes into one ``transport.write``: many
publications to one subscriber cost one system call.  After the write, a connection whose
transport still holds more than ``max_buffer`` unsent bytes is a slow consumer: it is closed
with disconnect code 3008 (``Disconnect.SLOW``) and resumes from history when it reconnects;
the publisher and the other subscribers never wait for it.
"""

from __future__ import annotations

import asyncio
import logging

from livehub.codes import Disconnect, DisconnectInfo

log = logging.getLogger(__name__)


class Flusher:
    """Writes the pending bytes of every dirty connection once per loop iteration."""

    __slots__ = ("_dirty", "_loop", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[Outgoing] = []
        self._scheduled = False

    def mark(self, conn: Outgoing) -> None:
        self._dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        # The per-delivery hot path: ``Outgoing.flush`` inlined.
        self._scheduled = False
        dirty = self._dirty
        self._dirty = []
        for conn in dirty:
            pending = conn._pending
            conn._pending = None
            if pending is None or conn.closed:
                continue
            transport = conn.transport
            transport.write(pending if type(pending) is bytes else b"".join(pending))  # type: ignore[arg-type]
            if transport.get_write_buffer_size() > conn.max_buffer:
                conn.on_slow()


class Outgoing:
    """Base of long-lived connections that receive fan-out (SSE, HTTP streaming, WebSocket).

    Subclasses implement ``close`` (how to say goodbye on their wire) and may override
    ``on_slow``.
    """

    __slots__ = ("_flusher", "_pending", "closed", "max_buffer", "transport")

    def __init__(self, transport: asyncio.Transport, flusher: Flusher, max_buffer: int) -> None:
        self.transport = transport
        self._flusher = flusher
        self._pending: bytes | list[bytes] | None = None
        """None, one message (the common case: no list), or several to join."""
        self.max_buffer = max_buffer
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        pending = self._pending
        if pending is None:
            self._pending = data
            self._flusher.mark(self)
        elif type(pending) is bytes:
            self._pending = [pending, data]
        else:
            pending.append(data)  # type: ignore[union-attr]

    def flush(self) -> None:
        pending = self._pending
        self._pending = None
        if pending is None or self.closed:
            return
        transport = self.transport
        transport.write(pending if type(pending) is bytes else b"".join(pending))  # type: ignore[arg-type]
        if transport.get_write_buffer_size() > self.max_buffer:
            self.on_slow()

    def flush_now(self) -> None:
        """Write what is pending right away (before closing)."""
        self.flush()

    def on_slow(self) -> None:
        log.info("closing slow consumer %s (%d bytes unsent)", self.peer(),
                 self.transport.get_write_buffer_size())
        self.close(Disconnect.SLOW)

    def close(self, info: DisconnectInfo) -> None:
        raise NotImplementedError

    def peer(self) -> str:
        addr = self.transport.get_extra_info("peername")
        return f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else "?"
