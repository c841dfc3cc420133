"""The one WebSocket connection of every protocol, after its opening handshake (RFC 6455).

After the handshake (§4.2, ``handshake`` here) the socket is taken over by a
``WebSocketConnection`` that owns reading, buffering and closing; the hub only ever hands it
encoded frames.  Protocols subclass it to say what a message means (``protocols.plain.ws``,
``protocols.centrifugo.transports``).

Closing (RFC 6455 §7): a peer's Close is answered with a Close echoing its code, then the TCP
connection is closed by us (§7.1.1).  When we close (shutdown, slow consumer, policy) we send a
Close with the code from ``livehub.codes``, close TCP when the peer's Close arrives, and abort
the socket if the peer has not answered within ``CLOSE_TIMEOUT``.  A protocol violation fails
the connection (§7.1.7) with the parser's code (1002, 1007, 1009): the messages that came before
it are handled and their answers sent, then our Close, then we shut down our side of TCP (FIN:
the server closes first, §7.1.1) and read and discard until the peer closes its side, so unread
input never turns our close into a reset.  Keepalive: a ping goes out on every heartbeat tick
without incoming traffic; a peer silent for three ticks is closed with 3012 (no pong).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import cache, partial

from livehub.codes import CloseCode, Disconnect, DisconnectInfo
from livehub.errors import BadRequest, LivehubError
from livehub.ratelog import RateLimitedLog
from livehub.transports.compression import CompressionBudget
from livehub.transports.context import ServerContext
from livehub.transports.http import Request
from livehub.transports.outgoing import Outgoing
from livehub.transports.routing import Exchange
from livehub.wire import deflate as pmd
from livehub.wire.handshake import (
    Handshake,
    check_extended_connect,
    check_request,
    response_bytes,
)
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
rlog = RateLimitedLog(log)

CLOSE_TIMEOUT = 3.0
_PING = encode_ping()


def handshake(ctx: ServerContext, request: Request) -> Handshake:
    """Validate the opening handshake of ``request`` (RFC 6455 §4.2.1) with the server's
    Origin policy and permessage-deflate setting; raises ``BadRequest``/``Forbidden``.  The
    server's own origin is always allowed (its pages, such as ``/demo/chat``)."""
    origins = ctx.settings.allowed_origins
    host = request.headers.get("host", "")
    allowed = None if "*" in origins else [*origins, f"http://{host}", f"https://{host}"]
    if request.version == "2":
        if not request.upgrade:
            raise BadRequest("a WebSocket over HTTP/2 is opened with an extended CONNECT "
                             "(RFC 8441), or over HTTP/1.1 with Upgrade")
        return check_extended_connect(request.headers, allowed_origins=allowed,
                                      deflate=ctx.settings.ws_deflate)
    return check_request(request.method, request.headers, allowed_origins=allowed,
                         deflate=ctx.settings.ws_deflate)


def accept(exchange: Exchange, request: Request, handshake: Handshake) -> bytes:
    """The answer that opens the WebSocket, for ``WebSocketConnection.start``: the 101 of
    RFC 6455 §4.2.2 on HTTP/1.1; on HTTP/2 (RFC 8441 §5) a 200 the stream sends as its
    HEADERS (b"" is then what is left to write)."""
    if not handshake.http2:
        return response_bytes(handshake)
    headers = [(name.decode("latin-1").lower(), value.decode("latin-1"))
               for name, value in handshake.response_headers]
    return exchange.stream_head(request, 200, headers)


