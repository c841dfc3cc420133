"""A client that goes away while its request is being answered: the handler stops."""

from __future__ import annotations

import httpx

from ..conftest import LiveServer
from .rawhttp import connect, subscribers, wait_until


def test_dropped_long_poll_releases_its_subscription(server: LiveServer) -> None:
    cursor = httpx.get(server.url + "/poll", params={"channel": "lp"}).json()["cursor"]
    with connect(server.port) as sock:
        sock.sendall(f"GET /poll?channel=lp&cursor={cursor}&timeout=100 HTTP/1.1\r\n"
                     "Host: x\r\n\r\n".encode())
        wait_until(server, lambda app: subscribers("lp")(app) == 1)
    # the client is gone long before its 100 s timeout: the subscription goes with it
    wait_until(server, lambda app: subscribers("lp")(app) == 0)
    health = httpx.get(server.url + "/health").json()
    assert health["connections"] == 0
    # and the channel still works for the next poll
    r = httpx.get(server.url + "/poll", params={"channel": "lp", "cursor": cursor,
                                                 "timeout": "0"})
    assert r.status_code == 200


def test_a_client_gone_before_the_take_over_leaves_nothing_behind(server: LiveServer) -> None:
    """An endpoint that awaits before it takes the connection over (a token whose keys are
    fetched) and whose client leaves meanwhile: the stream it opens learns at once that the
    client is gone, and nothing stays among the live connections.  (An upgrade request stops
    reading until the take-over, so a WebSocket's owner sees the loss itself.)"""
    import asyncio
    import socket

    from livehub.protocols.plain.streams import sse_endpoint
    from livehub.transports.context import ServerContext
    from livehub.transports.messages import Request
    from livehub.transports.routing import Exchange

    left = asyncio.Event()
    finished: list[str] = []

    async def slow_events(ctx: ServerContext, request: Request, http: Exchange) -> None:
        await left.wait()
        try:
            await sse_endpoint(ctx, request, http)
        finally:
            finished.append(request.path)

    assert server.app is not None
    app = server.app
    server.call_soon(lambda: app.route("/slow-events", frozenset({"GET"}), slow_events))
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /slow-events?channel=gone HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_until(server, lambda a: any(c for c in a._http if c._busy))
        wait_until(server, lambda a: not a._http)  # the server saw the client go
    server.call_soon(left.set)
    wait_until(server, lambda a: len(finished) == 3)
    # no live connection is left, and the channel is released (after the hub's delay)
    assert server.call_soon(lambda: len(app.ctx.connections)) == 0
    wait_until(server, lambda a: a.ctx.hub.channel_count() == 0)
