"""What HTTP/2 refuses, each with a clear answer, other clients unaffected: a thousand streams
at once (REFUSED_STREAM beyond SETTINGS_MAX_CONCURRENT_STREAMS, RFC 9113 §5.1.2), a client that
never sends WINDOW_UPDATE (the slow-consumer rule, 3008), a body over the limit (413), a request
that never ends (408), a protocol error (GOAWAY)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, StreamReset

from ..conftest import API_KEY, LiveServer, ServerFactory
from .h2client import H2Client, close_all


@pytest.fixture(autouse=True)
def _close_h2_clients() -> Iterator[None]:
    yield
    close_all()


def health(srv: LiveServer) -> dict[str, int]:
    result: dict[str, int] = httpx.get(srv.url + "/health", timeout=10).json()
    return result


def refused(client: H2Client) -> set[int]:
    return {e.stream_id for e in client.events if isinstance(e, StreamReset)
            and e.error_code == ErrorCodes.REFUSED_STREAM}


def test_a_thousand_streams_at_once_are_refused_beyond_the_limit(server: LiveServer) -> None:
    greedy = H2Client(server.port)
    streams = [greedy.request("/events?channel=chat:many", flush=False) for _ in range(1000)]
    greedy.flush()
    greedy.until(lambda _: all(greedy.status(s) == 200 or s in refused(greedy)
                               for s in streams))
    served = [s for s in streams if greedy.status(s) == 200]
    assert len(served) == server.settings.h2_max_streams == 100
    assert len(refused(greedy)) == 900
    assert served == streams[:100]  # the first ones, in order

    # the served streams work, and other clients are served as usual
    server.publish("chat:many", "to all")
    greedy.until(lambda _: b"data: to all" in greedy.body(served[-1]))
    assert health(server)["connections"] == 100
    with httpx.Client(http1=False, http2=True, timeout=10) as other:
        assert other.get(server.url + "/health").status_code == 200
    greedy.close()


def test_a_client_that_never_sends_window_update_is_a_slow_consumer(
        make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its stream holds what the window does not let out; past ``max_buffer`` it is closed
    with 3008 like on HTTP/1.1, the publisher and the other subscriber never wait for it."""
    from livehub.transports import stream

    # the goodbye waits for the window longer than this test needs to open it
    monkeypatch.setattr(stream, "CLOSE_TIMEOUT", 60.0)
    srv = make_server(max_buffer=4096)
    stalled = H2Client(srv.port, window=0)
    stalled_id = stalled.request("/events?channel=chat:slow")
    healthy = H2Client(srv.port)
    healthy_id = healthy.request("/events?channel=chat:slow")
    for client, stream_id in ((stalled, stalled_id), (healthy, healthy_id)):
        client.until(lambda _, c=client, s=stream_id: c.status(s) == 200)  # type: ignore[misc]
    assert health(srv)["connections"] == 2

    for n in range(10):
        srv.publish("chat:slow", f"{n:04d}" + "x" * 1000)
    healthy.until(lambda _: b"data: 0009" in healthy.body(healthy_id))
    for n in range(10):
        assert f"data: {n:04d}".encode() in healthy.body(healthy_id)
    healthy.conn.acknowledge_received_data(len(healthy.body(healthy_id)), healthy_id)

    # the stalled stream was closed (it left the server's connections) without a byte out
    deadline_reads = 0
    while health(srv)["connections"] != 1:
        deadline_reads += 1
        assert deadline_reads < 500, "the stalled stream was not closed"
    assert stalled.body(stalled_id) == b""
    # once the client opens its window, the goodbye is there, in band: 3008
    stalled.conn.increment_flow_control_window(1 << 20, stalled_id)
    stalled.flush()
    stalled.until(lambda _: stalled.ended(stalled_id))
    body = stalled.body(stalled_id)
    assert b"event: disconnect" in body
    assert b'"code": 3008' in body or b'"code":3008' in body
    assert len(body) < 4096 + 2 * 1100 + 200  # what it held: the buffer and the allowance
    stalled.close()
    healthy.close()


