"""A subscriber that stops reading is disconnected (3008); nobody else waits or loses data."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time

import httpx
import websockets

from livehub.core.limits import Limits

from ..conftest import LiveServer


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
