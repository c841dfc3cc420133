"""In-memory broker: the embedded default for one process (no Redis needed).

History.  Each channel keeps a deque bounded by its options: ``history_size`` publications,
``history_bytes`` bytes and ``history_ttl`` seconds (expired entries are dropped lazily, on
publish and read, and by a periodic sweep).  All channels together are bounded by
``history_memory`` bytes, and the channels of a namespace by its ``namespace_history_bytes``
(so a namespace open to anonymous clients cannot push the others' history out): past a budget,
the oldest publications under it are evicted first (a FIFO of (stream, offset) entries per
budget, compacted when it holds too many dead entries).  An
evicted position is announced like any other loss: a client resuming from before it gets
``recovered = false`` and a reset.  Bytes are counted as the payload plus ``ENTRY_OVERHEAD``.

Channel state.  A channel that was never published to has no stored state: a read answers
position (``epoch_for(channel)``, 0) and stores nothing, so reading many channel names costs no
memory.  The first publication creates the stream with that same epoch, so a reader's position
stays valid.  The sweep forgets streams idle for ``meta_ttl`` seconds; forgetting one that had
publications advances the broker's *generation*, which every derived epoch includes, so a
channel's next incarnation never shares an epoch with an earlier one (old cursors are answered
"not recoverable", never misread).  Subscribed channels without a stream are given one at the
old generation first, so their subscribers keep a valid position.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import sys
import time
from collections import deque
from dataclasses import dataclass, field

from livehub.core.broker import BrokerHandler, HistoryResult, Publication
from livehub.core.channels import NAMESPACE_SEPARATOR, ChannelOptions
from livehub.core.presence import ClientInfo
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind

log = logging.getLogger(__name__)

ENTRY_OVERHEAD = 320
"""Bytes a stored publication costs besides its payload (objects, deque and FIFO slots)."""
DEFAULT_HISTORY_MEMORY = 256 * 1024 * 1024


def _cost(pub: Publication) -> int:
    return len(pub.data) + ENTRY_OVERHEAD


@dataclass(slots=True, eq=False)
class _Budget:
    """Bytes of history under one limit (the whole broker, or one namespace), oldest first."""

    limit: int
    bytes: int = 0
    stored: int = 0
    order: deque[tuple[_Stream, int]] = field(default_factory=deque)


@dataclass(slots=True, eq=False)
class _Stream:
    channel: str
    epoch: str
    offset: int = 0
    items: deque[Publication] = field(default_factory=deque)
    touched: float = 0.0
    bytes: int = 0
    options: ChannelOptions | None = None
    group: _Budget | None = None
    """The namespace's budget, if it has one."""


