"""Running out of file descriptors (``ulimit -n``): a 503 before it, a log line at it."""

from __future__ import annotations

import socket
from contextlib import ExitStack

import pytest

from ..serve_process import ServeFactory, serve  # noqa: F401 - fixture
from .rawhttp import connect, read_all, read_head, status

NOFILE = 200
"""The server's ``ulimit -n``: its total budget defaults to 100 connections."""


@pytest.mark.timeout(60)
def test_default_total_budget_follows_ulimit_and_exhaustion_is_logged(
        serve: ServeFactory) -> None:  # noqa: F811
    server = serve("--max-connections-per-ip", "0", nofile=NOFILE)
    try:
        with ExitStack() as stack:
            for _ in range(NOFILE - 100):
                sock = stack.enter_context(connect(server.port))
                sock.sendall(b"GET /events?channel=u HTTP/1.1\r\nHost: x\r\n\r\n")
                head, _ = read_head(sock)
                assert head.startswith(b"HTTP/1.1 200"), head
            # over the budget derived from ulimit -n: a clear answer, not a reset
            with connect(server.port) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                out = read_all(sock)
            assert status(out) == 503 and b"retry-after: 5" in out
            # refused clients that never send a request still hold descriptors for a while:
            # past the budget the descriptors run out, and that is logged
            for _ in range(150):
                try:
                    stack.enter_context(socket.create_connection(("127.0.0.1", server.port),
                                                                 timeout=5))
                except OSError:
                    break
            with connect(server.port) as sock:  # a round trip: the server saw them all
                try:
                    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                    read_all(sock)
                except OSError:
                    pass
    finally:
        server.stop()
    log = server.log()
    # logged, and rate-limited: one line per 10 s however many were refused
    assert 1 <= log.count("refusing connections: 100 open, max_connections is 100") <= 3, log
    assert 1 <= log.count(f"of ulimit -n {NOFILE} in use") <= 3, log
    assert "Traceback" not in log