class WebSocketConnection(Outgoing, asyncio.Protocol):
    """A WebSocket after its handshake.  Subclasses say what a message means."""

    __slots__ = ("_budget", "_closer", "_ctx", "_deflate", "_failed", "_held", "_parser",
                 "_quiet_ticks", "frame_binary", "frame_text")

    def __init__(self, ctx: ServerContext, transport: asyncio.Transport,
                 handshake: Handshake) -> None:
        super().__init__(transport, ctx.flusher, ctx.settings.max_buffer)
        self._ctx = ctx
        self._deflate = (pmd.Deflater(handshake.deflate, on_inflate=self._inflated)
                         if handshake.deflate else None)
        self._budget: CompressionBudget | None = None
        self._parser = FrameParser(max_message_size=ctx.settings.ws_max_message,
                                   deflate=self._deflate)
        self._quiet_ticks = 0
        self._failed = False
        self._held: bytearray | None = None
        self._closer: asyncio.TimerHandle | None = None
        bits = None if handshake.deflate is None else handshake.deflate.variant_key
        self.frame_text, self.frame_binary = framers(bits)
        ctx.connections[self] = time.monotonic()

    def start(self, head: bytes, tail: bytes) -> None:
        """Send ``head`` (``accept``'s answer to the handshake), then read ``tail`` (what
        came after the handshake)."""
        if head:
            self.transport.write(head)
        if tail:
            self.data_received(tail)

    # -- reading -------------------------------------------------------------------------------

    def hold_input(self) -> None:
        """Keep what the peer sends unread until ``release_input`` (e.g. until subscribed)."""
        if self._held is None:
            self._held = bytearray()
            self.transport.pause_reading()

    def release_input(self) -> None:
        held = self._held
        if held is None:
            return
        self._held = None
        if not self.transport.is_closing():
            self.transport.resume_reading()
        if held:
            self.data_received(bytes(held))

    def data_received(self, data: bytes) -> None:
        if self._failed:
            return  # discard until the peer closes its side or the timer aborts
        if self._held is not None:
            self._held += data  # read before pause_reading took effect
            return
        self._quiet_ticks = 0
        parser = self._parser
        try:
            events = parser.feed(data)
        except LivehubError as exc:
            self._fail(exc.close_code, exc.message)
            return
        try:
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
        except Exception:  # noqa: BLE001 - logged with its traceback (rate-limited)
            # a bug, not the peer's fault: one (rate-limited) traceback, a clean 1011 Close
            rlog.exception("websocket-handler", "websocket %s: handling a message failed",
                           self.peer())
            self._fail(CloseCode.INTERNAL_ERROR, "internal error")
            return
        error = parser.error
        if error is not None:  # the messages before the violation were handled first
            self._fail(error.close_code, error.message)

    def eof_received(self) -> bool:
        return False  # the peer closed its side: close ours (the transport closes itself)

    def on_text(self, text: str) -> None:
        raise NotImplementedError

    # -- compression budget (transports.compression) -------------------------------------------

    def _compression(self) -> CompressionBudget:
        budget = self._budget
        if budget is None:  # made on first use: idle connections hold none
            budget = self._budget = CompressionBudget(
                self._ctx.settings.ws_compress_rate, self._ctx.compression,
                asyncio.get_running_loop().time())
        return budget

    def _inflated(self, n: int) -> None:
        self._compression().inflated(n, asyncio.get_running_loop().time())

    def own_frame(self, opcode: int, payload: bytes) -> bytes:
        """A frame for this connection alone (an echo, a reply): compressed when
        permessage-deflate is on, the payload is worth it, and the budget allows."""
        if self._deflate is None or len(payload) < pmd.COMPRESS_THRESHOLD:
            return encode_frame(opcode, payload)
        budget = self._compression()
        if not budget.may_deflate(asyncio.get_running_loop().time()) \
                or not pmd.worth_compressing(payload):
            return encode_frame(opcode, payload)
        budget.deflated(len(payload))
        return encode_frame(opcode, self._deflate.compress(payload), rsv1=True)

    def on_binary(self, data: bytes) -> None:
        raise NotImplementedError

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._closer is not None:
            self._closer.cancel()
            self._closer = None
        opened = self._ctx.connections.pop(self, None)
        if self._deflate is not None:
            self._deflate.on_inflate = None  # no cycle through the bound method
        if opened is not None:
            self._ctx.stats.ended(self, opened)
        self.on_closed()

    going_away = DisconnectInfo(CloseCode.GOING_AWAY, "server going away: reconnect")

    @property
    def transport_name(self) -> str:
        return "websocket"

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
        self.ended = DisconnectInfo(event.code, "closed by the client")
        self.flush()
        self.closed = True
        self.transport.write(encode_close(code))
        self.transport.close()

    def goodbye(self, info: DisconnectInfo) -> None:
        """Start the closing handshake (server-initiated, RFC 6455 §7.1.2) with a documented
        code; abort the socket if the peer does not finish it in time."""
        transport = self.transport
        if transport.is_closing() or self._closer is not None:
            return  # closed, or our Close is already out (``_closer`` is set with it)
        transport.write(encode_close(info.code, info.reason))
        self._closer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, transport.abort)

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection (RFC 6455 §7.1.7): what is pending, our Close (unless one was
        sent already), then FIN; the peer's remaining input is read and discarded."""
        rlog.info("websocket-failed", "websocket %s failed: %d %s", self.peer(), code, reason)
        self._failed = True
        if self.ended is None:
            self.ended = DisconnectInfo(code, reason)
        transport = self.transport
        if transport.is_closing():
            return
        if self._closer is None:  # our Close is not out yet
            if not self.closed:
                self.flush()  # answers to the messages that preceded the violation
                self.closed = True
            transport.write(encode_close(code, reason))
        # The server closes TCP first (§7.1.1): shut down our side and keep reading (and
        # discarding) until the peer closes its side, so unread input never resets the
        # connection and loses our Close frame.
        if transport.can_write_eof():
            transport.write_eof()
        if self._closer is None:
            self._closer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT,
                                                                 transport.abort)

    internal_error = DisconnectInfo(CloseCode.INTERNAL_ERROR, "internal error")

    def fail(self, exc: Exception) -> None:
        self.close(self.failure(exc))
        self.release_input()  # to read the peer's answering Close

    def _send_close(self, code: int, reason: str) -> None:
        self.close(DisconnectInfo(code, reason))


@cache
def framers(bits: int | None) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    """Text and binary frame builders for connections with deflate window ``bits`` (or none).

    With permessage-deflate, payloads of at least ``COMPRESS_THRESHOLD`` bytes are compressed
    without context takeover, so one compressed frame serves every connection of ``bits``;
    large payloads a sample shows incompressible go out plain (``worth_compressing``).
    """
    if bits is None:
        return partial(encode_frame, Opcode.TEXT), partial(encode_frame, Opcode.BINARY)

    def text(payload: bytes) -> bytes:
        if len(payload) >= pmd.COMPRESS_THRESHOLD and pmd.worth_compressing(payload):
            return encode_frame(Opcode.TEXT, pmd.compress_shared(payload, bits), rsv1=True)
        return encode_frame(Opcode.TEXT, payload)

    def binary(payload: bytes) -> bytes:
        if len(payload) >= pmd.COMPRESS_THRESHOLD and pmd.worth_compressing(payload):
            return encode_frame(Opcode.BINARY, pmd.compress_shared(payload, bits), rsv1=True)
        return encode_frame(Opcode.BINARY, payload)

    return text, binary
