"""Write-side flow control: a client that pipelines requests and never reads its answers."""

from __future__ import annotations

import socket

import httpx
import pytest

from ..serve_process import ServeFactory, serve  # noqa: F401 - fixture

REQUESTS = 10_000
PATH = "/" + "x" * 7000
"""Each answer is a 404 that names the path: ~7 KB per answer, ~70 MB for all of them."""
RSS_GROWTH_BOUND = 25 * 1024 * 1024
"""Unbounded buffering of the answers costs ~70 MB; with flow control the server holds one
read of requests and the transport's high-water mark (a few hundred KB)."""


@pytest.mark.timeout(120)
def test_pipelining_client_that_never_reads_is_paused(
        serve: ServeFactory) -> None:  # noqa: F811
    server = serve()
    url, port = server.url, server.port
    for _ in range(20):  # warm up: imports, first allocations
        assert httpx.get(url + PATH).status_code == 404
    before = server.rss()
    server.reset_peak()
    request = f"GET {PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    total = len(request) * REQUESTS
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.connect(("127.0.0.1", port))
        sock.settimeout(3)
        sent = 0
        try:
            for _ in range(REQUESTS):
                sock.sendall(request)
                sent += len(request)
        except TimeoutError:
            pass  # the server stopped reading: kernel buffers are full
        # another client is served meanwhile
        assert httpx.get(url + "/health", timeout=10).status_code == 200
        peak = server.peak_rss()
        print(f"sent {sent} of {total} bytes; RSS {before} -> peak {peak}")
        assert peak - before < RSS_GROWTH_BOUND, (before, peak)
        # the server stopped reading long before the end (70 MB do not fit in the kernel)
        assert sent < total
