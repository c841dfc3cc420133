"""The ``socketio`` transport of the lab: Socket.IO clients (Engine.IO 4 over WebSocket) for the
python-socketio peer, so livehub and its ASGI adapter are measured next to the library Python
teams mount most often.

A client connects straight to ``/socket.io/?EIO=4&transport=websocket`` (no long-polling
upgrade), reads the Engine.IO ``open`` packet (``0{...}``), joins the default namespace
(``40``) and counts as connected at the server's ``40{"sid":...}``.  The server emits every
publication to everyone as ``42["m","<payload>"]``; subscribers count the bench payload marks
in those frames, as the Centrifugo counter does.  The publisher sends
``42["publish","<payload>"]``.  Engine.IO pings (``2``) are answered with ``3``.
"""

from __future__ import annotations

import time

from livehub.bench.clients import ProbeMixin, WsConn
from livehub.bench.stats import RunStats
from livehub.bench.wire import (
    OP_BINARY,
    OP_CLOSE,
    OP_TEXT,
    CfCounter,
    HttpHead,
    WsParser,
    parse_marks,
    ws_client_frame,
)

PATH = "/socket.io/?EIO=4&transport=websocket"
_JOIN = ws_client_frame(b"40")
_PONG = ws_client_frame(b"3")


class SioConn(WsConn):
    """A Socket.IO client: ready once the default namespace is joined."""

    ready_on_open = False

    def __init__(self, st: RunStats, request: bytes) -> None:
        super().__init__(st, request)
        self.setup: WsParser | None = WsParser()
        self.counter = CfCounter()
        self.count = 0

    def on_open(self, head: HttpHead) -> None:
        """Wait for the server's Engine.IO ``open`` packet."""

    def on_body(self, data: bytes) -> None:
        parser = self.setup
        if parser is None:
            self.on_events(data)
            return
        for op, payload in parser.feed(data):
            if op >= OP_CLOSE:
                self.control(op, payload)
            elif payload.startswith(b"0{") and self.transport is not None:
                self.transport.write(_JOIN)
            elif payload == b"2" and self.transport is not None:
                self.transport.write(_PONG)
            elif payload.startswith(b"40"):
                self.setup = None
                if not self.ready.done():
                    self.ready.set_result(None)
            elif payload.startswith(b"44"):
                self.fail(f"socket.io refused: {payload[:100].decode(errors='replace')}")
                return
        if self.setup is None and parser.buf:
            self.on_events(parser.buf)

    def on_events(self, data: bytes) -> None:
        counter = self.counter
        c = counter.feed(data)
        if counter.controls:
            self.drain_controls(counter.controls)
        self.count_events(c, len(data))

    def count_events(self, c: int, nbytes: int) -> None:
        """Book ``c`` bench payloads received in a read of ``nbytes``."""


class SioSubscriber(SioConn):
    def count_events(self, c: int, nbytes: int) -> None:
        self.tally(c, nbytes)


class SioProbe(ProbeMixin, SioConn):
    """A Socket.IO subscriber that parses each event's payload for seq and timestamp."""

    probe = True

    def __init__(self, st: RunStats, request: bytes) -> None:
        super().__init__(st, request)
        self.parser = WsParser()
        self.marks: list[tuple[int, int]] = []

    def on_events(self, data: bytes) -> None:
        now = time.monotonic_ns() // 1000
        marks = self.marks
        for op, payload in self.parser.feed(data):
            if OP_TEXT <= op <= OP_BINARY:
                if payload == b"2" and self.transport is not None:
                    self.transport.write(_PONG)
                else:
                    parse_marks(payload, 0, len(payload), marks)
            elif op >= OP_CLOSE:
                self.control(op, payload)
        c = len(marks)
        self.check(marks, now)
        marks.clear()
        self.count += c
        self.tally_probe(c, len(data))


class SioPublisher(SioConn):
    """Emits ``publish`` events; what the server emits back to it is dropped."""

    def __init__(self, st: RunStats, request: bytes) -> None:
        super().__init__(st, request)
        self.received = 0

    def publish(self, payloads: list[bytes]) -> None:
        if self.transport is not None:
            self.transport.write(b"".join(
                [ws_client_frame(b'42["publish","' + p + b'"]') for p in payloads]))

    def count_events(self, c: int, nbytes: int) -> None:
        self.received += c


PY_SOCKETIO = """\
\"\"\"python-socketio fan-out server (ASGI app under uvicorn): a client's ``publish`` event is
emitted to every client as ``m``.\"\"\"
import socketio

sio = socketio.AsyncServer(async_mode="asgi")


@sio.on("publish")
async def publish(sid, data):
    await sio.emit("m", data)


app = socketio.ASGIApp(sio)
"""
