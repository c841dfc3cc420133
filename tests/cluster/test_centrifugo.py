"""The Centrifugo protocol across three livehub processes over one Redis: server API
publications, presence, join/leave, emulation requests and server API operations that reach
another node, with centrifuge-python and centrifuge-js (Node) as the clients."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from .cf import NS, Events, JsAgent, PyClient, js_agent
from .conftest import API_KEY, Node
from .sse import SseStream

pytestmark = [pytest.mark.redis, pytest.mark.node]


async def api(http: httpx.AsyncClient, node: Node, method: str, **params: Any) -> Any:
    r = await http.post(f"{node.url}/api/{method}", json=params, headers={"X-API-Key": API_KEY})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "error" not in body, body
    return body["result"]


@pytest.fixture
async def events() -> Events:
    return Events()


@pytest.fixture
async def js(js_modules: Path, events: Events) -> Any:
    async with js_agent(js_modules / "node_modules", events) as agent:
        yield agent


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def test_api_publication_on_a_reaches_python_on_b_js_on_c_and_sse(
        cf_cluster: list[Node], events: Events, js: JsAgent, http: httpx.AsyncClient) -> None:
    a, b, c = cf_cluster
    channel = f"{NS}:fanout"
    py = PyClient("py-b", b.ws_url + "/connection/websocket", "pia", events)
    await py.connect()
    try:
        assert (await py.subscribe(channel))["recoverable"]
        await js.connect("js-c", "jon", "websocket", c.ws_url + "/connection/websocket")
        await js.subscribe("js-c", channel)
        async with http.stream("GET", b.url + "/events", params={"channel": channel}) as rb:
            sse = SseStream(rb)
            await sse.subscribed()
            results = [await api(http, a, "publish", channel=channel, data={"n": i})
                       for i in (1, 2)]
            assert [r["offset"] for r in results] == [1, 2]
            for name in ("py-b", "js-c"):
                got = [await events.next("publication", client=name) for _ in range(2)]
                assert [(p["data"], p["offset"]) for p in got] == [({"n": 1}, 1), ({"n": 2}, 2)]
            assert await sse.datas(2) == ['{"n":1}', '{"n":2}']
            assert sse.last_id == results[-1]["cursor"]
    finally:
        await py.disconnect()


async def users_on(http: httpx.AsyncClient, node: Node, channel: str) -> list[str]:
    """The users in ``channel``'s presence as node ``node`` tells through the server API."""
    result = await api(http, node, "presence", channel=channel)
    return sorted(entry["user"] for entry in result["presence"].values())


async def test_presence_lists_clients_of_every_node(
        cf_cluster: list[Node], events: Events, js: JsAgent, http: httpx.AsyncClient) -> None:
    a, b, c = cf_cluster
    channel = f"{NS}:presence"
    ann = PyClient("ann", a.ws_url + "/connection/websocket", "ann", events)
    bob = PyClient("bob", b.ws_url + "/connection/websocket", "bob", events)
    ann_id = await ann.connect()
    try:
        await ann.subscribe(channel)
        cid_id = await js.connect("cid", "cid", "websocket", c.ws_url + "/connection/websocket")
        await js.subscribe("cid", channel)
        # the server API of B lists the clients of A and C
        result = await api(http, b, "presence", channel=channel)
        assert {k: (v["user"], v["client"]) for k, v in result["presence"].items()} == {
            ann_id: ("ann", ann_id), cid_id: ("cid", cid_id)}
        assert await api(http, b, "presence_stats", channel=channel) == {
            "num_clients": 2, "num_users": 2}
        # so does a client's presence command on B (and the JS client's on C)
        await bob.connect()
        await bob.subscribe(channel)
        expected = ["ann", "bob", "cid"]
        assert sorted(e["user"] for e in await bob.presence(channel)) == expected
        assert await bob.presence_stats(channel) == {"num_clients": 3, "num_users": 3}
        js_view = await js.call("presence", name="cid", channel=channel)
        assert sorted(e["user"] for e in js_view) == expected
        assert await js.call("presence_stats", name="cid", channel=channel) == {
            "num_clients": 3, "num_users": 3}
        # a client that disconnects is removed at once (well before the presence TTL)
        await js.call("disconnect", name="cid")
        async with asyncio.timeout(1.5):
            for node in cf_cluster:
                while "cid" in await users_on(http, node, channel):
                    await asyncio.sleep(0.05)
        for node in cf_cluster:
            assert await users_on(http, node, channel) == ["ann", "bob"]
        assert await bob.presence_stats(channel) == {"num_clients": 2, "num_users": 2}
    finally:
        await ann.disconnect()
        await bob.disconnect()


async def test_join_and_leave_of_a_client_on_a_reach_a_client_on_b(
        cf_cluster: list[Node], events: Events, js: JsAgent) -> None:
    a, b, c = cf_cluster
    channel = f"{NS}:joinleave"
    bob = PyClient("bob", b.ws_url + "/connection/websocket", "bob", events)
    cat = PyClient("cat", c.ws_url + "/connection/websocket", "cat", events)
    await bob.connect()
    try:
        await bob.subscribe(channel)
        assert (await events.next("join", client="bob"))["info"]["user"] == "bob"
        jay_id = await js.connect("jay", "jay", "websocket", a.ws_url + "/connection/websocket")
        await js.subscribe("jay", channel)
        join = await events.next("join", client="bob")
        assert join["info"] == {"user": "jay", "client": jay_id}
        await cat.connect()
        await cat.subscribe(channel)
        assert (await events.next("join", client="bob"))["info"]["user"] == "cat"
        # jay (on A) sees cat (on C) join too
        assert (await events.next("join", client="jay", info={
            "user": "cat", "client": (await events.next("join", client="cat"))["info"]["client"]}))
        await js.call("disconnect", name="jay")
        leave = await events.next("leave", client="bob")
        assert leave["info"] == {"user": "jay", "client": jay_id}
        assert (await events.next("leave", client="cat"))["info"]["user"] == "jay"
        await cat.disconnect()
        assert (await events.next("leave", client="bob"))["info"]["user"] == "cat"
    finally:
        await bob.disconnect()
        await cat.disconnect()
