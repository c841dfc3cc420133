"""Generator clients driven with a fake transport: no sockets, no server."""

from __future__ import annotations

import asyncio
from typing import Any

from livehub.bench.clients import (
    CfProbe,
    CfSubscriber,
    HttpPublisher,
    StreamProbe,
    WsProbe,
    WsSubscriber,
)
from livehub.bench.stats import RunStats
from livehub.bench.wire import make_payload


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.paused = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


def frame(payload: bytes) -> bytes:
    return bytes((0x81, len(payload))) + payload


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_ws_subscriber_counts_and_probe_checks_sequence() -> None:
    async def main() -> tuple[WsSubscriber, WsProbe, RunStats]:
        st = RunStats()
        sub, probe = WsSubscriber(st, b"GET"), WsProbe(st, b"GET")
        head = b"HTTP/1.1 101 Switching Protocols\r\n\r\n"
        frames = b"".join(frame(make_payload(s, 0, 40)) for s in (1, 2, 4, 4))
        for c in (sub, probe):
            c.connection_made(FakeTransport())  # type: ignore[arg-type]
            c.data_received(head + frames[:50])
            c.data_received(frames[50:])
            assert c.ready.done()
        return sub, probe, st

    sub, probe, st = run(main())
    assert sub.count == 4 and probe.count == 4
    assert probe.last_seq == 4 and probe.gaps == 1 and probe.dups == 1
    assert st.delivered == 8 and st.probe_delivered == 4
    assert len(st.latencies_us) == 3


def test_stream_probe_parses_marks_split_across_reads() -> None:
    async def main() -> StreamProbe:
        st = RunStats()
        probe = StreamProbe(st, b"GET")
        probe.connection_made(FakeTransport())  # type: ignore[arg-type]
        probe.data_received(b"HTTP/1.1 200 OK\r\n\r\nretry: 1000\n\ndata: #1,5,xx\n\ndata: #2")
        probe.data_received(b",6,xx\n\n")
        return probe

    probe = run(main())
    assert probe.count == 2 and probe.last_seq == 2 and probe.gaps == 0


def test_http_publisher_pipelines_in_order() -> None:
    async def main() -> tuple[HttpPublisher, FakeTransport]:
        st = RunStats()
        pub = HttpPublisher(st, lambda p: b"POST " + p + b";", pipeline=2)
        transport = FakeTransport()
        pub.connection_made(transport)  # type: ignore[arg-type]
        pub.publish([b"1", b"2", b"3", b"4", b"5"])
        assert transport.writes == [b"POST 1;POST 2;"]
        pub.data_received(b"HTTP/1.1 204 No Content\r\n\r\n")
        pub.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                          b"HTTP/1.1 204 No Content\r\n\r\n")
        return pub, transport

    pub, transport = run(main())
    assert b"".join(transport.writes) == b"POST 1;POST 2;POST 3;POST 4;POST 5;"
    assert pub.answered == 3 and pub.in_flight == 2 and not pub.queue


def test_centrifugo_clients_subscribe_then_count_and_answer_pings() -> None:
    def sframe(payload: bytes) -> bytes:
        n = len(payload)
        return (bytes((0x81, n)) if n < 126 else bytes((0x81, 126)) + n.to_bytes(2, "big")) \
            + payload

    def pub(seq: int) -> bytes:
        return b'{"push":{"channel":"bench:x","pub":{"data":"%s"}}}' % make_payload(seq, 0, 40)

    async def main() -> tuple[CfSubscriber, CfProbe, RunStats, list[FakeTransport]]:
        st = RunStats()
        sub, probe = CfSubscriber(st, b"GET", "bench:x"), CfProbe(st, b"GET", "bench:x")
        transports = []
        head = b"HTTP/1.1 101 Switching Protocols\r\n\r\n"
        setup = sframe(b'{"id":1,"connect":{"client":"c","pong":true}}') + sframe(
            b'{"id":2,"subscribe":{}}\n' + pub(1))
        later = sframe(pub(2) + b"\n" + pub(3)) + sframe(b"{}") + sframe(pub(4))
        for c in (sub, probe):
            t = FakeTransport()
            transports.append(t)
            c.connection_made(t)  # type: ignore[arg-type]
            c.data_received(head + setup[:20])
            assert not c.ready.done()
            c.data_received(setup[20:] + later[:30])
            assert c.ready.done()
            c.data_received(later[30:])
        return sub, probe, st, transports

    sub, probe, st, transports = run(main())
    assert sub.count == 4 and probe.count == 4
    assert probe.last_seq == 4 and probe.gaps == 0 and probe.dups == 0
    assert st.delivered == 8 and st.probe_delivered == 4 and not st.errors
    for t in transports:
        assert b'"connect":{}' in t.writes[1] and b'"channel":"bench:x"' in t.writes[1]
        assert t.writes[-1] == b"\x81\x82\x00\x00\x00\x00{}"  # the pong


def test_centrifugo_client_fails_on_error_reply() -> None:
    async def main() -> CfSubscriber:
        st = RunStats()
        sub = CfSubscriber(st, b"GET", "bench:x")
        sub.connection_made(FakeTransport())  # type: ignore[arg-type]
        body = b'{"id":2,"error":{"code":103,"message":"permission denied"}}'
        sub.data_received(b"HTTP/1.1 101 OK\r\n\r\n" + bytes((0x81, len(body))) + body)
        return sub

    sub = run(main())
    assert sub.ready.done() and sub.ready.exception() is not None
    assert any("103" in k for k in sub.st.errors)


def test_server_closes_are_reported_with_code_and_reason() -> None:
    async def main() -> tuple[RunStats, list[str | None]]:
        st = RunStats()
        ws, sse, silent = WsSubscriber(st, b"GET"), StreamProbe(st, b"GET"), WsSubscriber(
            st, b"GET")
        ws.connection_made(FakeTransport())  # type: ignore[arg-type]
        ws.data_received(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"
                         + bytes((0x88, 2 + 4)) + (3008).to_bytes(2, "big") + b"slow")
        sse.connection_made(FakeTransport())  # type: ignore[arg-type]
        sse.data_received(b"HTTP/1.1 200 OK\r\n\r\nevent: disconnect\n"
                          b'data: {"code": 3001, "reason": "shutdown", "reconnect": true}\n\n')
        sse.connection_lost(None)
        silent.connection_made(FakeTransport())  # type: ignore[arg-type]
        silent.data_received(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
        silent.connection_lost(ConnectionResetError("reset"))
        return st, [ws.server_closed, sse.server_closed, silent.server_closed]

    st, why = run(main())
    assert why == ["3008 slow", "3001 shutdown", "no code (reset)"]
    assert st.errors == {"closed by the server: 3008 slow": 1,
                         "closed by the server: 3001 shutdown": 1,
                         "closed by the server: no code (reset)": 1}
