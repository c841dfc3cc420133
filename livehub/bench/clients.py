"""Cheap load-generator clients: one ``asyncio.Protocol`` per connection, one class per role.

Theory of operation: every connection writes its request on ``connection_made``, waits for the
response head (101 for WebSocket, 200 for HTTP), then handles body bytes with as little Python
per read as we can: counting subscribers do one ``WsCounter.feed`` or ``bytes.count(b"#")`` per
read, however many messages the read holds, and a few attribute increments. Only *probe*
subscribers (a sample spread over the connection order) parse sequence numbers and timestamps,
which gives the latency percentiles and exact lost/duplicate accounting; every other subscriber
is checked by its count at the end of the run (a count below the number published is loss, above
is duplication).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import zlib
from array import array
from collections import deque
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import quote

from livehub.bench.stats import RunStats
from livehub.bench.wire import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RSV1,
    CfCounter,
    ChunkedReader,
    HttpHead,
    WsCounter,
    WsParser,
    cf_commands,
    parse_marks,
    split_head,
    ws_client_frame,
)

_now_ns = time.monotonic_ns
_GOODBYE = re.compile(rb'"code":\s*(\d+),\s*"reason":\s*"([^"]*)"')
"""The code and reason of a stream's goodbye (livehub's SSE ``disconnect`` event, NDJSON line)."""


class HandshakeError(Exception):
    """The server answered the request with something else than the expected status."""


class Conn(asyncio.Protocol):
    """Base client: sends ``request``, parses the response head, then passes bytes to on_body."""

    expect_status = 200
    ready_on_open = True
    """False: the subclass resolves ``ready`` itself (after a protocol-level subscribe)."""
    # Subscriber bookkeeping, read by the scenarios at the end of a run; probes override.
    probe = False
    count = 0
    last_seq = 0
    gaps = 0
    dups = 0
    node_latencies: array[int] | None = None
    """A probe also records its latencies here (per node, in a cluster run)."""
    server_closed: str | None = None
    """Why the server closed this connection ("code reason"), once it did."""

    def __init__(self, st: RunStats, request: bytes) -> None:
        self.st = st
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending = b""
        self.open = False
        self.closing = False
        self.lost_connection = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        if self.request:
            self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.open:
            self.on_body(data)
        else:
            self.handshake(data)

    def handshake(self, data: bytes) -> None:
        self.pending += data
        try:
            parsed = split_head(self.pending)
        except ValueError:
            self.fail("bad response")
            return
        if parsed is None:
            return
        head, offset = parsed
        if head.status != self.expect_status:
            self.fail(f"status {head.status}")
            return
        rest = self.pending[offset:]
        self.pending = b""
        self.open = True
        self.on_open(head)
        if self.ready_on_open and not self.ready.done():
            self.ready.set_result(None)
        if rest:
            self.on_body(rest)

    def fail(self, kind: str) -> None:
        self.st.error(kind)
        if not self.ready.done():
            self.ready.set_exception(HandshakeError(kind))
        self.close()

    def on_open(self, head: HttpHead) -> None:
        """Called once the expected response head arrived."""

    def tally(self, c: int, nbytes: int) -> None:
        """Book ``c`` messages of a counting subscriber in a read of ``nbytes``.

        Pauses reading when the run asks for it (``RunStats.pause_reads``).
        """
        self.count += c
        st = self.st
        st.delivered += c
        st.bytes_in += nbytes
        if st.pause_reads:
            transport = self.transport
            if transport is not None:
                transport.pause_reading()
                st.paused.append(transport)

    def tally_probe(self, c: int, nbytes: int) -> None:
        """Book ``c`` messages of a probe in a read of ``nbytes``; wake the run when due."""
        st = self.st
        st.delivered += c
        st.probe_delivered += c
        st.bytes_in += nbytes
        if st.probe_delivered >= st.wake_at:
            st.wake()

    def on_body(self, data: bytes) -> None:
        """Called with body bytes (WebSocket frames, an event stream, ...)."""

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def closed_by_server(self, why: str) -> None:
        """The server said why it closes (a Close frame, a stream's goodbye): count it once."""
        if self.server_closed is None and not self.closing:
            self.server_closed = why
            self.st.error(f"closed by the server: {why}")

    def stream_goodbye(self, data: bytes) -> None:
        """Look for a stream's goodbye (``"code":N,"reason":"..."``) in ``data``."""
        m = _GOODBYE.search(data)
        if m is not None:
            self.closed_by_server(f"{int(m.group(1))} {m.group(2).decode(errors='replace')}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_connection = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(str(exc) if exc else "closed"))
        elif not self.closing:
            self.st.disconnected += 1
            if self.server_closed is None:
                self.server_closed = f"no code ({exc or 'EOF'})"
                self.st.error(f"closed by the server: {self.server_closed}")


class WsConn(Conn):
    """A WebSocket connection; answers pings and records server closes."""

    expect_status = 101

    def control(self, op: int, payload: bytes | None) -> None:
        if op == OP_PING and self.transport is not None:
            self.transport.write(ws_client_frame(payload or b"", OP_PONG))
        elif op == OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if payload and len(payload) >= 2 else 1005
            reason = payload[2:].decode(errors="replace") if payload else ""
            self.closed_by_server(f"{code} {reason}".strip())
            self.close()

    def drain_controls(self, controls: list[tuple[int, bytes | None]]) -> None:
        """Handle and clear the control frames a counter collected."""
        for op, payload in controls:
            self.control(op, payload)
        controls.clear()

    def send_text(self, payloads: list[bytes]) -> None:
        if self.transport is not None:
            self.transport.write(b"".join([ws_client_frame(p) for p in payloads]))


class WsSubscriber(WsConn):
    """Counts WebSocket data frames."""

    def __init__(self, st: RunStats, request: bytes) -> None:
        super().__init__(st, request)
        self.counter = WsCounter()
        self.count = 0

    def on_body(self, data: bytes) -> None:
        counter = self.counter
        c = counter.feed(data)
        if counter.controls:
            self.drain_controls(counter.controls)
        self.tally(c, len(data))


class ProbeMixin(Conn):
    """Sequence and latency bookkeeping of probe subscribers."""

    def check(self, marks: list[tuple[int, int]], now_us: int) -> None:
        last = self.last_seq
        append = self.st.latencies_us.append
        start = len(self.st.latencies_us)
        for seq, t_us in marks:
            if seq == last + 1:
                last = seq
            elif seq > last + 1:
                self.gaps += seq - last - 1
                last = seq
            else:
                self.dups += 1
                continue
            append(now_us - t_us)
        self.last_seq = last
        if self.node_latencies is not None:
            self.node_latencies.extend(self.st.latencies_us[start:])


class WsProbe(ProbeMixin, WsConn):
    """A WebSocket subscriber that parses every payload for sequence and timestamp; compressed
    messages (permessage-deflate, RFC 7692) are inflated first."""

    probe = True

    def __init__(self, st: RunStats, request: bytes) -> None:
        super().__init__(st, request)
        self.parser = WsParser()
        self.count = 0
        self.marks: list[tuple[int, int]] = []
        self.inflater: Any = None
        self.inflated = 0
        """Compressed messages received."""

    def on_body(self, data: bytes) -> None:
        now = _now_ns() // 1000
        marks = self.marks
        c = 0
        for bits, raw in self.parser.feed(data):
            op, payload = bits, raw
            if bits & RSV1:
                if self.inflater is None:  # one inflater: right with or without context takeover
                    self.inflater = zlib.decompressobj(-15)
                payload = self.inflater.decompress(raw + b"\x00\x00\xff\xff")
                self.inflated += 1
                op = bits & 0x0F
            if OP_TEXT <= op <= OP_BINARY:
                c += 1
                parse_marks(payload, 0, len(payload), marks)
            elif op >= OP_CLOSE:
                self.control(op, payload)
        self.check(marks, now)
        marks.clear()
        self.count += c
        self.tally_probe(c, len(data))


CF_CONNECT = cf_commands(b'{"id":1,"connect":{}}')
CF_PONG = ws_client_frame(b"{}")


def cf_subscribe(channel: str) -> bytes:
    """The client frame that subscribes to ``channel`` (command id 2)."""
    return cf_commands(b'{"id":2,"subscribe":{"channel":%s}}' % json.dumps(channel).encode())


class CfConn(WsConn):
    """A Centrifugo JSON-protocol client on ``/connection/websocket``.

    After the 101 it sends ``connect`` (id 1) and ``subscribe`` (id 2) and parses whole frames
    until the subscribe reply; ``ready`` resolves then, so a run starts publishing only once
    every subscription is in place. Server pings (``{}``) are answered with ``{}``.
    """

    ready_on_open = False

    def __init__(self, st: RunStats, request: bytes, channel: str) -> None:
        super().__init__(st, request)
        self.subscribe_frame = cf_subscribe(channel)
        self.setup: WsParser | None = WsParser()

    def on_open(self, head: HttpHead) -> None:
        if self.transport is not None:
            self.transport.write(CF_CONNECT + self.subscribe_frame)

    def on_body(self, data: bytes) -> None:
        parser = self.setup
        if parser is None:
            self.on_pushes(data)
            return
        frames = parser.feed(data)
        for k, (op, payload) in enumerate(frames):
            if op >= OP_CLOSE:
                self.control(op, payload)
                continue
            lines = payload.split(b"\n")
            for j, line in enumerate(lines):
                if line == b"{}":
                    self.pong()
                elif b'"error"' in line and b'"id":' in line:
                    self.fail(f"centrifugo error: {line[:100].decode(errors='replace')}")
                    return
                elif line.startswith(b'{"id":2'):
                    # Subscribed. Pushes may follow in this frame, this read or both.
                    self.setup = None
                    tail = b"\n".join(lines[j + 1 :])
                    rest = b"".join([_reframe(op, tail)] if tail else []) + b"".join(
                        _reframe(o, p) for o, p in frames[k + 1 :]) + parser.buf
                    if not self.ready.done():
                        self.ready.set_result(None)
                    if rest:
                        self.on_pushes(rest)
                    return

    def pong(self) -> None:
        if self.transport is not None:
            self.transport.write(CF_PONG)

    def on_pushes(self, data: bytes) -> None:
        """Called with the frames that follow the subscribe reply."""


def _reframe(op: int, payload: bytes) -> bytes:
    """A server frame again (unmasked), to replay frames parsed during the set-up."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | op, n))
    elif n < 65536:
        head = bytes((0x80 | op, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | op, 127)) + n.to_bytes(8, "big")
    return head + payload


class CfSubscriber(CfConn):
    """Counts bench payloads in ``pub`` pushes (``CfCounter``: one ``bytes.count`` a frame)."""

    def __init__(self, st: RunStats, request: bytes, channel: str) -> None:
        super().__init__(st, request, channel)
        self.counter = CfCounter()
        self.count = 0

    def on_pushes(self, data: bytes) -> None:
        counter = self.counter
        c = counter.feed(data)
        if counter.pings:
            counter.pings = 0
            self.pong()
        if counter.controls:
            self.drain_controls(counter.controls)
        self.tally(c, len(data))


class CfProbe(ProbeMixin, CfConn):
    """A Centrifugo subscriber that parses each ``pub`` push's payload for seq and timestamp."""

    probe = True

    def __init__(self, st: RunStats, request: bytes, channel: str) -> None:
        super().__init__(st, request, channel)
        self.parser = WsParser()
        self.count = 0
        self.marks: list[tuple[int, int]] = []

    def on_pushes(self, data: bytes) -> None:
        now = _now_ns() // 1000
        marks = self.marks
        for op, payload in self.parser.feed(data):
            if OP_TEXT <= op <= OP_BINARY:
                if len(payload) <= 2:
                    self.pong()
                else:
                    parse_marks(payload, 0, len(payload), marks)
            elif op >= OP_CLOSE:
                self.control(op, payload)
        c = len(marks)
        self.check(marks, now)
        marks.clear()
        self.count += c
        self.tally_probe(c, len(data))


class StreamSubscriber(Conn):
    """Counts messages of an SSE or HTTP-streaming response by their ``#`` marks."""

    def __init__(self, st: RunStats, request: bytes) -> None:
        super().__init__(st, request)
        self.count = 0

    def on_body(self, data: bytes) -> None:
        c = data.count(b"#")
        if b'"code"' in data:
            self.stream_goodbye(data)
        self.tally(c, len(data))


class StreamProbe(ProbeMixin, Conn):
    """An SSE or HTTP-streaming subscriber that parses every mark."""

    probe = True

    def __init__(self, st: RunStats, request: bytes) -> None:
        super().__init__(st, request)
        self.count = 0
        self.carry = b""
        self.marks: list[tuple[int, int]] = []

    def on_body(self, data: bytes) -> None:
        now = _now_ns() // 1000
        self.count += data.count(b"#")
        if b'"code"' in data:
            self.stream_goodbye(data)
        buf = self.carry + data if self.carry else data
        marks = self.marks
        rest = parse_marks(buf, 0, len(buf), marks)
        self.carry = buf[rest:]
        c = len(marks)
        self.check(marks, now)
        marks.clear()
        self.tally_probe(c, len(data))


class PollSubscriber(ProbeMixin, Conn):
    """Long-polling: GET ``path&cursor=C`` again as soon as each response ends."""

    def __init__(self, st: RunStats, path: str, port: int, *, probe: bool) -> None:
        super().__init__(st, self._request(path, port, None))
        self.path = path
        self.port = port
        self.probe = probe
        self.count = 0
        self.reader: ChunkedReader | None = None
        self.marks: list[tuple[int, int]] = []
        self.polls = 0

    @staticmethod
    def _request(path: str, port: int, cursor: str | None) -> bytes:
        target = path if cursor is None else f"{path}&cursor={quote(cursor, safe='')}"
        return b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (target.encode(), port)

    def on_open(self, head: HttpHead) -> None:
        self.reader = ChunkedReader(head)

    def on_body(self, data: bytes) -> None:
        reader = self.reader
        if reader is None:
            return
        reader.feed(data)
        if reader.done:
            self.finish(reader.body)

    def handshake(self, data: bytes) -> None:
        super().handshake(data)
        if self.open and self.reader is not None and self.reader.done:
            self.finish(self.reader.body)

    def finish(self, body: bytes) -> None:
        now = _now_ns() // 1000
        self.reader = None
        self.open = False
        self.polls += 1
        st = self.st
        st.bytes_in += len(body)
        if self.probe:
            parse_marks(body, 0, len(body), self.marks)
            c = len(self.marks)
            self.check(self.marks, now)
            self.marks.clear()
        else:
            c = body.count(b"#")
        self.count += c
        st.delivered += c
        cursor: str | None = None
        try:
            doc = json.loads(body)
            raw = doc.get("cursor") if isinstance(doc, dict) else None
            cursor = None if raw is None else str(raw)
        except ValueError:
            st.error("poll body is not JSON")
        if self.probe:
            st.probe_delivered += c
            if st.probe_delivered >= st.wake_at:
                st.wake()
        if self.transport is not None and not self.closing:
            self.transport.write(self._request(self.path, self.port, cursor))


class WsPublisher(WsConn):
    """Publishes by sending WebSocket text frames; reads and drops what the server echoes."""

    def __init__(self, st: RunStats, request: bytes) -> None:
        super().__init__(st, request)
        self.counter = WsCounter()
        self.received = 0

    def publish(self, payloads: list[bytes]) -> None:
        self.send_text(payloads)

    def on_body(self, data: bytes) -> None:
        self.received += self.counter.feed(data)
        if self.counter.controls:
            self.drain_controls(self.counter.controls)


class HttpPublisher(Conn):
    """Publishes by HTTP POST on one keep-alive connection, in order.

    With ``pipeline`` > 1 it sends up to that many requests before their responses (HTTP/1.1
    pipelining, RFC 9112 §9.3): a server that reads them in one go can publish them in one
    loop iteration, as it does with WebSocket frames that arrive together.
    """

    def __init__(self, st: RunStats, make_request: Callable[[bytes], bytes],
                 pipeline: int = 1) -> None:
        super().__init__(st, b"")
        self.make_request = make_request
        self.pipeline = max(1, pipeline)
        self.queue: deque[bytes] = deque()
        self.in_flight = 0
        self.reader: ChunkedReader | None = None
        self.answered = 0
        self.rejected = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self.ready.done():
            self.ready.set_result(None)

    def publish(self, payloads: list[bytes]) -> None:
        self.queue.extend(payloads)
        self._next()

    def _next(self) -> None:
        room = self.pipeline - self.in_flight
        if room <= 0 or not self.queue or self.transport is None or self.closing:
            return
        queue = self.queue
        batch = [self.make_request(queue.popleft()) for _ in range(min(room, len(queue)))]
        self.in_flight += len(batch)
        self.transport.write(b"".join(batch))

    def data_received(self, data: bytes) -> None:
        while data:
            if self.reader is None:
                self.pending += data
                try:
                    parsed = split_head(self.pending)
                except ValueError:
                    self.fail("bad publish response")
                    return
                if parsed is None:
                    return
                head, offset = parsed
                if head.status >= 300:
                    self.rejected += 1
                    self.st.error(f"publish status {head.status}")
                data = self.pending[offset:]
                self.pending = b""
                self.reader = ChunkedReader(head)
                if self.reader.done:
                    self._answered()
                    continue
            data = self.reader.feed(data)
            if self.reader.done:
                self._answered()

    def _answered(self) -> None:
        self.reader = None
        self.in_flight -= 1
        self.answered += 1
        if self.in_flight <= self.pipeline // 2:
            self._next()

    @property
    def backlog(self) -> int:
        return len(self.queue) + self.in_flight


class EchoClient(WsConn):
    """Sends a message, waits for its reply, sends the next, until ``running`` is cleared."""

    def __init__(self, st: RunStats, request: bytes, message: bytes) -> None:
        super().__init__(st, request)
        self.frame = ws_client_frame(message)
        self.parser = WsParser()
        self.sent_at = 0
        self.round_trips = 0
        self.running = False

    def start(self) -> None:
        self.running = True
        self._send()

    def _send(self) -> None:
        if self.transport is not None:
            self.sent_at = _now_ns()
            self.transport.write(self.frame)

    def on_body(self, data: bytes) -> None:
        for op, payload in self.parser.feed(data):
            if OP_TEXT <= op <= OP_BINARY:
                now = _now_ns()
                self.round_trips += 1
                self.st.delivered += 1
                self.st.bytes_in += len(payload)
                self.st.latencies_us.append((now - self.sent_at) // 1000)
                if self.running:
                    self._send()
            elif op >= OP_CLOSE:
                self.control(op, payload)

