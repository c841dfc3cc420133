"""The Centrifugo-compatible server API driven by ``cent`` (the official client from PyPI)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from cent import (
    BatchRequest,
    BroadcastRequest,
    ChannelsRequest,
    Client,
    DisconnectRequest,
    HistoryRemoveRequest,
    HistoryRequest,
    InfoRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    RefreshRequest,
    SubscribeRequest,
    UnsubscribeRequest,
)
from cent.exceptions import CentApiResponseError, CentUnauthorizedError
from centrifuge import (
    Client as SdkClient,
)
from centrifuge import (
    ClientEventHandler,
    ConnectingContext,
    DisconnectedContext,
    ServerPublicationContext,
    ServerSubscribedContext,
    ServerUnsubscribedContext,
)

from ..conftest import API_KEY
from .conftest import CfServer, token
from .test_python_sdk import SubEvents, get


def cent(srv: CfServer, key: str = API_KEY) -> Client:
    return Client(srv.url + "/api", key, timeout=5)


class ServerSideEvents(ClientEventHandler):
    def __init__(self) -> None:
        self.subscribed: asyncio.Queue[ServerSubscribedContext] = asyncio.Queue()
        self.unsubscribed: asyncio.Queue[ServerUnsubscribedContext] = asyncio.Queue()
        self.pubs: asyncio.Queue[ServerPublicationContext] = asyncio.Queue()
        self.disconnected: asyncio.Queue[DisconnectedContext] = asyncio.Queue()
        self.connecting: asyncio.Queue[ConnectingContext] = asyncio.Queue()

    async def on_connecting(self, ctx: ConnectingContext) -> None:
        await self.connecting.put(ctx)

    async def on_subscribed(self, ctx: ServerSubscribedContext) -> None:
        await self.subscribed.put(ctx)

    async def on_unsubscribed(self, ctx: ServerUnsubscribedContext) -> None:
        await self.unsubscribed.put(ctx)

    async def on_publication(self, ctx: ServerPublicationContext) -> None:
        await self.pubs.put(ctx)

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        await self.disconnected.put(ctx)


async def call(srv: CfServer, method: str, request: Any) -> Any:
    def run() -> Any:
        with cent(srv) as client:
            return getattr(client, method)(request)
    return await asyncio.to_thread(run)


async def test_publish_history_broadcast_batch(cf_server: CfServer) -> None:
    first = await call(cf_server, "publish", PublishRequest(channel="chat:api", data={"n": 1}))
    assert first.offset == 1 and first.epoch
    await call(cf_server, "broadcast", BroadcastRequest(channels=["chat:api", "chat:api2"],
                                                       data="both"))
    history = await call(cf_server, "history", HistoryRequest(channel="chat:api", limit=10))
    assert [p.data for p in history.publications] == [{"n": 1}, "both"]
    assert history.offset == 2 and history.epoch == first.epoch
    newest = await call(cf_server, "history",
                        HistoryRequest(channel="chat:api", limit=1, reverse=True))
    assert [p.data for p in newest.publications] == ["both"]
    position_only = await call(cf_server, "history", HistoryRequest(channel="chat:api"))
    assert position_only.publications == [] and position_only.offset == 2
    batch = await call(cf_server, "batch", BatchRequest(requests=[
        PublishRequest(channel="chat:api", data=3), InfoRequest()]))
    assert batch.replies[0].offset == 3 and len(batch.replies[1].nodes) == 1
    await call(cf_server, "history_remove", HistoryRemoveRequest(channel="chat:api"))
    emptied = await call(cf_server, "history", HistoryRequest(channel="chat:api", limit=10))
    assert emptied.publications == [] and emptied.offset == 3


async def test_errors(cf_server: CfServer) -> None:
    with pytest.raises(CentApiResponseError) as info:
        await call(cf_server, "publish", PublishRequest(channel="nope:x", data={}))
    assert info.value.code == 102
    with pytest.raises(CentApiResponseError) as info:
        await call(cf_server, "presence", PresenceRequest(channel="nohist:x"))
    assert info.value.code == 108

    def wrong_key() -> None:
        with cent(cf_server, "wrong") as client:
            client.info(InfoRequest())
    with pytest.raises(CentUnauthorizedError):
        await asyncio.to_thread(wrong_key)
    async with httpx.AsyncClient(timeout=5) as client:
        headers = {"X-API-Key": API_KEY}
        r = await client.post(cf_server.url + "/api/publish", content=b"{oops", headers=headers)
        assert r.status_code == 400
        r = await client.post(cf_server.url + "/api", headers=headers,
                              json={"method": "publish",
                                    "params": {"channel": "chat:single", "data": 1}})
        assert r.json()["result"]["offset"] == 1
        r = await client.post(cf_server.url + "/api", headers=headers, json={"method": "nope"})
        assert r.json()["error"]["code"] == 104


async def test_presence_channels_and_connection_operations(cf_server: CfServer) -> None:
    events = ServerSideEvents()
    client = SdkClient(cf_server.cf_ws, events=events, token=token("u1", info={"k": 1}))
    sub_events = SubEvents()
    sub = client.new_subscription("chat:pres", events=sub_events)
    try:
        await _operations(cf_server, client, sub, sub_events, events)
    finally:
        await client.disconnect()


async def _operations(cf_server: CfServer, client: SdkClient, sub: Any, sub_events: SubEvents,
                      events: ServerSideEvents) -> None:
    await client.connect()
    assert (await get(events.connecting)).code == 0  # connect called
    await sub.subscribe()
    await get(sub_events.subscribed)
    presence = await call(cf_server, "presence", PresenceRequest(channel="chat:pres"))
    assert [(c.user, c.conn_info) for c in presence.presence.values()] == [("u1", {"k": 1})]
    stats = await call(cf_server, "presence_stats", PresenceStatsRequest(channel="chat:pres"))
    assert (stats.num_clients, stats.num_users) == (1, 1)
    channels = await call(cf_server, "channels", ChannelsRequest(pattern="chat:*"))
    assert channels.channels["chat:pres"].num_clients == 1
    info = await call(cf_server, "info", InfoRequest())
    assert info.nodes[0].num_clients == 1 and info.nodes[0].num_users == 1

    await call(cf_server, "subscribe", SubscribeRequest(user="u1", channel="chat:server-side",
                                                        data={"welcome": True}))
    subscribed = await get(events.subscribed)
    assert subscribed.channel == "chat:server-side" and subscribed.data == {"welcome": True}
    await asyncio.to_thread(cf_server.publish, "chat:server-side", "to server sub")
    assert (await get(events.pubs)).pub.data == "to server sub"
    await call(cf_server, "unsubscribe", UnsubscribeRequest(user="u1",
                                                            channel="chat:server-side"))
    assert (await get(events.unsubscribed)).channel == "chat:server-side"

    await call(cf_server, "refresh", RefreshRequest(user="u1", expired=True))
    reconnecting = await get(events.connecting)  # 3005 is in the "reconnect" range
    assert reconnecting.code == 3005
    # let the SDK finish reconnecting: disconnecting mid-attempt leaks its socket (an SDK
    # quirk), which a later test would then see as an unraisable ResourceWarning
    await client.ready(5)


async def test_disconnect_user(cf_server: CfServer) -> None:
    events = ServerSideEvents()
    client = SdkClient(cf_server.cf_ws, events=events, token=token("gone"))
    try:
        await client.connect()
        await client.ready(5)
        await call(cf_server, "disconnect", DisconnectRequest(user="gone"))
        assert (await get(events.disconnected)).code == 3503  # "do not reconnect" range
    finally:
        await client.disconnect()


async def test_publish_result_cursor_resumes_plain_sse(cf_server: CfServer) -> None:
    """The positions of the Centrifugo API are those of the plain endpoints."""
    result = await asyncio.to_thread(cf_server.publish, "chat:cursor", "one")
    await asyncio.to_thread(cf_server.publish, "chat:cursor", "two")
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", cf_server.url + "/events", params={"channel": "chat:cursor"},
            headers={"Last-Event-ID": result["cursor"]}) as r:
        text = b""
        async for chunk in r.aiter_bytes():
            text += chunk
            if b"data: two" in text:
                break
    assert b"data: one" not in text
