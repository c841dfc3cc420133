"""Outgoing buffers of long-lived connections: coalesced writes and the slow-consumer rule.

Fan-out calls ``Outgoing.write`` for every subscriber; that only appends to a list.  The first
write of a loop iteration registers the connection with the loop's ``Flusher``, which, once per
iteration, joins each dirty connection's pending bytes into one ``transport.write``: many
publications to one subscriber cost one system call.

The slow-consumer rule (documented in ``docs/limits.md``): a connection may always hold one
message, whatever its size.  It is a slow consumer when the bytes it holds exceed
``max_buffer`` by more than the largest message among them: the bytes queued within one loop
turn (checked on every write), or the bytes its transport still holds after a flush (checked
after the write; "the largest message" is then the largest written since the transport last
held ``max_buffer`` or less).  A slow consumer is closed with disconnect code 3008
(``Disconnect.SLOW``) and resumes from history when it reconnects; the publisher and the other
subscribers never wait for it.

The batching window (``write_delay``, global in ``[server]`` and per namespace, off by default):
a connection with a window is not written at the end of the loop turn of its first pending write
but ``write_delay`` seconds later, so the publications of a window share one ``send()``.  The
window opens with the first write to a windowed connection that holds nothing and closes
``write_delay`` later for every connection that joined it meanwhile (one timer per open window,
not per connection).  What a window adds to a message's latency is at most the delay plus the loop's
lateness in running the timer (uvloop's timers have a resolution of 1 ms); the Flusher keeps the
count of windows, the connections written by them and the time each window really stayed open
(``window_stats``).  Order is kept (one queue per connection), nothing is dropped, the
slow-consumer rule is the same (the bytes queued in a window are the bytes queued in a turn),
and ``close`` writes what is pending at once.

One connection's failure is its own: an exception from one connection while it is flushed or
says goodbye (a bug) is logged once, with its traceback, and that connection's socket is
aborted; the flush goes on with the next connection.  The ``try`` costs nothing while no
exception is raised (CPython 3.11 zero-cost exceptions).
"""

from __future__ import annotations

import abc
import asyncio
import logging
import sys
import time
from typing import ClassVar

from livehub.codes import Disconnect, DisconnectInfo
from livehub.errors import LivehubError
from livehub.ratelog import RateLimitedLog

log = logging.getLogger(__name__)
rlog = RateLimitedLog(log)

CATCH_UP = sys.maxsize
"""``Outgoing._limit`` during a catch-up: the replay is bounded by history, not by the buffer."""


class Flusher:
    """Writes the pending bytes of every dirty connection once per loop iteration, or once per
    batching window for connections that have one (module docstring)."""

    __slots__ = ("_dirty", "_loop", "_scheduled", "_windows", "window_connections",
                 "window_wait_max", "window_wait_total", "windows", "write_delay")

    def __init__(self, loop: asyncio.AbstractEventLoop, *, write_delay: float = 0.0) -> None:
        self._loop = loop
        self._dirty: list[Outgoing] = []
        self._scheduled = False
        self._windows: dict[float, list[Outgoing]] = {}
        """Connections waiting for their window to close, by delay (open windows only)."""
        self.write_delay = write_delay
        """The server's window (``[server] write_delay``): connections whose subscriptions
        named none use it."""
        self.windows = 0
        """Windows closed so far."""
        self.window_connections = 0
        """Connection writes done by closing windows."""
        self.window_wait_total = 0.0
        """Seconds the closed windows stayed open, summed (their mean is the mean added wait of
        each window's first message, an upper bound of every other one's)."""
        self.window_wait_max = 0.0

    def mark(self, conn: Outgoing) -> None:
        delay = conn._delay
        if delay is None:
            delay = self.write_delay
        if delay:
            held = self._windows.get(delay)
            if held is None:
                held = self._windows[delay] = []
                self._loop.call_later(delay, self._close_window, delay, time.monotonic())
            held.append(conn)
            return
        self._dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def _close_window(self, delay: float, opened: float) -> None:
        held = self._windows.pop(delay)
        waited = time.monotonic() - opened
        self.windows += 1
        self.window_connections += len(held)
        self.window_wait_total += waited
        self.window_wait_max = max(self.window_wait_max, waited)
        self._write(held)

    def window_stats(self) -> dict[str, float]:
        """What the batching windows did: count, connections written, mean and max wait (s)."""
        mean = self.window_wait_total / self.windows if self.windows else 0.0
        return {"windows": self.windows, "connections": self.window_connections,
                "wait_mean_s": mean, "wait_max_s": self.window_wait_max}

    def flush(self) -> None:
        self._scheduled = False
        dirty = self._dirty
        self._dirty = []
        self._write(dirty)

    @staticmethod
    def _write(dirty: list[Outgoing]) -> None:
        # The per-delivery hot path: ``Outgoing.flush`` inlined.
        for conn in dirty:
            pending = conn._pending
            conn._pending = None
            if pending is None or conn.closed:
                continue
            try:
                transport = conn.transport
                if type(pending) is bytes:
                    conn.sent_messages += 1
                    data = pending
                else:
                    conn.sent_messages += len(pending)
                    data = b"".join(pending)  # type: ignore[arg-type]
                conn.sent_bytes += len(data)
                transport.write(data)
                unsent = transport.get_write_buffer_size()
                if unsent > conn._limit or conn._allowance:
                    conn.check_buffer(unsent, pending)
            except Exception:  # noqa: BLE001 - this connection's bug, logged; others go on
                conn.abort("flushing")


