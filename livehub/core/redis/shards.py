"""Channels spread over several Redis instances by consistent hashing.

Each channel lives on exactly one shard, chosen by a hash ring over the shards' names (their
URLs without credentials): every key, topic, position and presence entry of the channel is on
that shard, so each shard keeps all the single-Redis guarantees for its channels.  Adding or
removing a shard moves only about 1/N of the channels (which then start a new epoch on their new
shard: resuming clients are told, never misled).  Control messages go through the first shard
only, so every node gets each exactly once.  A shard that is down makes only its own channels
unavailable.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence

from livehub.core.broker import BrokerHandler, HistoryResult
from livehub.core.channels import ChannelOptions
from livehub.core.presence import ClientInfo, PresenceStats
from livehub.core.redis.broker import RedisBroker
from livehub.core.redis.presence import RedisPresence
from livehub.errors import ConfigError
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind

POINTS_PER_SHARD = 160


def _point(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashRing:
    """Maps a key to one of ``names`` (indexes), moving few keys when names change."""

    def __init__(self, names: Sequence[str], *, points: int = POINTS_PER_SHARD) -> None:
        if not names:
            raise ConfigError("a hash ring needs at least one shard")
        if len(set(names)) != len(names):
            raise ConfigError("shard names must be distinct")
        ring = sorted((_point(f"{name}#{i}"), index)
                      for index, name in enumerate(names) for i in range(points))
        self._hashes = [h for h, _ in ring]
        self._indexes = [index for _, index in ring]

    def index(self, key: str) -> int:
        at = bisect.bisect(self._hashes, _point(key)) % len(self._hashes)
        return self._indexes[at]


class ShardedRedisBroker:
    """A ``Broker`` over several ``RedisBroker`` shards (one per Redis instance)."""

    def __init__(self, shards: Sequence[RedisBroker], names: Sequence[str]) -> None:
        if len(shards) != len(names):
            raise ConfigError("one name per shard")
        self.shards = tuple(shards)
        self._ring = HashRing(names)

    def shard(self, channel: str) -> RedisBroker:
        return self.shards[self._ring.index(channel)]

    @property
    def reconnects(self) -> int:
        """Pub/sub reconnections over every shard (metrics)."""
        return sum(shard.reconnects for shard in self.shards)

    async def start(self, handler: BrokerHandler) -> None:
        for shard in self.shards:
            await shard.start(handler)

    async def close(self) -> None:
        for shard in self.shards:
            await shard.close()

    async def subscribe(self, channel: str) -> None:
        await self.shard(channel).subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        await self.shard(channel).unsubscribe(channel)

    async def publish(self, channel: str, data: bytes, kind: PayloadKind, *,
                      options: ChannelOptions, event: str | None = None,
                      info: ClientInfo | None = None) -> StreamPosition:
        return await self.shard(channel).publish(channel, data, kind, options=options,
                                                 event=event, info=info)

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        await self.shard(channel).publish_join(channel, info)

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        await self.shard(channel).publish_leave(channel, info)

    async def publish_control(self, data: bytes) -> None:
        await self.shards[0].publish_control(data)

    async def history(self, channel: str, *, options: ChannelOptions,
                      since: StreamPosition | None = None, limit: int | None = None
                      ) -> HistoryResult:
        return await self.shard(channel).history(channel, options=options, since=since,
                                                 limit=limit)

    async def remove_history(self, channel: str) -> None:
        await self.shard(channel).remove_history(channel)


class ShardedRedisPresence:
    """A ``PresenceManager`` over several ``RedisPresence`` shards (same ring as the broker)."""

    def __init__(self, shards: Sequence[RedisPresence], names: Sequence[str]) -> None:
        if len(shards) != len(names):
            raise ConfigError("one name per shard")
        self.shards = tuple(shards)
        self._ring = HashRing(names)

    def shard(self, channel: str) -> RedisPresence:
        return self.shards[self._ring.index(channel)]

    async def add(self, channel: str, info: ClientInfo, *, ttl: float) -> None:
        await self.shard(channel).add(channel, info, ttl=ttl)

    async def remove(self, channel: str, client: str) -> None:
        await self.shard(channel).remove(channel, client)

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        return await self.shard(channel).presence(channel)

    async def stats(self, channel: str) -> PresenceStats:
        return await self.shard(channel).stats(channel)
