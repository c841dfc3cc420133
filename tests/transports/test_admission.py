"""Connection budgets: per client address, in total, and trusted proxies' forwarding headers."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from livehub.transports.admission import (
    Admission,
    ConnectionLimits,
    Lease,
    canonical,
    forwarded_chain,
)
from livehub.wire.payload import PayloadKind

from ..conftest import LiveServer, ServerFactory
from .rawhttp import connect, read_all, read_head, status, subscribers, wait_until


def open_sse(port: int, channel: str, extra: str = "") -> tuple[socket.socket, bytes]:
    sock = connect(port)
    sock.sendall(f"GET /events?channel={channel} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
    head, rest = read_head(sock)
    return sock, head + rest


def read_event(sock: socket.socket, data: str) -> None:
    got = b""
    while f"data: {data}".encode() not in got:
        chunk = sock.recv(65536)
        assert chunk, got
        got += chunk


def refused(port: int, channel: str, extra: str = "") -> bytes:
    sock, head = open_sse(port, channel, extra)
    with sock:
        return head + read_all(sock)


@pytest.fixture
def limited(make_server: ServerFactory) -> LiveServer:
    return make_server(max_connections_per_ip=3)


def test_per_ip_limit_refuses_the_next_sse_and_websocket(
        limited: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    port = limited.port
    with ExitStack() as stack:
        streams = []
        for _ in range(2):
            sock, head = open_sse(port, "lim")
            stack.enter_context(sock)
            assert head.startswith(b"HTTP/1.1 200")
            streams.append(sock)
        ws = stack.enter_context(ws_connect(limited.ws_url + "/ws?channel=lim"))
        wait_until(limited, lambda app: subscribers("lim")(app) == 3)
        with caplog.at_level(logging.WARNING, logger="livehub.transports.admission"):
            out = refused(port, "lim")
            with pytest.raises(InvalidStatus) as info:
                ws_connect(limited.ws_url + "/ws?channel=lim")
        assert status(out) == 429
        assert b"retry-after: " in out.lower()
        message = json.loads(out.partition(b"\r\n\r\n")[2])["error"]["message"]
        assert "too many connections from 127.0.0.1" in message
        assert info.value.response.status_code == 429
        assert info.value.response.headers["Retry-After"]
        # one log line for the refusals, not one per refusal
        lines = [r for r in caplog.records if "refusing connections from" in r.getMessage()]
        assert len(lines) == 1
        # the admitted ones keep receiving (published from inside: 127.0.0.1 is at its limit)
        node = limited.app.ctx.node  # type: ignore[union-attr]
        limited.call(node.publish("lim", b"still here", PayloadKind.TEXT))
        for sock in streams:
            read_event(sock, "still here")
        assert ws.recv(timeout=5) == "still here"


def test_a_closed_connection_frees_its_place(limited: LiveServer) -> None:
    port = limited.port
    with ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(open_sse(port, "free")[0])
        assert status(refused(port, "free")) == 429
        first = stack.pop_all()
        first.close()
    admission = limited.app.admission  # type: ignore[union-attr]
    assert admission is not None

    def released(app: object) -> bool:
        admission.sweep()
        return admission.per_ip.get("127.0.0.1", 0) == 0

    wait_until(limited, released)
    sock, head = open_sse(port, "free")
    with sock:
        assert head.startswith(b"HTTP/1.1 200")


def test_total_limit_is_503(make_server: ServerFactory) -> None:
    srv = make_server(max_connections=2, max_connections_per_ip=0)
    with ExitStack() as stack:
        for _ in range(2):
            sock, head = open_sse(srv.port, "tot")
            stack.enter_context(sock)
            assert head.startswith(b"HTTP/1.1 200")
        out = refused(srv.port, "tot")
    assert status(out) == 503
    assert b"retry-after: " in out.lower()
    assert b"connection limit" in out


def test_forwarded_address_counts_only_from_a_trusted_proxy(
        make_server: ServerFactory) -> None:
    srv = make_server(max_connections_per_ip=1, trusted_proxies=("127.0.0.0/8",))
    a = "X-Forwarded-For: 203.0.113.7\r\n"
    b = "Forwarded: for=198.51.100.2;proto=http\r\n"
    with ExitStack() as stack:
        sock, head = open_sse(srv.port, "fwd", a)
        stack.enter_context(sock)
        assert head.startswith(b"HTTP/1.1 200")
        # same client behind the proxy: over its budget
        out = refused(srv.port, "fwd", a)
        assert status(out) == 429 and b"203.0.113.7" in out
        # another client behind the same proxy: its own budget
        sock, head = open_sse(srv.port, "fwd", b)
        stack.enter_context(sock)
        assert head.startswith(b"HTTP/1.1 200")


def test_forwarding_headers_from_an_untrusted_peer_are_ignored(
        make_server: ServerFactory) -> None:
    srv = make_server(max_connections_per_ip=1, trusted_proxies=("10.9.9.9",))
    with ExitStack() as stack:
        sock, head = open_sse(srv.port, "spoof", "X-Forwarded-For: 203.0.113.1\r\n")
        stack.enter_context(sock)
        assert head.startswith(b"HTTP/1.1 200")
        # a different claimed address does not buy a new budget: 127.0.0.1 is charged
        out = refused(srv.port, "spoof", "X-Forwarded-For: 203.0.113.2\r\n")
    assert status(out) == 429 and b"127.0.0.1" in out


# -- the client address, pure -----------------------------------------------------------------


@pytest.fixture
def admission() -> Iterator[Admission]:
    yield Admission(ConnectionLimits(max_connections=10, max_connections_per_ip=2,
                                     trusted_proxies=("10.0.0.0/8", "2001:db8::/32")))


@pytest.mark.parametrize(("headers", "chain"), [
    ({"x-forwarded-for": "203.0.113.7, 10.0.0.2"}, ["203.0.113.7", "10.0.0.2"]),
    ({"forwarded": 'for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"'},
     ["192.0.2.60", "2001:db8:cafe::17"]),
    ({"forwarded": "for=unknown, for=_hidden, for=198.51.100.3:80"}, ["198.51.100.3"]),
    ({"forwarded": "FOR=192.0.2.1", "x-forwarded-for": "203.0.113.9"}, ["192.0.2.1"]),
    ({"x-forwarded-for": "not an address, , 198.51.100.4"}, ["198.51.100.4"]),
    ({}, []),
])
def test_forwarded_chain(headers: dict[str, str], chain: list[str]) -> None:
    assert forwarded_chain(headers) == chain


def test_ipv4_on_a_dual_stack_socket_is_ipv4() -> None:
    assert canonical("::ffff:192.0.2.1") == "192.0.2.1"
    assert canonical("2001:db8::1") == "2001:db8::1" and canonical("10.0.0.1") == "10.0.0.1"
    assert forwarded_chain({"forwarded": 'for="[::ffff:10.1.2.3]:80"'}) == ["10.1.2.3"]


def test_client_is_the_rightmost_untrusted_address(admission: Admission) -> None:
    # the leftmost entry is whatever the client sent: a spoofing attempt is ignored
    headers = {"x-forwarded-for": "1.2.3.4, 203.0.113.7, 10.1.1.1"}
    assert admission.client_of("10.0.0.1", headers) == "203.0.113.7"
    assert admission.client_of("10.0.0.1", {}) == "10.0.0.1"
    assert admission.client_of("10.0.0.1", {"x-forwarded-for": "10.2.2.2"}) == "10.0.0.1"
    assert admission.trusted("2001:db8::5") and not admission.trusted("203.0.113.7")


def test_budgets_are_counted(admission: Admission) -> None:
    assert admission.admit("203.0.113.7") is None
    assert admission.admit("203.0.113.7") is None
    third = admission.admit("203.0.113.7")
    assert third is not None and third.status == 429
    assert admission.admit(None) is None  # a trusted proxy: total budget only
    admission.release("203.0.113.7")
    assert admission.admit("203.0.113.7") is None
    assert admission.total == 3


def test_a_proxy_connection_is_charged_to_the_client_of_each_request(
        admission: Admission) -> None:
    lease = Lease(admission, "10.0.0.1")
    assert lease.proxied and lease.take(-1) is None
    assert admission.per_ip == {}  # the proxy itself has no per-address budget
    assert lease.forwarded({"x-forwarded-for": "203.0.113.7"}) == "203.0.113.7"
    assert admission.per_ip == {"203.0.113.7": 1}
    # the next request on the same connection is another client's: the charge moves
    assert lease.forwarded({"forwarded": "for=198.51.100.9"}) == "198.51.100.9"
    assert admission.per_ip == {"198.51.100.9": 1}
    assert lease.forwarded({}) is None  # the proxy's own request
    lease.release()
    assert admission.per_ip == {} and admission.total == 0