class MemoryBroker:
    """A ``Broker`` for one process."""

    def __init__(self, *, meta_ttl: float = 86400.0, sweep_interval: float = 60.0,
                 history_memory: int = DEFAULT_HISTORY_MEMORY) -> None:
        self._handler: BrokerHandler | None = None
        self._streams: dict[str, _Stream] = {}
        self._subscribed: set[str] = set()
        self._meta_ttl = meta_ttl
        self._sweep_interval = sweep_interval
        self._sweeper: asyncio.Task[None] | None = None
        self._budget = _Budget(history_memory)
        self._groups: dict[str, _Budget] = {}
        self._secret = secrets.token_bytes(16)
        self._generation = 0
        self.evictions = 0
        """Publications evicted because ``history_memory`` or a namespace budget was reached."""

    @property
    def history_bytes(self) -> int:
        """Bytes of history stored, over every channel (payloads plus ``ENTRY_OVERHEAD``)."""
        return self._budget.bytes

    @property
    def stored(self) -> int:
        """Publications in history, over every channel."""
        return self._budget.stored

    def namespace_bytes(self, namespace: str) -> int:
        """Bytes of history of ``namespace``'s channels (0 without a namespace budget)."""
        group = self._groups.get(namespace)
        return 0 if group is None else group.bytes

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

    def epoch_for(self, channel: str) -> str:
        """The epoch ``channel``'s stream has, or will get if it is created now."""
        digest = hashlib.blake2b(b"%d:" % self._generation + channel.encode(),
                                 key=self._secret, digest_size=4)
        # interned: every subscriber's position of the channel shares one string
        return sys.intern(digest.hexdigest())

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
        stream = self._streams.get(channel)
        if stream is None:
            stream = self._streams[channel] = _Stream(channel, self.epoch_for(channel))
        stream.touched = now
        stream.offset += 1
        position = StreamPosition(stream.epoch, stream.offset)
        pub = Publication(channel, data, kind, position, event, now, info)
        if options.history_size > 0 and options.history_ttl > 0 and options.history_bytes > 0:
            cost = _cost(pub)
            stream.items.append(pub)
            stream.bytes += cost
            stream.options = options
            if stream.group is None and options.namespace_history_bytes > 0:
                ns, sep, _ = channel.partition(NAMESPACE_SEPARATOR)
                stream.group = self._groups.setdefault(
                    ns if sep else "", _Budget(options.namespace_history_bytes))
            for budget in (self._budget, stream.group):
                if budget is not None:
                    budget.bytes += cost
                    budget.stored += 1
                    budget.order.append((stream, stream.offset))
            self._trim(stream, now)
            for budget in (self._budget, stream.group):
                if budget is not None:
                    if budget.bytes > budget.limit:
                        self._evict(budget)
                    if len(budget.order) > 2 * budget.stored + 1024:
                        self._compact(budget)
        elif stream.items:
            self._clear(stream)
        handler = self._handler
        if handler is not None and channel in self._subscribed:
            handler.on_publication(pub)
        return position

    def _drop_oldest(self, stream: _Stream) -> None:
        cost = _cost(stream.items.popleft())
        stream.bytes -= cost
        self._budget.bytes -= cost
        self._budget.stored -= 1
        group = stream.group
        if group is not None:
            group.bytes -= cost
            group.stored -= 1

    def _trim(self, stream: _Stream, now: float) -> None:
        """Apply the stream's ``history_size``, ``history_bytes`` and ``history_ttl``."""
        options = stream.options
        items = stream.items
        if options is None or not items:
            return
        while len(items) > options.history_size or stream.bytes > options.history_bytes:
            self._drop_oldest(stream)
        cutoff = now - options.history_ttl
        while items and items[0].time <= cutoff:
            self._drop_oldest(stream)

    def _clear(self, stream: _Stream) -> None:
        while stream.items:
            self._drop_oldest(stream)

    def _evict(self, budget: _Budget) -> None:
        """Drop the oldest publications under ``budget`` until it holds."""
        order = budget.order
        streams = self._streams
        while budget.bytes > budget.limit and order:
            stream, offset = order.popleft()
            items = stream.items
            if (items and items[0].position.offset == offset
                    and streams.get(stream.channel) is stream):
                self._drop_oldest(stream)
                self.evictions += 1

    def _compact(self, budget: _Budget) -> None:
        """Forget FIFO entries of publications no longer stored (trimmed, cleared)."""
        streams = self._streams

        def stored(entry: tuple[_Stream, int]) -> bool:
            stream, offset = entry
            items = stream.items
            return (bool(items) and items[0].position.offset <= offset
                    and streams.get(stream.channel) is stream)

        budget.order = deque(entry for entry in budget.order if stored(entry))

    async def history(self, channel: str, *, options: ChannelOptions,
                      since: StreamPosition | None = None, limit: int | None = None
                      ) -> HistoryResult:
        stream = self._streams.get(channel)
        if stream is None:  # never published (or forgotten): nothing to store for a read
            top = StreamPosition(self.epoch_for(channel), 0)
            recovered = since is None or (since.epoch == top.epoch and since.offset == 0)
            return HistoryResult([], top, recovered)
        now = time.time()
        stream.touched = now
        stream.options = options
        self._trim(stream, now)
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
        end = len(items) if limit is None else min(len(items), start + max(limit, 0))
        pubs = [items[i] for i in range(start, end)]
        return HistoryResult(pubs, top, recovered)

    async def remove_history(self, channel: str) -> None:
        stream = self._streams.get(channel)
        if stream is not None:
            self._clear(stream)

    def channel_count(self) -> int:
        """Channels with stored state (a stream that was published to and not forgotten)."""
        return len(self._streams)

    def sweep(self, now: float | None = None) -> None:
        """Drop expired history and forget streams idle for longer than ``meta_ttl``."""
        now = time.time() if now is None else now
        forgot = False
        for channel in list(self._streams):
            stream = self._streams[channel]
            self._trim(stream, now)
            if (not stream.items and channel not in self._subscribed
                    and now - stream.touched > self._meta_ttl):
                del self._streams[channel]
                forgot = True
        if forgot:
            # subscribers of channels without a stream hold positions of this generation
            for channel in self._subscribed:
                if channel not in self._streams:
                    self._streams[channel] = _Stream(channel, self.epoch_for(channel),
                                                     touched=now)
            self._generation += 1
        for budget in (self._budget, *self._groups.values()):
            if len(budget.order) > 2 * budget.stored + 1024:
                self._compact(budget)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                self.sweep()
            except Exception:
                log.exception("memory broker sweep failed")
