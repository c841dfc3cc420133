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
            unsent = transport.get_write_buffer_size()
            if unsent > conn.max_buffer or conn._allowance:
                conn.check_buffer(unsent)


class Outgoing:
    """Base of long-lived connections that receive fan-out (SSE, HTTP streaming, WebSocket).

    Subclasses implement ``goodbye`` (say why on their wire and close the socket, whatever
    is pending); ``close`` flushes first.  Two limits make a slow consumer: more than
    ``max_buffer`` bytes queued within one loop turn (checked on every write: the queue is
    dropped, the client resumes from its last cursor, which precedes it), or more than
    ``max_buffer`` bytes left in the transport after a flush.  A catch-up (the replay of missed
    publications on resume, bounded by history) is exempt: between ``begin_catch_up`` and
    ``end_catch_up`` the queue is not limited, and its size becomes an allowance on top of
    ``max_buffer`` until the transport drains below ``max_buffer`` once.
    """

    __slots__ = ("_allowance", "_flusher", "_pending", "_queued", "closed", "max_buffer",
                 "transport")

    def __init__(self, transport: asyncio.Transport, flusher: Flusher, max_buffer: int) -> None:
        self.transport = transport
        self._flusher = flusher
        self._pending: bytes | list[bytes] | None = None
        """None, one message (the common case: no list), or several to join."""
        self._queued = 0
        self._allowance = 0
        """Extra unsent bytes tolerated after a catch-up; -1 during one."""
        self.max_buffer = max_buffer
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        pending = self._pending
        if pending is None:
            self._pending = data
            self._queued = len(data)
            self._flusher.mark(self)
            return
        self._queued += len(data)
        if self._queued > self.max_buffer and self._allowance >= 0:
            self._overflow()
        elif type(pending) is bytes:
            self._pending = [pending, data]
        else:
            pending.append(data)  # type: ignore[union-attr]

    def _overflow(self) -> None:
        # Inside fan-out: drop the queue now, say goodbye on the next loop turn.
        self._pending = None
        self.closed = True
        asyncio.get_running_loop().call_soon(self._slow_goodbye)

    def flush(self) -> None:
        pending = self._pending
        self._pending = None
        if pending is None or self.closed:
            return
        transport = self.transport
        transport.write(pending if type(pending) is bytes else b"".join(pending))  # type: ignore[arg-type]
        self.check_buffer(transport.get_write_buffer_size())

    def check_buffer(self, unsent: int) -> None:
        """The slow-consumer rule after a write (``unsent``: bytes the transport holds)."""
        if unsent > self.max_buffer:
            if unsent > self.max_buffer + max(self._allowance, 0):
                self.on_slow()
        elif self._allowance > 0:
            self._allowance = 0

    def begin_catch_up(self) -> None:
        self._allowance = -1

    def end_catch_up(self) -> None:
        self._allowance = self._queued if self._pending is not None else 0

    def on_slow(self) -> None:
        """The transport holds more than ``max_buffer`` unsent bytes after a flush."""
        self._pending = None
        self.closed = True
        self._slow_goodbye()

    def _slow_goodbye(self) -> None:
        log.info("closing slow consumer %s (%d bytes unsent)", self.peer(),
                 self.transport.get_write_buffer_size())
        self.goodbye(Disconnect.SLOW)

    def close(self, info: DisconnectInfo) -> None:
        """Send what is pending, then say goodbye with ``info``."""
        if self.closed:
            return
        self.flush()
        self.closed = True
        self.goodbye(info)

    def goodbye(self, info: DisconnectInfo) -> None:
        """Tell the peer why (on this wire) and close the socket; pending bytes are dropped."""
        raise NotImplementedError

    def peer(self) -> str:
        addr = self.transport.get_extra_info("peername")
        return f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else "?"
