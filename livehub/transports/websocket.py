"""WebSocket endpoints: ``/echo`` (the textbook echo) and ``/ws?channel=...`` (a raw channel).

After the opening handshake (RFC 6455 §4.2) the socket is taken over by a ``WebSocketConnection``
that owns reading, buffering and closing; the hub only ever hands it encoded frames.

Closing (RFC 6455 §7): a peer's Close is answered with a Close echoing its code, then the TCP
connection is closed by us (§7.1.1).  When we close (shutdown, slow consumer, policy) we send a
Close with the code from ``livehub.codes`` and abort the socket if the peer has not finished
the handshake within ``CLOSE_TIMEOUT``.  A protocol violation fails the connection (§7.1.7)
with the parser's code (1002, 1007, 1009).  Keepalive: a ping goes out on every heartbeat tick
without incoming traffic; a peer silent for three ticks is closed with 3012 (no pong).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import cache, partial

from livehub.codes import CloseCode, Disconnect, DisconnectInfo
from livehub.errors import LivehubError
from livehub.transports.context import ServerContext
from livehub.transports.outgoing import Outgoing
from livehub.wire import deflate as pmd
from livehub.wire.handshake import Handshake, response_bytes
from livehub.wire.websocket import (
    BinaryMessage,
    CloseReceived,
    FrameParser,
    Opcode,
    Ping,
    TextMessage,
    encode_close,
    encode_frame,
    encode_ping,
    encode_pong,
)

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 3.0
_PING = encode_ping()


class WebSocketConnection(Outgoing, asyncio.Protocol):
    """A WebSocket after its handshake.  Subclasses say what a message means."""

    __slots__ = ("_closer", "_ctx", "_deflate", "_failed", "_parser", "_quiet_ticks",
                 "frame_binary", "frame_text")

    def __init__(self, ctx: ServerContext, transport: asyncio.Transport,
                 handshake: Handshake) -> None:
        super().__init__(transport, ctx.flusher, ctx.settings.max_buffer)
        self._ctx = ctx
        self._deflate = pmd.Deflater(handshake.deflate) if handshake.deflate else None
        self._parser = FrameParser(max_message_size=ctx.settings.ws_max_message,
                                   deflate=self._deflate)
        self._quiet_ticks = 0
        self._failed = False
        self._closer: asyncio.TimerHandle | None = None
        bits = None if handshake.deflate is None else handshake.deflate.variant_key
        self.frame_text, self.frame_binary = framers(bits)
        ctx.connections[self] = None

    def start(self, handshake: Handshake, tail: bytes) -> None:
        self.transport.write(response_bytes(handshake))
        if tail:
            self.data_received(tail)

    # -- reading -------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._failed:
            return  # discard until the peer answers our Close or the timer closes
        self._quiet_ticks = 0
        try:
            events = self._parser.feed(data)
        except LivehubError as exc:
            self._fail(exc.close_code, exc.message)
            return
        for event in events:
            if isinstance(event, CloseReceived):
                self._on_close_frame(event)
                return
            if self.closed:
                continue  # after our Close (§7.1.1) only the peer's Close matters
            if isinstance(event, TextMessage):
                self.on_text(event.data)
            elif isinstance(event, BinaryMessage):
                self.on_binary(event.data)
            elif isinstance(event, Ping):
                self.write(encode_pong(event.data))

    def on_text(self, text: str) -> None:
        raise NotImplementedError

    def on_binary(self, data: bytes) -> None:
        raise NotImplementedError

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._closer is not None:
            self._closer.cancel()
            self._closer = None
        self._ctx.connections.pop(self, None)
        self.on_closed()

    def on_closed(self) -> None:
        """Release what the connection holds (subscriptions)."""

    # -- keepalive and closing ---------------------------------------------------------------------

    def heartbeat(self, now: float) -> None:
        self._quiet_ticks += 1
        if self._quiet_ticks >= 3:
            self.close(Disconnect.NO_PONG)
        elif self._quiet_ticks >= 1:
            self.write(_PING)

    def _on_close_frame(self, event: CloseReceived) -> None:
        if self.closed:  # we started the closing handshake; this is the answer
            self.transport.close()
            return
        code = CloseCode.NORMAL if event.code == CloseCode.NO_STATUS else event.code
        self.flush()
        self.closed = True
        self.transport.write(encode_close(code))
        self.transport.close()

    def goodbye(self, info: DisconnectInfo) -> None:
        """Start the closing handshake (server-initiated, RFC 6455 §7.1.2) with a documented
        code; abort the socket if the peer does not finish it in time."""
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(encode_close(info.code, info.reason))
        self._closer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, transport.abort)

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection (RFC 6455 §7.1.7): Close frame, then close the socket."""
        log.info("websocket %s failed: %d %s", self.peer(), code, reason)
        self._failed = True
        if self.closed:
            return
        self.closed = True
        self._pending = None
        transport = self.transport
        if not transport.is_closing():
            transport.write(encode_close(code, reason))
            # Keep reading (and discarding) until the peer closes: closing a socket with
            # unread input would reset the connection and lose our Close frame.
            self._closer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT,
                                                                 transport.close)

    def _send_close(self, code: int, reason: str) -> None:
        self.close(DisconnectInfo(code, reason))


@cache
def framers(bits: int | None) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    """Text and binary frame builders for connections with deflate window ``bits`` (or none).

    With permessage-deflate, payloads of at least ``COMPRESS_THRESHOLD`` bytes are compressed
    without context takeover, so one compressed frame serves every connection of ``bits``.
    """
    if bits is None:
        return partial(encode_frame, Opcode.TEXT), partial(encode_frame, Opcode.BINARY)

    def text(payload: bytes) -> bytes:
        if len(payload) >= pmd.COMPRESS_THRESHOLD:
            return encode_frame(Opcode.TEXT, pmd.compress_shared(payload, bits), rsv1=True)
        return encode_frame(Opcode.TEXT, payload)

    def binary(payload: bytes) -> bytes:
        if len(payload) >= pmd.COMPRESS_THRESHOLD:
            return encode_frame(Opcode.BINARY, pmd.compress_shared(payload, bits), rsv1=True)
        return encode_frame(Opcode.BINARY, payload)

    return text, binary
