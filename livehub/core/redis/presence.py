"""Presence in Redis: who is subscribed to a channel, shared by every node, with expiry.

Per channel a hash (client id -> ``ClientInfo``) and a sorted set (client id -> expiry time in
ms on the Redis clock).  ``add`` refreshes both and extends the keys' own TTL; reads drop expired
entries first (``redis_scripts.PRESENCE_GET``).  A crashed node stops refreshing, so its clients
disappear after ``ttl`` without anybody removing them; idle channels' keys expire entirely.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from livehub.core.presence import ClientInfo, PresenceStats
from livehub.core.redis.broker import UNAVAILABLE, ttl_ms
from livehub.core.redis.codec import CodecError, Keys, decode_info, encode_info
from livehub.core.redis.scripts import PRESENCE_ADD, PRESENCE_GET
from livehub.errors import ServerError, Unavailable


class RedisPresence:
    """``PresenceManager`` on Redis."""

    def __init__(self, client: Redis, *, prefix: str = "livehub") -> None:
        self.client = client
        self.keys = Keys(prefix)
        self._add = client.register_script(PRESENCE_ADD)
        self._get = client.register_script(PRESENCE_GET)

    def _pair(self, channel: str) -> list[str]:
        return [self.keys.presence(channel), self.keys.presence_expiry(channel)]

    async def add(self, channel: str, info: ClientInfo, *, ttl: float) -> None:
        try:
            await self._add(keys=self._pair(channel),
                            args=[info.client, encode_info(info), ttl_ms(ttl)])
        except (RedisError, OSError):
            raise Unavailable(UNAVAILABLE) from None

    async def remove(self, channel: str, client: str) -> None:
        hash_key, zset_key = self._pair(channel)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hdel(hash_key, client)
                pipe.zrem(zset_key, client)
                await pipe.execute()
        except (RedisError, OSError):
            raise Unavailable(UNAVAILABLE) from None

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        try:
            flat = await self._get(keys=self._pair(channel))
        except (RedisError, OSError):
            raise Unavailable(UNAVAILABLE) from None
        out: dict[str, ClientInfo] = {}
        try:
            for i in range(0, len(flat), 2):
                info = decode_info(flat[i + 1])
                out[info.client] = info
        except CodecError as exc:
            raise ServerError(f"malformed presence of channel {channel!r}: {exc}") from None
        return out

    async def stats(self, channel: str) -> PresenceStats:
        live = await self.presence(channel)
        return PresenceStats(len(live), len({i.user for i in live.values()}))
