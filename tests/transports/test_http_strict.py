"""HTTP/1.1 strictness (RFC 9112): Host, versions, framing of HTTP/1.0, fixed error texts."""

from __future__ import annotations

import json

import pytest

from ..conftest import LiveServer
from .rawhttp import connect, exchange, read_head, status, subscribers, wait_until


def error_message(response: bytes) -> str:
    body = response.partition(b"\r\n\r\n")[2]
    message: str = json.loads(body)["error"]["message"]
    return message


def test_http11_request_without_host_is_400(server: LiveServer) -> None:
    out = exchange(server.port, b"GET /health HTTP/1.1\r\n\r\n")
    assert status(out) == 400
    assert "Host" in error_message(out)
    assert b"connection: close" in out


def test_two_host_headers_are_400(server: LiveServer) -> None:
    out = exchange(server.port, b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert status(out) == 400
    assert "more than one Host" in error_message(out)


def test_http10_without_host_is_served(server: LiveServer) -> None:
    out = exchange(server.port, b"GET /health HTTP/1.0\r\n\r\n")
    assert status(out) == 200


@pytest.mark.parametrize(("raw", "code", "text"), [
    (b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTP/2.0 is not supported"),
    (b"GET /health HTTP/1.2\r\nHost: x\r\n\r\n", 505, "HTTP version not supported"),
    (b"GET /health HTTP/3.0\r\nHost: x\r\n\r\n", 505, "HTTP version not supported"),
    (b"GET /health\r\n\r\n", 400, "HTTP/0.9"),
    (b"GET /health HTTP/0.9\r\n\r\n", 400, "HTTP/0.9"),
])
def test_other_versions_are_not_answered_as_http11(server: LiveServer, raw: bytes, code: int,
                                                    text: str) -> None:
    out = exchange(server.port, raw)
    assert status(out) == code, out[:300]
    assert text in error_message(out)
    assert b'"status"' not in out  # never the endpoint's answer


def test_http10_with_transfer_encoding_is_400(server: LiveServer) -> None:
    out = exchange(server.port, b"POST /api/publish HTTP/1.0\r\nTransfer-Encoding: chunked\r\n"
                   b"Content-Type: application/json\r\n\r\n0\r\n\r\n")
    assert status(out) == 400
    assert "HTTP/1.0" in error_message(out)


FIXED_MESSAGES = {
    "invalid request method", "malformed request target", "malformed HTTP request",
    "malformed header field (RFC 9112 §5)", "malformed request line (RFC 9112 §3)",
    "invalid Content-Length (RFC 9112 §6.2)", "malformed chunked body (RFC 9112 §7.1)",
    "Content-Length with Transfer-Encoding is refused (RFC 9112 §6.1)",
    "unsupported Transfer-Encoding (RFC 9112 §6.1)",
}


@pytest.mark.parametrize("raw", [
    b"NOT HTTP AT ALL\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\x01\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\nHost: x\n\n",
    b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
])
def test_error_bodies_are_fixed_texts_not_parser_internals(server: LiveServer,
                                                           raw: bytes) -> None:
    out = exchange(server.port, raw)
    assert status(out) == 400, out[:300]
    assert error_message(out) in FIXED_MESSAGES


def test_stream_to_an_http10_client_is_not_chunked(server: LiveServer) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /stream?channel=old HTTP/1.0\r\n\r\n")
        head, rest = read_head(sock)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"transfer-encoding" not in head.lower()
        assert b"connection: close" in head.lower()
        wait_until(server, lambda app: subscribers("old")(app) == 1)
        server.publish("old", "hello")
        while b'"hello"' not in rest:
            rest += sock.recv(65536)
    lines = [json.loads(line) for line in rest.split(b"\n") if line.strip()]
    assert [line["type"] for line in lines] == ["cursor", "pub"]  # no chunk sizes between
    assert lines[1]["data"] == "hello"



def test_chunked_stream_says_the_connection_closes_after_it(server: LiveServer) -> None:
    """A stream ends with the server closing the socket, so its head must say so (RFC 9112
    §9.6): else a client pool (Node's undici) reuses the socket for its next request when the
    last chunk arrives, and that request fails ("fetch failed") as the socket closes."""
    with connect(server.port) as sock:
        sock.sendall(b"GET /stream?channel=ka HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _ = read_head(sock)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"transfer-encoding: chunked" in head.lower()
        assert b"connection: close" in head.lower()
