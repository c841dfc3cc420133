"""One request under ASGI: the ``Exchange`` an endpoint answers, and the transport it takes over.

Theory of operation.  An endpoint that takes its exchange over (SSE, HTTP streaming,
WebSocket) gets an ``AsgiTransport``, an ``asyncio.Transport`` whose ``write`` only queues
bytes, exactly as the socket's transport would hold them: the connection objects of
``transports`` (``Outgoing``, the slow-consumer rule, the ``Flusher``'s one write per loop
turn, heartbeats, goodbyes) run unchanged on it.  The ASGI task of the request then runs
``AsgiExchange.run``: it turns the queued bytes into ASGI messages (``asgi.framing``: the head,
de-chunked body bytes, one ``websocket.send`` per frame) and awaits ``send`` for each, while a
second task reads ``receive`` (a WebSocket's messages, fed to the connection's own frame
parser; the client going away).  ``get_write_buffer_size`` is what the queue holds: bytes
``send`` has not taken yet, because the ASGI server applies backpressure by not returning
from ``send``; so a subscriber that does not read fills it and is closed as slow (3008), as
on the fast server.

Keepalive under ASGI belongs to the server (uvicorn's ``ws_ping_interval``...): the pings a
WebSocket connection writes are dropped and answered at once with a pong to its parser, and
the server's own pings find dead peers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from livehub.asgi import framing
from livehub.asgi.types import Message, Receive, Send
from livehub.errors import MethodNotAllowed
from livehub.ratelog import RateLimitedLog
from livehub.transports.messages import Request, head_bytes
from livehub.wire.websocket import Opcode

log = logging.getLogger(__name__)
rlog = RateLimitedLog(log)

P = TypeVar("P", bound=asyncio.BaseProtocol)


class AsgiTransport(asyncio.Transport):
    """The transport of a taken-over ASGI exchange: writes are queued for ``AsgiExchange.run``."""

    __slots__ = ("_exchange", "_protocol", "aborted", "closing", "queue", "size")

    def __init__(self, exchange: AsgiExchange) -> None:
        super().__init__()
        self._exchange = exchange
        self._protocol: asyncio.BaseProtocol | None = None
        self.queue: list[bytes] = []
        self.size = 0
        self.closing = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closing:
            return
        self.queue.append(bytes(data))
        self.size += len(data)
        self._exchange.wake()

    def get_write_buffer_size(self) -> int:
        return self.size

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self._exchange.wake()

    def abort(self) -> None:
        self.closing = self.aborted = True
        self.queue.clear()
        self.size = 0
        self._exchange.wake()

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        self.close()

    def pause_reading(self) -> None:
        """Nothing to pause: the connections hold early input themselves."""

    def resume_reading(self) -> None:
        """See ``pause_reading``."""

    def is_reading(self) -> bool:
        return not self.closing

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._exchange.peer
        return default


class AsgiExchange:
    """One ASGI ``http`` or ``websocket`` request as an ``Exchange`` (``transports.routing``,
    the seam HTTP/1.1 connections and HTTP/2 streams implement too): what the endpoints of
    every protocol answer."""

    __slots__ = ("_extra_headers", "_lost", "_on_lost", "_receive", "_send", "_wake",
                 "_watcher", "_websocket", "current", "peer", "protocol", "transport")

    def __init__(self, scope_type: str, receive: Receive, send: Send, *,
                 peer: tuple[str, int] | None,
                 extra_headers: Callable[[Request], list[tuple[str, str]]]) -> None:
        self._websocket = scope_type == "websocket"
        self._receive = receive
        self._send = send
        self.peer = peer
        self._extra_headers = extra_headers
        self.transport: AsgiTransport | None = None
        self.protocol: asyncio.Protocol | None = None
        self._wake: asyncio.Future[None] | None = None
        self._lost = False
        self._on_lost: Callable[[], None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.current: Request | None = None

    # -- the Exchange seen by endpoints -------------------------------------------------------

    @property
    def closing(self) -> bool:
        return self._lost

    def take_over(self, factory: Callable[[asyncio.Transport], P]) -> tuple[P, bytes]:
        current = self.current
        if current is not None and current.method == "HEAD":
            raise MethodNotAllowed(f"HEAD cannot open a stream on {current.path}: use GET",
                                   allow="GET")
        assert self.transport is None, "an exchange is taken over once"
        self.stop_watching()
        transport = self.transport = AsgiTransport(self)
        protocol = factory(transport)
        transport.set_protocol(protocol)
        assert isinstance(protocol, asyncio.Protocol)
        self.protocol = protocol
        return protocol, b""

    def stream_head(self, request: Request, status: int,
                    headers: list[tuple[str, str]]) -> bytes:
        """Under ASGI the head goes out as ``http.response.start``; it is written as HTTP/1.1
        bytes like on the fast server and read back by ``run`` (one code path for both)."""
        return head_bytes(status, headers)

    def extra_headers(self, request: Request) -> list[tuple[str, str]]:
        return self._extra_headers(request)

    def watch_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` if the client goes away while the answer is prepared (a
        long-poll); watched by a task reading ``receive`` until ``stop_watching``."""
        self._on_lost = callback
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch_disconnect())

    async def _watch_disconnect(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] in ("http.disconnect", "websocket.disconnect"):
                self._lost = True
                callback, self._on_lost = self._on_lost, None
                if callback is not None:
                    callback()
                return

    def stop_watching(self) -> None:
        self._on_lost = None
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    # -- running a taken-over exchange ----------------------------------------------------------

    def wake(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def run(self) -> None:
        """Carry the taken-over connection's bytes to ``send`` and ``receive``'s messages to
        it, until either side ends; then the connection is told it is lost (once)."""
        transport, protocol = self.transport, self.protocol
        assert transport is not None and protocol is not None
        reader = asyncio.get_running_loop().create_task(self._read(protocol))
        try:
            await self._write(transport, protocol)
        except Exception:  # noqa: BLE001 - the ASGI server's send failed: the client is gone
            self._lost = True
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            transport.closing = True
            protocol.connection_lost(None)

    async def _read(self, protocol: asyncio.Protocol) -> None:
        receive = self._receive
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text = message.get("text")
                if text is not None:
                    protocol.data_received(framing.client_frame(Opcode.TEXT, text.encode()))
                else:
                    protocol.data_received(framing.client_frame(Opcode.BINARY,
                                                                message.get("bytes") or b""))
            elif kind in ("http.disconnect", "websocket.disconnect"):
                self._lost = True
                self.wake()
                return

    async def _write(self, transport: AsgiTransport, protocol: asyncio.Protocol) -> None:
        loop = asyncio.get_running_loop()
        send = self._send
        head: framing.Head | None = None
        dechunker: framing.Dechunker | None = None
        pending = b""
        while True:
            if not transport.queue:
                if self._lost or transport.closing:
                    break
                self._wake = loop.create_future()
                await self._wake
                self._wake = None
                continue
            queue = transport.queue
            transport.queue = []
            data = queue[0] if len(queue) == 1 else b"".join(queue)
            taken = len(data)
            if head is None:
                found = framing.read_head(pending + data)
                if found is None:
                    pending += data
                    transport.size -= taken
                    continue
                head, end = found
                data, pending = (pending + data)[end:], b""
                if head.chunked:
                    dechunker = framing.Dechunker()
                await self._start(head)
            if self._websocket:
                frames, pending = framing.split_frames(pending + data if pending else data)
                for opcode, payload in frames:
                    if await self._frame(protocol, opcode, payload):
                        transport.size = 0
                        return
            else:
                body = data if dechunker is None else dechunker.feed(data)
                if body:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                if dechunker is not None and dechunker.done:
                    transport.closing = True
            transport.size -= taken
        if self._lost or head is None:
            return  # nothing to end: the client is gone, or nothing was answered
        if not self._websocket:
            if not transport.aborted:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            await send({"type": "websocket.close", "code": 1011 if transport.aborted else 1000})

    async def _start(self, head: framing.Head) -> None:
        if self._websocket:
            message: Message = {"type": "websocket.accept", "headers": head.headers}
            if head.subprotocol is not None:
                message["subprotocol"] = head.subprotocol
            await self._send(message)
        else:
            await self._send({"type": "http.response.start", "status": head.status,
                              "headers": head.headers})

    async def _frame(self, protocol: asyncio.Protocol, opcode: int, payload: bytes) -> bool:
        """Send one frame the connection wrote; True after its Close."""
        if opcode == Opcode.TEXT:
            await self._send({"type": "websocket.send", "text": payload.decode()})
        elif opcode == Opcode.BINARY:
            await self._send({"type": "websocket.send", "bytes": payload})
        elif opcode == Opcode.CLOSE:
            code, reason = framing.close_payload(payload)
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
            return True
        elif opcode == Opcode.PING:
            protocol.data_received(framing.PONG)  # the ASGI server pings the peer itself
        return False
