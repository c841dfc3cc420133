"""A subscriber that stops reading is disconnected (3008); nobody else waits or loses data."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import time

import httpx
import websockets

from livehub.core.limits import Limits

from ..conftest import LiveServer
from ..sseclient import Interpreter


def _raw_ws(port: int, path: str) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock


def _connections(srv: LiveServer) -> int:
    assert srv.app is not None
    app = srv.app
    return srv.call_soon(lambda: len(app.ctx.connections))


async def test_slow_websocket_subscriber_is_cut_off(make_server) -> None:  # type: ignore[no-untyped-def]
    # one publisher floods as fast as it can: no per-connection publication rate here
    srv: LiveServer = make_server(max_buffer=64 * 1024, limits=Limits(client_publish_rate=0))
    slow = await asyncio.to_thread(_raw_ws, srv.port, "/ws?channel=chat:flood")
    slow_sse = socket.socket()
    slow_sse.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow_sse.connect(("127.0.0.1", srv.port))
    slow_sse.sendall(b"GET /events?channel=chat:flood HTTP/1.1\r\nHost: x\r\n\r\n")
    n, size = 2000, 4096
    async with websockets.connect(srv.ws_url + "/ws?channel=chat:flood",
                                  max_size=None, max_queue=None) as good, \
            websockets.connect(srv.ws_url + "/ws?channel=chat:flood") as publisher:
        deadline = time.monotonic() + 5
        while _connections(srv) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        payload = "x" * (size - 8)

        async def drain() -> None:  # the publisher is a subscriber too: keep it reading
            async for _ in publisher:
                pass

        drainer = asyncio.create_task(drain())
        started = time.monotonic()
        for i in range(n):
            await publisher.send(f"{i:07d} " + payload)
        publish_time = time.monotonic() - started
        received = []
        while len(received) < n:
            msg = await asyncio.wait_for(good.recv(), 10)
            received.append(int(str(msg)[:7]))
        # the healthy subscriber got everything, in order, exactly once
        assert received == list(range(n))
        deadline = time.monotonic() + 10
        while _connections(srv) > 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert _connections(srv) == 2, "slow subscribers were not disconnected"
        drainer.cancel()
    slow.close()
    slow_sse.close()
    # the publisher was never stalled by the slow one (bounded, generous: no timing claim)
    assert publish_time < 30


def test_health_reports_counts(server: LiveServer) -> None:
    server.publish("x", 1)
    body = httpx.get(server.url + "/health").json()
    assert body["status"] == "ok" and body["publications"] == 0  # nobody subscribed to x


async def _subscribers(srv: LiveServer, channel: str, n: int) -> None:
    assert srv.app is not None
    hub = srv.app.ctx.hub
    while srv.call_soon(lambda: hub.subscriber_count(channel)) < n:
        await asyncio.sleep(0.01)


def _small_window_socket(port: int) -> socket.socket:
    """A client socket with a small receive buffer: the server's transport must hold most of
    what it writes (the kernel cannot absorb a large message)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def _read_sse(sock: socket.socket, n: int) -> list[str]:
    """The data of the first ``n`` SSE events on a raw socket (after the response head)."""
    loop = asyncio.get_running_loop()
    buffer = b""
    while True:
        head, sep, body = buffer.partition(b"\r\n\r\n")
        if sep:
            interpreter = Interpreter()
            events = [ev for line in body.decode().split("\n")
                      if (ev := interpreter.feed(line)) is not None]
            if len(events) >= n:
                assert head.startswith(b"HTTP/1.1 200")
                return [ev.data for ev in events[:n]]
        data = await loop.sock_recv(sock, 65536)
        assert data, "the server closed the stream"
        buffer += data


async def test_one_message_larger_than_max_buffer_is_delivered(make_server) -> None:  # type: ignore[no-untyped-def]
    """A connection may always hold one message, whatever its size (docs/limits.md); 8 MiB is
    more than the kernel buffers hold here, so the server's transport keeps most of it."""
    srv: LiveServer = make_server(max_buffer=64 * 1024, max_body=16 * 1024 * 1024,
                                  limits=Limits(max_publication_size=16 * 1024 * 1024))
    big = "y" * (8 * 1024 * 1024)
    with contextlib.closing(_small_window_socket(srv.port)) as sse:
        await asyncio.get_running_loop().sock_sendall(
            sse, b"GET /events?channel=chat:big HTTP/1.1\r\nHost: x\r\n\r\n")
        async with websockets.connect(srv.ws_url + "/ws?channel=chat:big", max_size=None,
                                      compression=None, ping_interval=None,
                                      sock=_small_window_socket(srv.port)) as ws:
            await asyncio.wait_for(_subscribers(srv, "chat:big", 2), 5)
            await asyncio.to_thread(srv.publish, "chat:big", big)
            await asyncio.to_thread(srv.publish, "chat:big", "after")
            assert await asyncio.wait_for(ws.recv(), 10) == big
            assert await asyncio.wait_for(ws.recv(), 10) == "after"
            assert await asyncio.wait_for(_read_sse(sse, 2), 10) == [big, "after"]
            assert _connections(srv) == 2
