"""One slow connection never affects another: slow Centrifugo SSE clients that never read, in
the same flushes as fast raw WebSocket subscribers (issue 8, item 1)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.parse

import websockets

from livehub.core.limits import Limits

from .conftest import CfServer, make_cf_server, token

CHANNEL = "chat:flood"


def _slow_sse(port: int, user: str) -> socket.socket:
    """A Centrifugo SSE client subscribed to ``CHANNEL`` (server-side, by its token) that never
    reads, with a small receive buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    connect = json.dumps({"id": 1, "connect": {"token": token(user, channels=[CHANNEL])}})
    sock.sendall(f"GET /connection/sse?cf_connect={urllib.parse.quote(connect)} HTTP/1.1\r\n"
                 "Host: x\r\n\r\n".encode())
    return sock


def _subscribers(srv: CfServer) -> int:
    assert srv.app is not None
    hub = srv.app.ctx.hub
    return srv.call_soon(lambda: hub.subscriber_count(CHANNEL))


def _connections(srv: CfServer) -> int:
    assert srv.app is not None
    app = srv.app
    return srv.call_soon(lambda: len(app.ctx.connections))


async def _until(check: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:  # type: ignore[operator]
        await asyncio.sleep(0.02)


async def test_slow_centrifugo_sse_clients_do_not_deafen_fast_websockets() -> None:
    srv = make_cf_server(limits=Limits(client_publish_rate=0))
    slow: list[socket.socket] = []
    try:
        # the slow ones first: they come before the fast ones in every flush
        for i in range(3):
            slow.append(_slow_sse(srv.port, f"slow{i}"))
            await _until(lambda n=i + 1: _subscribers(srv) == n)
        assert _subscribers(srv) == 3
        url = srv.ws_url + f"/ws?channel={CHANNEL}"
        fast = [await websockets.connect(url, max_size=None, max_queue=None) for _ in range(3)]
        publisher = await websockets.connect(url)
        await _until(lambda: _subscribers(srv) == 7)

        received: list[list[int]] = [[] for _ in fast]

        async def read(ws: websockets.ClientConnection, into: list[int]) -> None:
            async for message in ws:
                into.append(int(str(message)[:7]))

        readers = [asyncio.create_task(read(ws, into))
                   for ws, into in zip(fast, received, strict=True)]
        drainer = asyncio.create_task(read(publisher, []))  # a subscriber too: keep it reading
        # ~8 MB: more than the kernel holds for a slow client; sent in batches that the fast
        # ones receive before the next, so no loop turn queues more than max_buffer for them
        n, batch, payload = 2000, 100, "x" * 4088
        for start in range(0, n, batch):
            for i in range(start, start + batch):
                await publisher.send(f"{i:07d} " + payload)
            await _until(lambda end=start + batch: all(len(r) >= end for r in received))
        assert received == [list(range(n))] * len(fast)
        # the slow ones were closed (3008) and the server holds nothing for them
        await _until(lambda: _connections(srv) == 4)
        assert _connections(srv) == 4 and _subscribers(srv) == 4
        for task in [*readers, drainer]:
            task.cancel()
        for ws in [*fast, publisher]:
            await ws.close()
    finally:
        for sock in slow:
            sock.close()
        srv.stop()
