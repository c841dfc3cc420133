"""The Centrifugo protocol across three livehub processes over one Redis: server API
publications, presence, join/leave, emulation requests and server API operations that reach
another node, with centrifuge-python and centrifuge-js (Node) as the clients."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from .cf import HEARTBEAT_INTERVAL, NS, Events, JsAgent, PyClient, token
from .conftest import API_KEY, Node, api, users_on, wait_users
from .sse import SseStream

pytestmark = [pytest.mark.redis, pytest.mark.node]


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
        # the server API of B lists the clients of A and C as soon as they got their
        # subscribe replies (presence is stored before the reply)
        assert await users_on(http, b, channel) == ["ann", "cid"]
        result = await api(http, b, "presence", channel=channel)
        assert {k: (v["user"], v["client"]) for k, v in result["presence"].items()} == {
            ann_id: ("ann", ann_id), cid_id: ("cid", cid_id)}
        assert await api(http, b, "presence_stats", channel=channel) == {
            "num_clients": 2, "num_users": 2}
        # so does a client's presence command on B (and the JS client's on C)
        await bob.connect()
        await bob.subscribe(channel)
        expected = ["ann", "bob", "cid"]
        await wait_users(http, b, channel, expected)
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


@pytest.mark.parametrize("transport", ["http_stream", "sse"])
async def test_emulation_session_on_a_with_its_requests_sent_to_b(
        cf_cluster: list[Node], events: Events, js: JsAgent, http: httpx.AsyncClient,
        transport: str) -> None:
    """centrifuge-js streams from A and posts its commands to B's ``/emulation``: subscribe,
    publish, presence and unsubscribe reach the session on A through the broker."""
    a, b, c = cf_cluster
    channel = f"{NS}:emulation-{transport}"
    name = f"emu-{transport}"
    await js.connect(name, "emma", transport, f"{a.url}/connection/{transport}",
                     emulation_endpoint=b.url + "/emulation")
    assert (await js.subscribe(name, channel))["recoverable"]
    await js.call("publish", name=name, channel=channel, data={"from": "emma"})
    pub = await events.next("publication", client=name)
    assert (pub["data"], pub["offset"], pub["publisher"]["user"]) == ({"from": "emma"}, 1, "emma")
    await api(http, c, "publish", channel=channel, data="from the API of C")
    assert (await events.next("publication", client=name))["data"] == "from the API of C"
    assert [e["user"] for e in await js.call("presence", name=name, channel=channel)] == ["emma"]
    assert await users_on(http, c, channel) == ["emma"]
    await js.call("disconnect", name=name)
    assert (await events.next("disconnected", client=name))["code"] == 0
    async with asyncio.timeout(1.5):
        while await users_on(http, b, channel):
            await asyncio.sleep(0.05)


async def test_emulation_by_hand_http_stream_on_a_commands_posted_to_c(
        cf_cluster: list[Node], http: httpx.AsyncClient) -> None:
    """The wire itself: a connect on A's ``/connection/http_stream``, then commands posted to
    C's ``/emulation`` with the session and node from the connect reply."""
    a, b, c = cf_cluster
    channel = f"{NS}:by-hand"
    connect = json.dumps({"id": 1, "connect": {"token": token("hana")}}) + "\n"
    async with http.stream("POST", a.url + "/connection/http_stream", content=connect) as stream:
        assert stream.status_code == 200
        lines = stream.aiter_lines()

        async def reply() -> dict[str, Any]:
            """The next reply or publication push: pings and the join/leave pushes (which
            travel on their own Redis topic, in no set order with publications) skipped."""
            async with asyncio.timeout(10):
                while True:
                    line = (await anext(lines)).strip()
                    if not line or line == "{}":
                        continue
                    message: dict[str, Any] = json.loads(line)
                    push = message.get("push", {})
                    if "join" not in push and "leave" not in push:
                        return message

        connected = (await reply())["connect"]
        session, node_id = connected["session"], connected["node"]

        async def post(command: dict[str, Any]) -> None:
            r = await http.post(c.url + "/emulation",
                                json={"session": session, "node": node_id, "data": command})
            assert r.status_code == 204, r.text

        await post({"id": 2, "subscribe": {"channel": channel}})
        subscribed = await reply()
        assert subscribed["id"] == 2 and subscribed["subscribe"]["recoverable"] is True
        await api(http, b, "publish", channel=channel, data={"n": 1})
        push = await reply()
        assert push["push"]["channel"] == channel and push["push"]["pub"]["data"] == {"n": 1}
        await post({"id": 3, "presence_stats": {"channel": channel}})
        assert await reply() == {"id": 3, "presence_stats": {"num_clients": 1, "num_users": 1}}
        # a request for an unknown session is accepted and goes nowhere
        r = await http.post(b.url + "/emulation",
                            json={"session": "nope", "node": node_id, "data": {"id": 4}})
        assert r.status_code == 204


