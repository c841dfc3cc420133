"""HTTP/1.1 layer: malformed input, limits, keep-alive, pipelining, CORS, 404/405."""

from __future__ import annotations

import socket

import httpx
import pytest

from ..conftest import LiveServer


def exchange(port: int, raw: bytes, *, read_all: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(raw)
        out = b""
        while (chunk := s.recv(65536)):
            out += chunk
            if not read_all:
                break
        return out


@pytest.mark.parametrize(("raw", "status"), [
    (b"NOT HTTP AT ALL\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost x\r\n\r\n", b"400"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", b"414"),
    (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", b"431"),
    (b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", b"413"),
])
def test_malformed_requests_get_a_status_and_close(server: LiveServer, raw: bytes,
                                                   status: bytes) -> None:
    out = exchange(server.port, raw)
    assert out.split(b" ")[1] == status, out[:200]
    assert b"connection: close" in out.lower()
    assert b"Traceback" not in out


def test_chunked_body_over_limit(server: LiveServer) -> None:
    body = b"".join(b"%x\r\n%s\r\n" % (65536, b"x" * 65536) for _ in range(20)) + b"0\r\n\r\n"
    out = exchange(server.port, b"POST /api/publish HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert out.startswith(b"HTTP/1.1 413")


def test_keep_alive_and_pipelining(server: LiveServer) -> None:
    req = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(req * 3 + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = b""
        while (chunk := s.recv(65536)):
            out += chunk
    assert out.count(b"HTTP/1.1 200 OK") == 4


def test_not_found_and_method_not_allowed(server: LiveServer) -> None:
    r = httpx.get(server.url + "/nope")
    assert r.status_code == 404 and "no such endpoint" in r.json()["error"]["message"]
    r = httpx.get(server.url + "/api/publish")
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_cors_preflight_and_simple(make_server) -> None:  # type: ignore[no-untyped-def]
    srv = make_server(allowed_origins=("http://app.test",), cors_credentials=True)
    r = httpx.options(srv.url + "/events", headers={
        "Origin": "http://app.test", "Access-Control-Request-Method": "GET"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "http://app.test"
    assert "Authorization" in r.headers["access-control-allow-headers"]
    assert r.headers["access-control-allow-credentials"] == "true"
    r = httpx.get(srv.url + "/health", headers={"Origin": "http://other.test"})
    assert "access-control-allow-origin" not in r.headers


def test_head_timeout_closes_idle_partial_requests(make_server) -> None:  # type: ignore[no-untyped-def]
    srv = make_server(head_timeout=0.2)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=15) as s:
        s.sendall(b"GET /health HTTP/1.1\r\n")  # never finishes the head
        out = s.recv(65536)
    assert out.startswith(b"HTTP/1.1 408")


def test_landing_page(server: LiveServer) -> None:
    r = httpx.get(server.url + "/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "new EventSource('/events?channel=clock')" in r.text
    assert httpx.get(server.url + "/static/livehub.css").status_code == 200
