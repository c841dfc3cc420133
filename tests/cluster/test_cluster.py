"""Three livehub processes over one Redis: fan-out across nodes and resume on another node."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from .conftest import Node
from .sse import SseStream

pytestmark = pytest.mark.redis


async def test_publication_through_a_reaches_websocket_and_sse_on_b_and_c(
        cluster: list[Node]) -> None:
    a, b, c = cluster
    async with httpx.AsyncClient(timeout=10) as http:
        base = await a.published(http, "news", "m0")
        async with http.stream("GET", b.url + "/events", params={"channel": "news"}) as rb, \
                http.stream("GET", c.url + "/events", params={"channel": "news"}) as rc, \
                websockets.connect(c.ws_url + "/ws?channel=news&format=json") as ws_json, \
                websockets.connect(b.ws_url + "/ws?channel=news&since="
                                   + base["cursor"]) as ws_raw:
            sse_b, sse_c = SseStream(rb), SseStream(rc)
            await sse_b.subscribed()
            await sse_c.subscribed()
            assert json.loads(await ws_json.recv())["type"] == "cursor"
            for i in range(1, 4):
                await a.published(http, "news", f"m{i}")
            expected = ["m1", "m2", "m3"]
            assert await sse_b.datas(3) == expected
            assert await sse_c.datas(3) == expected
            lines = [json.loads(await ws_json.recv()) for _ in range(3)]
            assert [(m["type"], m["data"]) for m in lines] == [("pub", d) for d in expected]
            async with asyncio.timeout(10):
                assert [await ws_raw.recv() for _ in range(3)] == expected
            assert sse_b.last_id == sse_c.last_id == lines[-1]["cursor"]


async def test_client_dropped_from_a_resumes_on_b_without_loss(cluster: list[Node]) -> None:
    a, b, c = cluster
    channels = [("channel", "feed"), ("channel", "chat:lobby")]
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("GET", a.url + "/events", params=channels) as ra:
            sse = SseStream(ra)
            await sse.subscribed()
            await c.published(http, "feed", "f1")
            await b.published(http, "chat:lobby", "l1")
            await a.published(http, "feed", "f2")
            got = await sse.datas(3)
            cursor = sse.last_id
        # dropped: meanwhile every node keeps publishing
        await a.published(http, "feed", "f3")
        await b.published(http, "chat:lobby", "l2")
        await c.published(http, "feed", "f4")
        async with http.stream("GET", b.url + "/events", params=channels,
                               headers={"Last-Event-ID": cursor}) as rb:
            sse = SseStream(rb)
            rest = await sse.datas(3)
            await c.published(http, "chat:lobby", "l3")
            rest += await sse.datas(1)
    assert got == ["f1", "l1", "f2"]
    assert rest == ["f3", "l2", "f4", "l3"]
