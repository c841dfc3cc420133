"""HEAD (RFC 9110 §9.3.2): the head a GET would get, no body, and nothing is streamed."""

from __future__ import annotations

import httpx
import pytest

from ..centrifugo.conftest import make_cf_server
from ..conftest import LiveServer
from .rawhttp import connect, read_head, read_response


@pytest.mark.parametrize(("path", "content_type"), [
    ("/events?channel=h", b"text/event-stream"),
    ("/stream?channel=h", b"application/x-ndjson"),
])
def test_head_of_a_stream_is_headers_only(server: LiveServer, path: str,
                                          content_type: bytes) -> None:
    with connect(server.port) as sock:
        sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                     + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        head, rest = read_head(sock)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"content-type: " + content_type in head
        assert b"content-length" not in head.lower()  # a stream has no length
        assert b"transfer-encoding" not in head.lower()
        # no body, no take-over: the next answer on the same connection follows at once
        head, body, _ = read_response(sock, rest)
        assert head.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in body
    assert server.call_soon(lambda: server.app.ctx.hub.subscriber_count("h")) == 0  # type: ignore[union-attr]
    assert server.call_soon(lambda: len(server.app.ctx.connections)) == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("path", ["/health", "/", "/poll?channel=h"])
def test_head_of_other_get_endpoints_matches_get(server: LiveServer, path: str) -> None:
    get = httpx.get(server.url + path)
    head = httpx.head(server.url + path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    if path == "/":  # the others carry counters and cursors that may move in between
        assert head.headers["content-length"] == get.headers["content-length"]


def test_head_of_a_websocket_endpoint_is_not_taken_over(server: LiveServer) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"HEAD /ws?channel=h HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")
        head, rest = read_head(sock)
    assert not head.startswith(b"HTTP/1.1 101"), head
    assert rest == b""  # headers only


def test_head_never_opens_a_stream_on_an_endpoint_that_does_not_answer_it() -> None:
    """``take_over`` refuses HEAD: the Centrifugo unidirectional SSE endpoint (GET) gets a
    405 head instead of a stream and a session."""
    srv = make_cf_server()
    try:
        with connect(srv.port) as sock:
            sock.sendall(b"HEAD /connection/uni_sse?cf_connect=%7B%7D HTTP/1.1\r\nHost: x\r\n"
                         b"\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            head, rest = read_head(sock)
            assert head.startswith(b"HTTP/1.1 405"), head
            assert b"allow: GET" in head
            head, _, _ = read_response(sock, rest)  # no body came in between
            assert head.startswith(b"HTTP/1.1 200")
        assert srv.call_soon(lambda: len(srv.app.ctx.connections)) == 0  # type: ignore[union-attr]
    finally:
        srv.stop()