async def test_server_api_on_b_acts_on_a_user_connected_to_a_and_c(
        cf_cluster: list[Node], events: Events, js: JsAgent, http: httpx.AsyncClient) -> None:
    """subscribe, unsubscribe and disconnect through B's server API reach the sessions of
    user sam on A (centrifuge-python) and on C (centrifuge-js)."""
    a, b, c = cf_cluster
    channel = f"{NS}:server-side"
    sam = PyClient("sam-a", a.ws_url + "/connection/websocket", "sam", events)
    await sam.connect()
    try:
        await js.connect("sam-c", "sam", "websocket", c.ws_url + "/connection/websocket")
        await api(http, b, "subscribe", user="sam", channel=channel)
        for name in ("sam-a", "sam-c"):
            await events.next("server_subscribed", client=name, channel=channel)
        await api(http, c, "publish", channel=channel, data="to sam")
        for name in ("sam-a", "sam-c"):
            pub = await events.next("server_publication", client=name, channel=channel)
            assert pub["data"] == "to sam"
        await wait_users(http, b, channel, ["sam", "sam"])
        await api(http, b, "unsubscribe", user="sam", channel=channel)
        for name in ("sam-a", "sam-c"):
            await events.next("server_unsubscribed", client=name, channel=channel)
        async with asyncio.timeout(1.5):
            while await users_on(http, b, channel):
                await asyncio.sleep(0.05)
        await api(http, b, "disconnect", user="sam")
        for name in ("sam-a", "sam-c"):
            assert (await events.next("disconnected", client=name))["code"] == 3503
    finally:
        await sam.disconnect()


async def test_info_lists_every_node_with_its_counts(
        cf_cluster: list[Node], events: Events, js: JsAgent, http: httpx.AsyncClient) -> None:
    """Node discovery through heartbeat control messages: ``info`` on any node lists the
    three nodes (itself first) with their own client counts."""
    a, _, c = cf_cluster
    ann = PyClient("ann", a.ws_url + "/connection/websocket", "ann", events)
    await ann.connect()
    try:
        await js.connect("cid", "cid", "websocket", c.ws_url + "/connection/websocket")
        await js.connect("cyd", "cyd", "websocket", c.ws_url + "/connection/websocket")
        expected = {"A": 1, "B": 0, "C": 2}
        for node in cf_cluster:
            async with asyncio.timeout(HEARTBEAT_INTERVAL * 3 + 2):
                while True:
                    nodes = (await api(http, node, "info"))["nodes"]
                    if {n["name"]: n["num_clients"] for n in nodes} == expected:
                        break
                    await asyncio.sleep(0.1)
            assert nodes[0]["name"] == node.name and len({n["uid"] for n in nodes}) == 3
            for n in nodes:
                assert n["num_users"] == expected[n["name"]] and n["uptime"] >= 0
    finally:
        await ann.disconnect()


async def test_channels_lists_the_channels_of_every_node(
        cf_cluster: list[Node], events: Events, js: JsAgent, http: httpx.AsyncClient) -> None:
    """``channels`` on B surveys A and C: Centrifugo and plain subscribers, summed per
    channel, filtered by a pattern."""
    a, b, c = cf_cluster
    ann = PyClient("ann", a.ws_url + "/connection/websocket", "ann", events)
    await ann.connect()
    try:
        await ann.subscribe(f"{NS}:ch-shared")
        await ann.subscribe(f"{NS}:ch-a")
        await js.connect("cid", "cid", "websocket", c.ws_url + "/connection/websocket")
        await js.subscribe("cid", f"{NS}:ch-shared")
        async with http.stream("GET", c.url + "/events", params={"channel": "ch-plain"}) as rc:
            sse = SseStream(rc)  # kept: a collected reader would close the stream
            await sse.subscribed()
            expected = {f"{NS}:ch-a": 1, f"{NS}:ch-shared": 2, "ch-plain": 1}
            for node in cf_cluster:  # every node knows the others (heartbeats) within the TTL
                async with asyncio.timeout(HEARTBEAT_INTERVAL * 3 + 2):
                    while len((await api(http, node, "info"))["nodes"]) < 3:
                        await asyncio.sleep(0.1)
            result = await api(http, b, "channels", pattern="*ch-*")
            assert {k: v["num_clients"] for k, v in result["channels"].items()} == expected
            result = await api(http, a, "channels", pattern=f"{NS}:ch-*")
            assert {k: v["num_clients"] for k, v in result["channels"].items()} == {
                f"{NS}:ch-a": 1, f"{NS}:ch-shared": 2}
    finally:
        await ann.disconnect()


async def test_history_with_a_negative_offset_is_refused_on_redis(
        cf_cluster: list[Node], http: httpx.AsyncClient) -> None:
    """Redis answered such a read with a ResponseError (a 500 and a traceback); the memory
    broker with 112.  Both are the same refusal now, before the broker (issue 10, finding 5)."""
    a = cf_cluster[0]
    result = await api(http, a, "publish", channel=f"{NS}:neg", data={"n": 1})
    r = await http.post(f"{a.url}/api/history", headers={"X-API-Key": API_KEY},
                        json={"channel": f"{NS}:neg", "limit": -1,
                              "since": {"offset": -4, "epoch": result["epoch"]}})
    assert r.status_code == 200
    assert r.json()["error"] == {"code": 107, "message": "offset must be at least 0"}
    assert "Traceback" not in a.log()
