"""Per-connection budgets on the plain transports: client publications per second on ``/ws``
(token bucket, close 3013) and channels per stream on ``/events``, ``/stream``, ``/poll``
(issue 10, "What to build")."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from livehub.core.limits import Limits

from ..conftest import LiveServer, ServerFactory

# no refill worth speaking of during the test: exactly the burst passes
SLOW = Limits(client_publish_rate=0.001, client_publish_burst=10)


async def test_ws_publications_beyond_the_rate_close_3013(make_server: ServerFactory) -> None:
    srv = make_server(limits=SLOW)
    async with websockets.connect(srv.ws_url + "/ws?channel=chat:rate") as reader, \
            websockets.connect(srv.ws_url + "/ws?channel=chat:rate") as writer:
        for i in range(30):
            await writer.send(f"m{i}")
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(writer.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 3013
        assert "more than 0.001 publications per second (burst 10)" in info.value.rcvd.reason
        got = [await asyncio.wait_for(reader.recv(), 5) for _ in range(10)]
        assert got == [f"m{i}" for i in range(10)]
        # the reader is unaffected, and has its own budget
        await asyncio.to_thread(srv.publish, "chat:rate", "from the API")
        assert await asyncio.wait_for(reader.recv(), 5) == "from the API"
        await reader.send("mine")
        assert await asyncio.wait_for(reader.recv(), 5) == "mine"


@pytest.mark.parametrize("path", ["/events", "/stream", "/poll"])
def test_channels_per_stream_are_bounded(server: LiveServer, path: str) -> None:
    names = [f"c{i}" for i in range(65)]
    r = httpx.get(server.url + path, params={"channel": names})
    assert r.status_code == 400 and "at most 64 channels per stream" in r.text
    if path == "/poll":
        assert httpx.get(server.url + path, params={"channel": names[:64]}).status_code == 200


def test_ws_takes_exactly_one_channel(server: LiveServer) -> None:
    r = httpx.get(server.url + "/ws", params={"channel": ["a", "b"]})
    assert r.status_code == 400 and "exactly one channel" in r.text
