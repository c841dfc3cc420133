"""After an endpoint has taken the socket over, any error is answered on that connection with a
documented code and the connection is gone (issue 8, item 3): no answer on a socket the HTTP
layer no longer owns, no zombie that gets heartbeats and no publications."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets

from livehub.core.channels import Namespaces, public_options
from livehub.core.memory import MemoryBroker
from livehub.core.node import Node
from livehub.transports.context import ServerSettings

from ..conftest import API_KEY, TEST_NAMESPACES, LiveServer
from ..sseclient import Interpreter


class BrokenBroker(MemoryBroker):
    """The memory broker, but subscribing to channels named ``broken`` fails with an error
    that is not livehub's (what a codec bug or a ``redis.ResponseError`` looks like)."""

    async def subscribe(self, channel: str) -> None:
        if channel.endswith("broken"):
            raise ValueError("codec: unexpected reply")
        await super().subscribe(channel)


class BrokenServer(LiveServer):
    def create_node(self) -> Node:
        return Node(BrokenBroker(), self.namespaces, release_delay=0.05, limits=self.limits)


@pytest.fixture
def broken() -> object:
    srv = BrokenServer(ServerSettings(api_key=API_KEY, clock=False, port=0),
                       Namespaces(public_options(), TEST_NAMESPACES))
    srv.start()
    yield srv
    srv.stop()


def _health(srv: LiveServer) -> dict[str, int]:
    body: dict[str, int] = httpx.get(srv.url + "/health").json()
    return body


async def _no_connections(srv: LiveServer) -> None:
    """The server holds no long-lived connection (waits for closing handshakes to end)."""
    deadline = time.monotonic() + 10
    while _health(srv)["connections"] and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert _health(srv)["connections"] == 0


async def test_sse_gets_a_disconnect_and_is_gone(broken: BrokenServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", broken.url + "/events", params={"channel": "chat:broken"}) as r:
        assert r.status_code == 200
        interpreter, events = Interpreter(), []
        async for line in r.aiter_lines():  # ends: the server closed the stream
            event = interpreter.feed(line)
            if event is not None:
                events.append(event)
    assert [e.event for e in events] == ["disconnect"]
    assert json.loads(events[0].data) == {"code": 3004, "reason": "internal server error",
                                          "reconnect": True}
    await _no_connections(broken)


async def test_stream_gets_a_disconnect_line_and_is_gone(broken: BrokenServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", broken.url + "/stream", params={"channel": "chat:broken"}) as r:
        lines = [json.loads(line) async for line in r.aiter_lines() if line]
    assert lines == [{"type": "disconnect", "code": 3004, "reason": "internal server error",
                      "reconnect": True}]
    await _no_connections(broken)


async def test_websocket_is_closed_with_1011_and_is_gone(broken: BrokenServer) -> None:
    async with websockets.connect(broken.ws_url + "/ws?channel=chat:broken") as ws:
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    await _no_connections(broken)


async def test_other_channels_still_work(broken: BrokenServer) -> None:
    async with websockets.connect(broken.ws_url + "/ws?channel=chat:fine") as ws:
        async with websockets.connect(broken.ws_url + "/ws?channel=chat:broken") as bad:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(bad.recv(), 5)
        await asyncio.to_thread(broken.publish, "chat:fine", "still here")
        assert await asyncio.wait_for(ws.recv(), 5) == "still here"
