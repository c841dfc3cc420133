"""Faults a cluster must survive: Redis restarted, Redis unreachable, a node killed."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import websockets

from .conftest import ClusterFactory, Node
from .sse import SseStream

pytestmark = pytest.mark.redis


async def publish_when_back(node: Node, http: httpx.AsyncClient, channel: str, data: str,
                            timeout: float = 15) -> dict[str, Any]:
    """Publish, retrying the 503s of a node whose Redis is coming back."""
    async with asyncio.timeout(timeout):
        while True:
            r = await node.publish(http, channel, data)
            if r.status_code == 200:
                result: dict[str, Any] = r.json()["result"]
                return result
            assert r.status_code == 503, r.text
            await asyncio.sleep(0.1)


async def test_redis_restart_clients_stay_and_lost_history_is_reported(
        make_cluster: ClusterFactory) -> None:
    redis, (a, b) = make_cluster("AB")
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("GET", b.url + "/events", params={"channel": "r"}) as rb, \
                websockets.connect(a.ws_url + "/ws?channel=r&format=json") as ws:
            sse = SseStream(rb)
            await sse.subscribed()
            assert json.loads(await ws.recv())["type"] == "cursor"
            before = await a.published(http, "r", "before")
            assert await sse.datas(1) == ["before"]
            assert json.loads(await ws.recv())["data"] == "before"
            redis.kill()
            redis.start()  # same port, empty: every stream is lost
            after = await publish_when_back(a, http, "r", "after")
            assert after["epoch"] != before["epoch"]
            # still connected on both nodes; told that continuity was lost, then live again
            reset = await sse.next_event()
            assert reset.event == "reset" and SseStream.json(reset)["channels"] == ["r"]
            assert await sse.datas(1) == ["after"]
            assert sse.last_id == after["cursor"]
            async with asyncio.timeout(10):
                got = [json.loads(await ws.recv()) for _ in range(2)]
            assert [m["type"] for m in got] == ["reset", "pub"] and got[1]["data"] == "after"
        # a client resuming with a cursor from before the restart is told too
        async with http.stream("GET", a.url + "/events", params={"channel": "r"},
                               headers={"Last-Event-ID": before["cursor"]}) as ra:
            sse = SseStream(ra)
            assert (await sse.next_event()).event == "reset"
            await b.published(http, "r", "later")
            assert await sse.datas(1) == ["later"]
    for node in (a, b):
        assert "reconnected to Redis pub/sub" in node.log()


async def test_redis_unreachable_publish_fails_fast_and_recovers(
        make_cluster: ClusterFactory) -> None:
    redis, (a, b) = make_cluster("AB")
    async with httpx.AsyncClient(timeout=10) as http, \
            http.stream("GET", b.url + "/events", params={"channel": "u"}) as rb:
        sse = SseStream(rb)
        await sse.subscribed()
        await a.published(http, "u", "before")
        assert await sse.datas(1) == ["before"]
        redis.kill()
        for node in (a, b):
            started = time.monotonic()
            r = await node.publish(http, "u", "lost")
            assert time.monotonic() - started < 1.5
            assert r.status_code == 503
            error = r.json()["error"]
            assert error["code"] == 108 and "Redis" in error["message"]
            assert (await http.get(node.url + "/health")).status_code == 200
        # the client stays connected: heartbeats keep coming
        for _ in range(3):
            assert (await sse.next()).event == "comment"
        redis.start()
        await publish_when_back(a, http, "u", "back")
        assert (await sse.next_event()).event == "reset"  # Redis lost "before"
        assert await sse.datas(1) == ["back"]


async def test_node_killed_clients_resume_on_another_node(
        make_cluster: ClusterFactory) -> None:
    _, (a, b) = make_cluster("AB")
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("GET", a.url + "/events", params={"channel": "k"}) as ra:
            sse = SseStream(ra)
            await sse.subscribed()
            for i in (1, 2):
                await b.published(http, "k", f"k{i}")
            assert await sse.datas(2) == ["k1", "k2"]
            cursor = sse.last_id
            a.kill()
            with pytest.raises((EOFError, httpx.TransportError)):
                await sse.next()
        for i in (3, 4):
            await b.published(http, "k", f"k{i}")
        async with http.stream("GET", b.url + "/events", params={"channel": "k"},
                               headers={"Last-Event-ID": cursor}) as rb:
            sse = SseStream(rb)
            assert await sse.datas(2) == ["k3", "k4"]
            await b.published(http, "k", "k5")
            assert await sse.datas(1) == ["k5"]
