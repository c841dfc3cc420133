"""The PresenceManager contract (livehub.core.presence), for every implementation."""

from __future__ import annotations

import asyncio

from livehub.core.presence import ClientInfo, PresenceStats

from .conftest import PresenceFactory

ANN = ClientInfo("c1", "ann", b'{"name":"Ann"}', None)
ANN2 = ClientInfo("c2", "ann", None, b'{"tab":2}')
BOB = ClientInfo("c3", "bob")


async def test_add_list_stats_remove(presence_factory: PresenceFactory) -> None:
    presence = await presence_factory()
    assert await presence.presence("room") == {}
    for info in (ANN, ANN2, BOB):
        await presence.add("room", info, ttl=30)
    await presence.add("other", BOB, ttl=30)
    assert await presence.presence("room") == {"c1": ANN, "c2": ANN2, "c3": BOB}
    assert await presence.stats("room") == PresenceStats(3, 2)
    await presence.remove("room", "c2")
    await presence.remove("room", "nobody")
    assert await presence.presence("room") == {"c1": ANN, "c3": BOB}
    assert await presence.stats("other") == PresenceStats(1, 1)


async def test_add_is_idempotent_and_updates(presence_factory: PresenceFactory) -> None:
    presence = await presence_factory()
    await presence.add("room", ANN, ttl=30)
    changed = ClientInfo("c1", "ann", b'{"name":"Annie"}', None)
    await presence.add("room", changed, ttl=30)
    assert await presence.presence("room") == {"c1": changed}


async def test_entries_expire_unless_refreshed(presence_factory: PresenceFactory) -> None:
    """A crashed node stops refreshing: its clients disappear after the ttl."""
    presence = await presence_factory()
    await presence.add("room", ANN, ttl=0.3)
    await presence.add("room", BOB, ttl=0.3)
    await asyncio.sleep(0.2)
    await presence.add("room", BOB, ttl=0.3)  # BOB's node is alive and refreshes
    await asyncio.sleep(0.2)
    assert await presence.presence("room") == {"c3": BOB}
    assert await presence.stats("room") == PresenceStats(1, 1)


async def test_nodes_share_presence(presence_factory: PresenceFactory) -> None:
    node_a = await presence_factory()
    node_b = await presence_factory()
    await node_a.add("room", ANN, ttl=30)
    await node_b.add("room", BOB, ttl=30)
    assert await node_a.presence("room") == await node_b.presence("room") == {
        "c1": ANN, "c3": BOB}
    await node_b.remove("room", "c1")
    assert await node_a.presence("room") == {"c3": BOB}
