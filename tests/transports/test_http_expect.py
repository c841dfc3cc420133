"""``Expect: 100-continue`` (RFC 9110 §10.1.1): 100 before the body, or the final status."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from ..conftest import API_KEY, LiveServer
from .rawhttp import connect, read_all, read_head, read_response, status

BODY = json.dumps({"channel": "exp", "data": "x" * 5000}).encode()


def expect_head(path: str, length: int, key: str = API_KEY) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-API-Key: {key}\r\nContent-Length: {length}\r\n"
            "Expect: 100-continue\r\n\r\n").encode()


def test_acceptable_request_gets_100_then_the_answer(server: LiveServer) -> None:
    """What curl does for a large body: send the head, wait for 100, then send the body."""
    with connect(server.port) as sock:
        sock.sendall(expect_head("/api/publish", len(BODY)))
        interim, rest = read_head(sock)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        assert rest == b""
        sock.sendall(BODY)
        head, body, _ = read_response(sock)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert "result" in json.loads(body)


@pytest.mark.parametrize(("head", "code"), [
    (expect_head("/api/publish", 5_000_000), 413),
    (expect_head("/api/publish", len(BODY), key="wrong"), 401),
    (expect_head("/no/such/endpoint", len(BODY)), 404),
    (expect_head("/health", len(BODY)), 405),
])
def test_unacceptable_request_gets_the_final_status_without_100(server: LiveServer,
                                                                head: bytes, code: int) -> None:
    with connect(server.port) as sock:
        sock.sendall(head)  # the body is never sent: the client waits for 100
        out = read_all(sock)
    assert status(out) == code, out[:300]
    assert b"100 Continue" not in out
    assert b"connection: close" in out


def test_other_expectations_are_417(server: LiveServer) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     b"Expect: teapot\r\n\r\n")
        out = read_all(sock)
    assert status(out) == 417


def test_100_waits_for_the_answers_to_earlier_pipelined_requests(server: LiveServer) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                     + expect_head("/api/publish", len(BODY)))
        head, _, rest = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200")
        interim, rest = read_head(sock, rest)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(BODY)
        head, _, _ = read_response(sock, rest)
    assert head.startswith(b"HTTP/1.1 200"), head


def test_body_sent_without_waiting_is_read_too(server: LiveServer) -> None:
    """A client may send the body at once (or after its own timeout): the 100 then goes out
    before the final answer, and both are read in order."""
    with connect(server.port) as sock:
        sock.sendall(expect_head("/api/publish", len(BODY)) + BODY)
        interim, rest = read_head(sock)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        head, _, _ = read_response(sock, rest)
    assert head.startswith(b"HTTP/1.1 200"), head


def test_httpx_with_expect_header(server: LiveServer) -> None:
    r = httpx.post(server.url + "/api/publish", content=BODY,
                   headers={"X-API-Key": API_KEY, "Content-Type": "application/json",
                            "Expect": "100-continue"})
    assert r.status_code == 200 and "result" in r.json()
    r = httpx.post(server.url + "/api/publish", content=BODY,
                   headers={"X-API-Key": "wrong", "Expect": "100-continue"})
    assert r.status_code == 401


def test_http10_expect_is_ignored(server: LiveServer) -> None:
    """RFC 9110 §10.1.1: a server MUST ignore 100-continue in an HTTP/1.0 request."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(expect_head("/api/publish", len(BODY)).replace(b"HTTP/1.1", b"HTTP/1.0")
                     + BODY)
        out = read_all(sock)
    assert out.startswith(b"HTTP/1.1 200"), out[:300]
    assert b"100 Continue" not in out


def test_curl_gets_100_continue(server: LiveServer, tmp_path: Path) -> None:
    """curl with ``Expect: 100-continue`` (which it sends by itself for large bodies) waits
    up to 1 s for the 100 before it sends the body."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    path = tmp_path / "body.json"
    path.write_text(json.dumps({"channel": "exp", "data": "x" * 600_000}))
    r = subprocess.run([curl, "-sv", "-H", f"X-API-Key: {API_KEY}", "-H",
                        "Content-Type: application/json", "-H", "Expect: 100-continue",
                        "--data-binary", f"@{path}", server.url + "/api/publish"],
                       capture_output=True, timeout=30, check=False)
    assert r.returncode == 0, r.stderr
    assert b"> Expect: 100-continue" in r.stderr
    assert b"< HTTP/1.1 100 Continue" in r.stderr
    assert "result" in json.loads(r.stdout)


def test_no_stray_100_when_the_body_came_with_pipelined_requests(server: LiveServer) -> None:
    """The body is already in when the request's turn comes: no 100 is owed any more, and
    none may follow its final answer (it would be read as part of the next exchange)."""
    with connect(server.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                     + expect_head("/api/publish", len(BODY)) + BODY)
        first, _, rest = read_response(sock)
        head, _, rest = read_response(sock, rest)
        if head.startswith(b"HTTP/1.1 100"):  # allowed before the final answer
            head, _, rest = read_response(sock, rest)
        assert first.startswith(b"HTTP/1.1 200") and head.startswith(b"HTTP/1.1 200"), head
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = rest + read_all(sock)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", out) == [b"200"], out
