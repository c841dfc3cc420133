"""Centrifugo clients when a node is killed: they recover on another node, and the killed
node's clients leave presence after the presence TTL (and the node leaves ``info``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from livehub.protocols.centrifugo.node import SURVEY_TIMEOUT

from .cf import (
    HEARTBEAT_INTERVAL,
    NODE_TTL,
    NS,
    PRESENCE_TTL,
    Events,
    JsAgent,
    Proxy,
    PyClient,
    write_config,
)
from .conftest import ClusterFactory, Node, api, users_on, wait_users

pytestmark = [pytest.mark.redis, pytest.mark.node]


async def test_killed_node_clients_recover_on_another_node(
        make_cluster: ClusterFactory, tmp_path: Path, events: Events, js: JsAgent) -> None:
    """centrifuge-python and centrifuge-js reach A through a proxy; A is killed, publications
    go on through B, the proxy is repointed to B: both SDKs resubscribe with recovery and get
    exactly the missed publications (``recovered: true``), then live ones."""
    _, (a, b) = make_cluster("AB", "--config", str(write_config(tmp_path)))
    channel = f"{NS}:recover"
    proxy = Proxy(a.port)
    await proxy.start()
    rita = PyClient("rita", f"ws://127.0.0.1:{proxy.port}/connection/websocket", "rita", events)
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            await rita.connect()
            first = await rita.subscribe(channel)
            assert first["recoverable"] and not first["wasRecovering"]
            await js.connect("jack", "jack", "websocket",
                             f"ws://127.0.0.1:{proxy.port}/connection/websocket")
            await js.subscribe("jack", channel)
            await api(http, b, "publish", channel=channel, data="before")
            for name in ("rita", "jack"):
                pub = await events.next("publication", client=name)
                assert (pub["data"], pub["offset"]) == ("before", 1)
            a.kill()
            for name in ("rita", "jack"):
                await events.next("connecting", client=name)
            for word in ("missed1", "missed2", "missed3"):
                await api(http, b, "publish", channel=channel, data=word)
            proxy.repoint(b.port)
            for name in ("rita", "jack"):
                again = await events.next("subscribed", client=name, channel=channel)
                assert again["wasRecovering"] and again["recovered"], again
                got = [await events.next("publication", client=name) for _ in range(3)]
                assert [(p["data"], p["offset"]) for p in got] == [
                    ("missed1", 2), ("missed2", 3), ("missed3", 4)]
            await api(http, b, "publish", channel=channel, data="live")
            for name in ("rita", "jack"):
                pub = await events.next("publication", client=name)
                assert (pub["data"], pub["offset"]) == ("live", 5)
                assert not events.pending("publication", client=name)
        finally:
            await rita.disconnect()
            await js.call("disconnect", name="jack")
            await proxy.close()


async def node_names(http: httpx.AsyncClient, node: Node) -> list[str]:
    return [n["name"] for n in (await api(http, node, "info"))["nodes"]]


async def test_killed_node_clients_leave_presence_and_info_after_the_ttl(
        make_cluster: ClusterFactory, tmp_path: Path, events: Events, js: JsAgent) -> None:
    _, (a, b, c) = make_cluster("ABC", "--config", str(write_config(tmp_path)))
    channel = f"{NS}:killed"
    ann = PyClient("ann", a.ws_url + "/connection/websocket", "ann", events)
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            await ann.connect()
            await ann.subscribe(channel)
            await js.connect("cid", "cid", "websocket", c.ws_url + "/connection/websocket")
            await js.subscribe("cid", channel)
            await wait_users(http, b, channel, ["ann", "cid"])
            async with asyncio.timeout(NODE_TTL + 2):
                while await node_names(http, b) != ["B", "A", "C"]:
                    await asyncio.sleep(0.1)
            c.kill()
            killed = time.monotonic()
            # nobody removed cid: it stays until its entry expires...
            assert await users_on(http, b, channel) == ["ann", "cid"]
            # a channels survey on B does not wait for C forever: A's answer, after a timeout
            started = time.monotonic()
            result = await api(http, b, "channels", pattern=channel)
            assert result["channels"] == {channel: {"num_clients": 1}}
            assert time.monotonic() - started < SURVEY_TIMEOUT + 1
            async with asyncio.timeout(PRESENCE_TTL + 3):
                while "cid" in await users_on(http, b, channel):
                    await asyncio.sleep(0.1)
            assert time.monotonic() - killed > PRESENCE_TTL / 3
            # ...while ann, refreshed by A, outlives the TTL
            await asyncio.sleep(max(0.0, killed + PRESENCE_TTL + 0.5 - time.monotonic()))
            for node in (a, b):
                assert await users_on(http, node, channel) == ["ann"]
            assert await api(http, a, "presence_stats", channel=channel) == {
                "num_clients": 1, "num_users": 1}
            # and C is no longer listed by info once its heartbeats stopped for NODE_TTL
            async with asyncio.timeout(NODE_TTL + 2):
                while await node_names(http, b) != ["B", "A"]:
                    await asyncio.sleep(0.1)
            assert time.monotonic() - killed > NODE_TTL - 2 * HEARTBEAT_INTERVAL
        finally:
            await ann.disconnect()