def test_a_body_over_the_limit_is_refused_with_413(make_server: ServerFactory) -> None:
    srv = make_server(max_body=1000)
    client = H2Client(srv.port)
    stream_id = client.request("/api/publish", "POST", end=False,
                               headers=[("x-api-key", API_KEY)])
    client.conn.send_data(stream_id, b"x" * 2000)
    client.flush()
    client.until(lambda _: client.ended(stream_id))
    assert client.status(stream_id) == 413
    assert b"body larger than 1000 bytes" in client.body(stream_id)
    # and a declared length over the limit is refused from the head
    declared = client.request("/api/publish", "POST", end=False,
                              headers=[("x-api-key", API_KEY), ("content-length", "5000")])
    client.until(lambda _: client.ended(declared))
    assert client.status(declared) == 413
    # the connection goes on
    ok = client.request("/health")
    client.until(lambda _: client.ended(ok))
    assert client.status(ok) == 200
    client.close()


def test_a_request_that_never_ends_gets_408(make_server: ServerFactory) -> None:
    srv = make_server(head_timeout=0.5)
    client = H2Client(srv.port)
    stream_id = client.request("/api/publish", "POST", end=False,
                               headers=[("x-api-key", API_KEY)])
    client.until(lambda _: client.ended(stream_id))
    assert client.status(stream_id) == 408
    assert b"request not received in time" in client.body(stream_id)
    client.close()


def test_a_protocol_error_ends_that_connection_only(server: LiveServer) -> None:
    client = H2Client(server.port)
    # WINDOW_UPDATE with an increment of 0: PROTOCOL_ERROR (RFC 9113 §6.9)
    client.sock.sendall(b"\x00\x00\x04\x08\x00\x00\x00\x00\x00" + b"\x00\x00\x00\x00")
    client.until(lambda _: client.closed or any(isinstance(e, ConnectionTerminated)
                                                for e in client.events))
    with httpx.Client(http1=False, http2=True, timeout=10) as other:
        assert other.get(server.url + "/health").status_code == 200
    client.close()


def test_an_http2_connection_over_the_address_budget_is_refused_with_429(
        make_server: ServerFactory) -> None:
    """The connection budgets are the HTTP/1.1 ones (same lease): the stream gets the 429,
    then the connection is closed with GOAWAY."""
    srv = make_server(max_connections_per_ip=1)
    first = H2Client(srv.port)
    held = first.request("/events?channel=chat:budget")
    first.until(lambda _: first.status(held) == 200)
    second = H2Client(srv.port)
    stream_id = second.request("/health")
    second.until(lambda _: second.ended(stream_id))
    assert second.status(stream_id) == 429
    assert b"too many connections from" in second.body(stream_id)
    second.until(lambda _: second.closed or any(isinstance(e, ConnectionTerminated)
                                                for e in second.events))
    # the first one is still served, on its held stream and on new ones
    ok = first.request("/health")
    first.until(lambda _: first.ended(ok))
    assert first.status(ok) == 200
    first.close()
    second.close()


def test_streams_reset_at_once_leave_nothing_behind(server: LiveServer) -> None:
    """Rapid reset (CVE-2023-44487's pattern): streams opened and reset before their endpoint
    takes them over hold no connection, subscription or slot afterwards."""
    client = H2Client(server.port)
    for _ in range(300):
        stream_id = client.request("/events?channel=chat:reset", flush=False)
        client.conn.reset_stream(stream_id, ErrorCodes.CANCEL)
    client.flush()
    ok = client.request("/health")
    client.until(lambda _: client.ended(ok))
    assert client.status(ok) == 200
    with httpx.Client(timeout=10) as http:
        for _ in range(200):
            counts = http.get(server.url + "/health").json()
            if counts["connections"] == counts["channels"] == 0:
                break
        assert counts["connections"] == counts["channels"] == 0, counts
    client.close()
