"""Mercure across nodes over one real Redis: a subscriber on node B receives the updates
published on node A (Mercure or server API), and resumes on B or on A with its
``Last-Event-ID``: no loss, no duplicates."""

from __future__ import annotations

import httpx
import pytest

from tests.cluster.conftest import API_KEY, ClusterFactory, Node, make_cluster
from tests.cluster.sse import SseStream

pytestmark = pytest.mark.redis
__all__ = ["make_cluster"]
HUB = "/.well-known/mercure"


async def publish(http: httpx.AsyncClient, node: Node, topic: str, data: str) -> str:
    r = await http.post(node.url + HUB, data={"topic": topic, "data": data},
                        headers={"X-API-Key": API_KEY})
    assert r.status_code == 200, r.text
    return r.text


async def test_subscriber_on_b_receives_and_resumes(make_cluster: ClusterFactory) -> None:
    _, (a, b) = make_cluster("AB", "--mercure-anonymous")
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("GET", b.url + HUB, params={"topic": "news"}) as r:
            stream = SseStream(r)
            await stream.subscribed()
            first = await publish(http, a, "news", "m0")
            await publish(http, a, "other", "not for us")
            await a.published(http, "mercure:news", "m1")  # the server API on node A
            got = [await stream.next_event(), await stream.next_event()]
        assert [(e.data, e.id) for e in got[:1]] == [("m0", first)]
        assert got[1].data == "m1"
        for i in range(2, 5):
            await publish(http, a, "news", f"m{i}")
        # resume on B with the id of the last event received (a hub position id)
        async with http.stream("GET", b.url + HUB, params={"topic": "news"},
                               headers={"Last-Event-ID": got[1].id}) as r:
            assert r.headers["last-event-id"] == got[1].id
            stream = SseStream(r)
            assert await stream.datas(3) == ["m2", "m3", "m4"]
            await publish(http, a, "news", "m5")
            assert await stream.datas(1) == ["m5"]
        # and on A, from the update id of m0
        async with http.stream("GET", a.url + HUB, params={"topic": "news"},
                               headers={"Last-Event-ID": first}) as r:
            assert await SseStream(r).datas(5) == ["m1", "m2", "m3", "m4", "m5"]
