"""In-memory broker: the embedded default for one process (no Redis needed).

History per channel is a deque bounded by ``history_size``; entries older than
``history_ttl`` are dropped lazily (on publish and read) and by a periodic sweep, which also
forgets streams idle for ``meta_ttl`` seconds (their next publication starts a new epoch, so
old cursors are answered with "not recoverable", never misread).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from livehub.core.broker import BrokerHandler, HistoryResult, Publication
from livehub.core.channels import ChannelOptions
from livehub.core.presence import ClientInfo
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind

log = logging.getLogger(__name__)


def new_epoch() -> str:
    return secrets.token_hex(4)


@dataclass(slots=True)
class _Stream:
    epoch: str
    offset: int = 0
    items: deque[Publication] = field(default_factory=deque)
    touched: float = 0.0

    def trim(self, options: ChannelOptions, now: float) -> None:
        items = self.items
        while len(items) > options.history_size:
            items.popleft()
        cutoff = now - options.history_ttl
        while items and items[0].time <= cutoff:
            items.popleft()


class MemoryBroker:
    """A ``Broker`` for one process."""

    def __init__(self, *, meta_ttl: float = 86400.0, sweep_interval: float = 60.0) -> None:
        self._handler: BrokerHandler | None = None
        self._streams: dict[str, _Stream] = {}
        self._options: dict[str, ChannelOptions] = {}
        self._subscribed: set[str] = set()
        self._meta_ttl = meta_ttl
        self._sweep_interval = sweep_interval
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, handler: BrokerHandler) -> None:
        self._handler = handler
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def subscribe(self, channel: str) -> None:
        self._subscribed.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._subscribed.discard(channel)

    def _stream(self, channel: str, now: float) -> _Stream:
        stream = self._streams.get(channel)
        if stream is None:
            stream = self._streams[channel] = _Stream(new_epoch())
        stream.touched = now
        return stream

    async def publish(self, channel: str, data: bytes, kind: PayloadKind, *,
                      options: ChannelOptions, event: str | None = None,
                      info: ClientInfo | None = None) -> StreamPosition:
        return self.publish_now(channel, data, kind, options=options, event=event, info=info)

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        if self._handler is not None and channel in self._subscribed:
            self._handler.on_join(channel, info)

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        if self._handler is not None and channel in self._subscribed:
            self._handler.on_leave(channel, info)

    async def publish_control(self, data: bytes) -> None:
        if self._handler is not None:
            self._handler.on_control(data)

    def publish_now(self, channel: str, data: bytes, kind: PayloadKind, *,
                    options: ChannelOptions, event: str | None = None,
                    info: ClientInfo | None = None) -> StreamPosition:
        """``publish`` without a coroutine, for in-process publishers on the hot path."""
        now = time.time()
        stream = self._stream(channel, now)
        stream.offset += 1
        position = StreamPosition(stream.epoch, stream.offset)
        pub = Publication(channel, data, kind, position, event, now, info)
        if options.history_size > 0 and options.history_ttl > 0:
            stream.items.append(pub)
            self._options[channel] = options
            stream.trim(options, now)
        elif stream.items:
            stream.items.clear()
        handler = self._handler
        if handler is not None and channel in self._subscribed:
            handler.on_publication(pub)
        return position

    async def history(self, channel: str, *, options: ChannelOptions,
                      since: StreamPosition | None = None, limit: int | None = None
                      ) -> HistoryResult:
        now = time.time()
        stream = self._stream(channel, now)
        stream.trim(options, now)
        top = StreamPosition(stream.epoch, stream.offset)
        items = stream.items
        if since is None:
            pubs = list(items)
            if limit is not None:
                pubs = pubs[len(pubs) - limit:] if limit > 0 else []
            return HistoryResult(pubs, top, True)
        if since.epoch != stream.epoch or since.offset > stream.offset:
            return HistoryResult([], top, False)
        first = items[0].position.offset if items else stream.offset + 1
        recovered = since.offset + 1 >= first
        start = max(0, since.offset + 1 - first)
        pubs = [items[i] for i in range(start, len(items))]
        if limit is not None:
            pubs = pubs[:limit]
        return HistoryResult(pubs, top, recovered)

    async def remove_history(self, channel: str) -> None:
        stream = self._streams.get(channel)
        if stream is not None:
            stream.items.clear()

    def sweep(self, now: float | None = None) -> None:
        """Drop expired history and forget streams idle for longer than ``meta_ttl``."""
        now = time.time() if now is None else now
        for channel in list(self._streams):
            stream = self._streams[channel]
            options = self._options.get(channel)
            if options is not None:
                stream.trim(options, now)
            if (not stream.items and channel not in self._subscribed
                    and now - stream.touched > self._meta_ttl):
                del self._streams[channel]
                self._options.pop(channel, None)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                self.sweep()
            except Exception:
                log.exception("memory broker sweep failed")
