"""centrifuge-python (the official SDK from PyPI) over WebSocket against livehub."""

from __future__ import annotations

import asyncio
from typing import Any

from centrifuge import (
    Client,
    ClientEventHandler,
    ConnectedContext,
    DisconnectedContext,
    JoinContext,
    PublicationContext,
    SubscribedContext,
    SubscriptionEventHandler,
)

from .conftest import CfServer, token


class SubEvents(SubscriptionEventHandler):
    def __init__(self) -> None:
        self.pubs: asyncio.Queue[PublicationContext] = asyncio.Queue()
        self.subscribed: asyncio.Queue[SubscribedContext] = asyncio.Queue()
        self.joins: asyncio.Queue[JoinContext] = asyncio.Queue()

    async def on_publication(self, ctx: PublicationContext) -> None:
        await self.pubs.put(ctx)

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        await self.subscribed.put(ctx)

    async def on_join(self, ctx: JoinContext) -> None:
        await self.joins.put(ctx)


class ClientEvents(ClientEventHandler):
    def __init__(self) -> None:
        self.connected: asyncio.Queue[ConnectedContext] = asyncio.Queue()
        self.disconnected: asyncio.Queue[DisconnectedContext] = asyncio.Queue()

    async def on_connected(self, ctx: ConnectedContext) -> None:
        await self.connected.put(ctx)

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        await self.disconnected.put(ctx)


async def get(queue: asyncio.Queue[Any], timeout: float = 5) -> Any:
    return await asyncio.wait_for(queue.get(), timeout)


async def test_connect_subscribe_publish_presence_history(cf_server: CfServer) -> None:
    events = ClientEvents()
    client = Client(cf_server.cf_ws, events=events, token=token("alice", info={"n": "A"}))
    sub_events = SubEvents()
    sub = client.new_subscription("chat:py", events=sub_events)
    await client.connect()
    connected = await get(events.connected)
    assert connected.client
    await sub.subscribe()
    subscribed = await get(sub_events.subscribed)
    assert subscribed.recoverable and subscribed.positioned
    join = await get(sub_events.joins)
    assert join.info.user == "alice" and join.info.conn_info == {"n": "A"}
    await sub.publish({"text": "hello"})
    pub = (await get(sub_events.pubs)).pub
    assert pub.data == {"text": "hello"} and pub.offset == 1
    assert pub.info is not None and pub.info.user == "alice"
    await asyncio.to_thread(cf_server.publish, "chat:py", {"from": "api"})
    assert (await get(sub_events.pubs)).pub.data == {"from": "api"}
    presence = await sub.presence()
    assert [c.user for c in presence.clients.values()] == ["alice"]
    stats = await sub.presence_stats()
    assert (stats.num_clients, stats.num_users) == (1, 1)
    history = await sub.history(limit=10)
    assert [p.data for p in history.publications] == [{"text": "hello"}, {"from": "api"}]
    assert history.offset == 2 and history.epoch == subscribed.stream_position.epoch
    await client.disconnect()


async def test_dropped_connection_recovers_missed_publications(cf_server: CfServer) -> None:
    events = ClientEvents()
    client = Client(cf_server.cf_ws, events=events, token=token("bob"),
                    min_reconnect_delay=1.0, max_reconnect_delay=1.5)
    sub_events = SubEvents()
    sub = client.new_subscription("chat:recover", events=sub_events)
    await client.connect()
    await sub.subscribe()
    first = await get(sub_events.subscribed)
    assert not first.was_recovering
    await asyncio.to_thread(cf_server.publish, "chat:recover", "before")
    assert (await get(sub_events.pubs)).pub.data == "before"

    node = cf_server.app.centrifugo  # type: ignore[union-attr]
    assert node is not None

    def drop() -> None:
        for session in list(node.clients.values()):
            session.transport.transport.abort()  # type: ignore[attr-defined]

    cf_server.call_soon(drop)
    for word in ("missed1", "missed2", "missed3"):
        await asyncio.to_thread(cf_server.publish, "chat:recover", word)
    resubscribed = await get(sub_events.subscribed, 10)
    assert resubscribed.was_recovering and resubscribed.recovered
    got = [(await get(sub_events.pubs)).pub for _ in range(3)]
    assert [p.data for p in got] == ["missed1", "missed2", "missed3"]
    assert [p.offset for p in got] == [2, 3, 4]
    await asyncio.to_thread(cf_server.publish, "chat:recover", "live")
    assert (await get(sub_events.pubs)).pub.data == "live"
    assert sub_events.pubs.empty()
    await client.disconnect()
