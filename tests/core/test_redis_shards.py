"""Consistent hashing of channels over Redis shards."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from livehub.backend import BrokerSettings, build, shard_name
from livehub.core.channels import ChannelOptions
from livehub.core.redis.shards import HashRing, ShardedRedisBroker
from livehub.errors import ConfigError
from livehub.wire.payload import PayloadKind

from ..redis_server import RedisServer
from .test_broker_contract import Recorder

CHANNELS = [f"chat:room{i}" for i in range(3000)]


def test_ring_spreads_channels_evenly() -> None:
    ring = HashRing(["a:6379/0", "b:6379/0", "c:6379/0"])
    counts = Counter(ring.index(c) for c in CHANNELS)
    assert set(counts) == {0, 1, 2}
    assert all(700 < n < 1300 for n in counts.values()), counts


def test_adding_a_shard_moves_few_channels() -> None:
    before = HashRing(["a", "b", "c"])
    after = HashRing(["a", "b", "c", "d"])
    moved = [c for c in CHANNELS if after.index(c) != before.index(c)]
    assert all(after.index(c) == 3 for c in moved)  # only onto the new shard
    assert len(moved) < len(CHANNELS) * 0.35


def test_ring_is_stable_across_processes_and_refuses_duplicates() -> None:
    assert HashRing(["x", "y"]).index("news") == HashRing(["x", "y"]).index("news")
    with pytest.raises(ConfigError):
        HashRing(["x", "x"])
    with pytest.raises(ConfigError):
        HashRing([])


def test_shard_names_ignore_credentials() -> None:
    assert shard_name("redis://:pw@h:6380/2") == shard_name("rediss://u:other@h:6380/2")
    assert shard_name("redis://h") == "h:6379/0"


@pytest.mark.redis
async def test_channels_live_on_one_shard_and_control_arrives_once(
        redis_server: RedisServer, redis_server_2: RedisServer) -> None:
    settings = BrokerSettings(broker="redis",
                              redis_url=f"{redis_server.url}, {redis_server_2.url}",
                              redis_prefix="shardtest")
    broker, _ = build(settings)
    assert isinstance(broker, ShardedRedisBroker)
    rec = Recorder()
    await broker.start(rec)
    opts = ChannelOptions()
    names = [f"s{i}" for i in range(20)]
    for name in names:
        await broker.subscribe(name)
        await broker.publish(name, name.encode(), PayloadKind.TEXT, options=opts)
    await broker.publish_control(b"once")
    await rec.wait_for(20)
    await rec.until(lambda: len(rec.controls) == 1)
    await asyncio.sleep(0.1)
    assert sorted(p.data.decode() for p in rec.pubs) == sorted(names)
    assert rec.controls == [b"once"]
    used = {broker.shards.index(broker.shard(name)) for name in names}
    assert used == {0, 1}
    for name in names:
        home = broker.shards.index(broker.shard(name))
        found = [await s.client.exists(s.keys.meta(name)) for s in broker.shards]
        assert found == [int(i == home) for i in range(2)]  # its keys on its shard only
    await broker.close()