class Outgoing(abc.ABC):
    """Base of long-lived connections that receive fan-out (SSE, HTTP streaming, WebSocket).

    Subclasses implement ``goodbye`` (say why on their wire and close the socket, whatever
    is pending) and ``heartbeat``; ``close`` flushes first.  The slow-consumer rule is in the
    module docstring: ``_allowance`` is the largest message held beyond ``max_buffer`` (0 when
    the connection holds at most ``max_buffer``), ``_limit`` is ``max_buffer + _allowance``, so
    the per-write check is one comparison.  A catch-up (the replay of missed publications on
    resume, bounded by history) is exempt: between ``begin_catch_up`` and ``end_catch_up``
    nothing is limited, and the size of the queued replay becomes the allowance until the
    transport drains to ``max_buffer`` once.
    """

    __slots__ = ("_allowance", "_delay", "_flusher", "_limit", "_pending", "_queued", "closed",
                 "ended", "max_buffer", "sent_bytes", "sent_messages", "transport")

    internal_error: ClassVar[DisconnectInfo] = Disconnect.SERVER_ERROR
    """What this wire says when a bug ends the connection (3004; a WebSocket says 1011)."""
    going_away: ClassVar[DisconnectInfo] = Disconnect.SHUTDOWN
    """What this wire says when the server drains: reconnect, to another node (3001)."""
    protocol: ClassVar[str] = "plain"
    """The protocol label of metrics and logs (``plain``, ``centrifugo``...)."""

    def __init__(self, transport: asyncio.Transport, flusher: Flusher, max_buffer: int) -> None:
        self.transport = transport
        self._flusher = flusher
        self._pending: bytes | list[bytes] | None = None
        """None, one message (the common case: no list), or several to join."""
        self._queued = 0
        """Bytes queued in this loop turn (meaningful while ``_pending`` is not None)."""
        self._allowance = 0
        self._limit = max_buffer
        self._delay: float | None = None
        """This connection's batching window in seconds; None: the server's (``Flusher``)."""
        self.max_buffer = max_buffer
        self.closed = False
        self.sent_messages = 0
        """Messages written to the socket (counted once per flush, never per write)."""
        self.sent_bytes = 0
        self.ended: DisconnectInfo | None = None
        """Why the connection ended (the goodbye it said, or the peer's close code)."""

    def narrow_window(self, delay: float | None) -> None:
        """A subscription of this connection asks for batching window ``delay`` (its
        namespace's ``write_delay``; None: the server's).  The first subscription sets the
        connection's window, later ones can only shorten it: a connection in several
        namespaces gets the smallest of their windows."""
        if delay is None:
            delay = self._flusher.write_delay
        current = self._delay
        self._delay = delay if current is None else min(current, delay)

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
        if self._queued > self._limit:
            self._over_limit(data)
        elif type(pending) is bytes:
            self._pending = [pending, data]
        else:
            pending.append(data)  # type: ignore[union-attr]

    def _over_limit(self, data: bytes) -> None:
        # More than max_buffer + allowance queued: allowed while the excess is one message.
        pending = self._pending
        queue = [pending, data] if type(pending) is bytes else [*pending, data]  # type: ignore[misc]
        largest = max(map(len, queue))
        if self._queued - largest > self.max_buffer:
            self._overflow()
            return
        self._pending = queue
        self._allow(largest)

    def _allow(self, largest: int) -> None:
        """Tolerate ``largest`` bytes beyond ``max_buffer`` (the largest message held)."""
        if largest > self._allowance:
            self._allowance = largest
            if self._limit != CATCH_UP:
                self._limit = self.max_buffer + largest

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
        if type(pending) is bytes:
            self.sent_messages += 1
            data = pending
        else:
            self.sent_messages += len(pending)
            data = b"".join(pending)  # type: ignore[arg-type]
        self.sent_bytes += len(data)
        transport.write(data)
        unsent = transport.get_write_buffer_size()
        if unsent > self._limit or self._allowance:
            self.check_buffer(unsent, pending)

    def check_buffer(self, unsent: int, written: bytes | list[bytes]) -> None:
        """The slow-consumer rule after a flush of ``written`` (``unsent``: bytes the transport
        still holds)."""
        if self._limit == CATCH_UP:
            return
        if unsent <= self.max_buffer:
            self._allowance = 0
            self._limit = self.max_buffer
            return
        self._allow(len(written) if isinstance(written, bytes) else max(map(len, written)))
        if unsent > self._limit:
            self.on_slow()

    def begin_catch_up(self) -> None:
        self._limit = CATCH_UP

    def end_catch_up(self) -> None:
        self._limit = self.max_buffer + self._allowance
        if self._pending is not None:
            self._allow(self._queued)

    def on_slow(self) -> None:
        """The transport holds more than ``max_buffer`` + the allowance after a flush."""
        self._pending = None
        self.closed = True
        self._slow_goodbye()

    def _slow_goodbye(self) -> None:
        rlog.info("slow-consumer", "closing slow consumer %s (%d bytes unsent)", self.peer(),
                  self.transport.get_write_buffer_size())
        self._goodbye(Disconnect.SLOW)

    def close(self, info: DisconnectInfo) -> None:
        """Send what is pending, then say goodbye with ``info``."""
        if self.closed:
            return
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - this connection's bug, logged
            self.abort("flushing")
            return
        self.closed = True
        self._goodbye(info)

    def _goodbye(self, info: DisconnectInfo) -> None:
        if self.ended is None:
            self.ended = info
        try:
            self.goodbye(info)
        except Exception:  # noqa: BLE001 - this connection's bug, logged
            self.abort("saying goodbye")

    def fail(self, exc: Exception) -> None:
        """The endpoint that took this connection over failed with ``exc`` (logged by the
        caller): end the connection with the documented code, a ``LivehubError``'s own close
        code or else ``internal_error``; what it holds is released as it closes."""
        self.close(self.failure(exc))

    def failure(self, exc: Exception) -> DisconnectInfo:
        """The code and reason that end a connection whose endpoint failed with ``exc``."""
        if isinstance(exc, LivehubError):
            return DisconnectInfo(exc.close_code, exc.message)
        return self.internal_error

    def abort(self, doing: str) -> None:
        """This connection failed unexpectedly while ``doing`` something (call from an
        ``except`` block): log it once with the traceback and abort the socket, whose
        ``connection_lost`` releases what the connection holds."""
        rlog.exception("outgoing-failed", "connection %s failed while %s; aborted",
                       self.peer(), doing)
        self._pending = None
        self.closed = True
        self.transport.abort()

    @abc.abstractmethod
    def goodbye(self, info: DisconnectInfo) -> None:
        """Tell the peer why (on this wire) and close the socket; pending bytes are dropped."""

    @abc.abstractmethod
    def heartbeat(self, now: float) -> None:
        """The periodic keepalive tick (a ping, a heartbeat comment, or nothing)."""

    @property
    def transport_name(self) -> str:
        """The transport label of metrics and logs (``websocket``, ``sse``...)."""
        return "other"

    def channels(self) -> tuple[str, ...]:
        """The channels this connection follows (for its log line)."""
        return ()

    def user(self) -> str:
        """The user this connection authenticated as ("" when anonymous)."""
        return ""

    def peer(self) -> str:
        addr = self.transport.get_extra_info("peername")
        return f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else "?"
