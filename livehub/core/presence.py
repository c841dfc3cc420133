"""Presence: who is subscribed to a channel, across every node.

``PresenceManager`` is a separate interface from ``Broker`` (an implementation may provide
both, like the Redis one).  Entries expire after ``ttl`` seconds unless refreshed by ``add``, so a
crashed node's clients disappear on their own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A connected client as shown to others (presence, join/leave, publisher info)."""

    client: str
    """Connection id, unique across the cluster."""
    user: str
    """User id ('' for anonymous)."""
    conn_info: bytes | None = None
    """JSON bytes attached to the connection (token ``info``), or None."""
    chan_info: bytes | None = None
    """JSON bytes attached to this channel subscription, or None."""


@dataclass(frozen=True, slots=True)
class PresenceStats:
    num_clients: int
    num_users: int


class PresenceManager(Protocol):
    """Stores presence per channel.  ``add`` is idempotent and refreshes the expiry."""

    async def add(self, channel: str, info: ClientInfo, *, ttl: float) -> None: ...

    async def remove(self, channel: str, client: str) -> None: ...

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        """Live entries by client id."""

    async def stats(self, channel: str) -> PresenceStats: ...


class MemoryPresence:
    """``PresenceManager`` for one process."""

    def __init__(self) -> None:
        self._channels: dict[str, dict[str, tuple[ClientInfo, float]]] = {}

    async def add(self, channel: str, info: ClientInfo, *, ttl: float) -> None:
        self._channels.setdefault(channel, {})[info.client] = (info, time.monotonic() + ttl)

    async def remove(self, channel: str, client: str) -> None:
        entries = self._channels.get(channel)
        if entries is not None:
            entries.pop(client, None)
            if not entries:
                del self._channels[channel]

    def _live(self, channel: str) -> dict[str, ClientInfo]:
        entries = self._channels.get(channel)
        if not entries:
            return {}
        now = time.monotonic()
        for client in [c for c, (_, exp) in entries.items() if exp <= now]:
            del entries[client]
        if not entries:
            del self._channels[channel]
        return {c: info for c, (info, _) in entries.items()}

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        return self._live(channel)

    async def stats(self, channel: str) -> PresenceStats:
        live = self._live(channel)
        return PresenceStats(len(live), len({i.user for i in live.values()}))
