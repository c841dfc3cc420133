"""The hub: local subscriptions of one node, fan-out of publications, and lossless resume.

Theory of operation
-------------------
Every publication reaches ``Hub.on_publication`` from the broker (one delivery path, even
on a single process).  Subscribers of a channel are grouped by their ``Variant`` (wire
encoding); a publication is encoded once per variant and the same bytes are handed to every
subscriber of that variant with ``Subscriber.write``, which only buffers: fan-out never awaits.

Resume merge.  ``subscribe`` first registers the new subscription as *pending* on each of its
channels, so live publications arriving from then on are appended to its buffer; then it
reads history after the client's position (``since``) from the broker.  When the reads
return, with no await in between, it writes (1) a reset notice for the channels whose history
cannot cover the gap (epoch changed, evicted, expired), (2) the missed publications, (3) the
buffered live ones newer than what was replayed (duplicates are dropped by offset), and (4) a
checkpoint carrying the resulting positions.  The subscription then joins the shared variant
group once its position equals the hub's position on every channel; until then (a broker
whose history ran ahead of its live delivery) each publication is written to it alone, after
the same offset check, so nothing is lost or duplicated across the switch.

The hub's position of a channel is the position of the last publication it delivered (or the
history top read when the first local subscriber arrived); shared encodings that carry a
cursor (SSE ``id:``) take it from there, which is exact for every subscription in a group.

Lost continuity.  Brokers deliver each channel's offsets in order; a publication of another
epoch (the store lost the stream, e.g. a Redis restart) or one that skips offsets (a broker that
could not fill a gap from history) means local subscribers missed something.  The hub then
writes a reset notice for that channel to each of them, continuing from just before the
publication, and closes with 3010 those whose wire cannot say it (raw WebSocket): never a
silent skip.  The same happens when a new subscriber's history read shows a new epoch.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from livehub.codes import Disconnect, DisconnectInfo
from livehub.core.broker import Broker, HistoryResult, ImmediatePublisher, Publication
from livehub.core.channels import ChannelOptions, Namespaces
from livehub.core.limits import Limits
from livehub.core.presence import ClientInfo
from livehub.errors import LivehubError
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind
from livehub.wire.validation import check_text

log = logging.getLogger(__name__)


class Subscriber(Protocol):
    """The write-only face of a connection, as the hub sees it."""

    def write(self, data: bytes) -> None:
        """Queue already-encoded bytes.  Never blocks, never calls back into the hub
        synchronously; a subscriber whose buffer overflows closes itself later."""

    def close(self, info: DisconnectInfo) -> None:
        """Close the connection with a documented disconnect code."""


class JoinLeaveListener(Protocol):
    def on_join(self, channel: str, info: ClientInfo) -> None: ...

    def on_leave(self, channel: str, info: ClientInfo) -> None: ...


class Variant(Protocol):
    """A wire encoding of publications; hashable, shared by the subscribers that use it."""

    def encode(self, pub: Publication, positions: Mapping[str, StreamPosition]) -> bytes:
        """Bytes of one publication; ``positions`` are the positions after it."""

    def encode_reset(self, channels: Sequence[str],
                     positions: Mapping[str, StreamPosition]) -> bytes:
        """In-band notice that continuity was lost on ``channels``."""

    def encode_checkpoint(self, positions: Mapping[str, StreamPosition]) -> bytes:
        """Bytes that tell the client its position without an event (may be empty)."""


@dataclass(eq=False, slots=True)
class Subscription:
    """One subscriber's subscription to one or more channels."""

    subscriber: Subscriber
    variant: Variant
    channels: tuple[str, ...]
    positions: dict[str, StreamPosition] = field(default_factory=dict)
    buffer: list[Publication] | None = field(default_factory=list)
    live: bool = False
    closed: bool = False
    reset_channels: tuple[str, ...] = ()


@dataclass(eq=False, slots=True)
class _Channel:
    ready: asyncio.Future[None]
    groups: dict[Variant, dict[Subscriber, None]] = field(default_factory=dict)
    pending: dict[Subscription, None] = field(default_factory=dict)
    count: int = 0
    release: asyncio.TimerHandle | None = None


class Hub:
    """Local subscriptions and fan-out for one node."""

    def __init__(self, broker: Broker, namespaces: Namespaces, *,
                 release_delay: float = 1.0, limits: Limits | None = None) -> None:
        self.broker = broker
        self.namespaces = namespaces
        self.limits = limits if limits is not None else Limits()
        self._rules = self.limits.publication_rules
        self._channels: dict[str, _Channel] = {}
        self._positions: dict[str, StreamPosition] = {}
        self._release_delay = release_delay
        self.deliveries = 0
        self.publications = 0
        self.resets = 0
        """Times local subscribers were told that continuity of a channel was lost."""
        self._publish_now = broker.publish_now if isinstance(broker, ImmediatePublisher) else None
        self._tasks: set[asyncio.Task[StreamPosition]] = set()
        self.join_leave_listeners: list[JoinLeaveListener] = []
        self.control_listeners: list[Callable[[bytes], None]] = []

    # -- publishing ------------------------------------------------------------------------

    def check_publication(self, channel: str, data: bytes, kind: PayloadKind, *,
                          event: str | None = None, info: ClientInfo | None = None
                          ) -> ChannelOptions:
        """The one validation boundary: every publication, from every protocol, passes here
        once before it is stored (``livehub.wire.validation``); return the channel's options.

        Raises ``BadChannel``/``UnknownNamespace``, ``PayloadTooLarge`` or ``BadRequest``.
        """
        options = self.namespaces.options(channel)
        self._check(data, kind, event, info)
        return options

    def _check(self, data: bytes, kind: PayloadKind, event: str | None,
               info: ClientInfo | None) -> None:
        self._rules.check(data, kind, event)
        if info is not None:
            check_text(info.user, "user")
            check_text(info.client, "client")

    async def publish(self, channel: str, data: bytes, kind: PayloadKind, *,
                      event: str | None = None, info: ClientInfo | None = None
                      ) -> StreamPosition:
        """Validate, then publish through the broker with the channel's options."""
        options = self.check_publication(channel, data, kind, event=event, info=info)
        return await self.broker.publish(channel, data, kind, options=options, event=event,
                                         info=info)

    async def broadcast(self, channels: Sequence[str], data: bytes, kind: PayloadKind, *,
                        event: str | None = None
                        ) -> list[StreamPosition | LivehubError]:
        """Validate once, then publish to every channel; a channel's position or its error
        (bad name, broker unavailable).  Raises for a publication that is refused."""
        self._check(data, kind, event, None)

        async def one(channel: str) -> StreamPosition | LivehubError:
            try:
                options = self.namespaces.options(channel)
                return await self.broker.publish(channel, data, kind, options=options,
                                                 event=event)
            except LivehubError as exc:
                return exc

        return list(await asyncio.gather(*(one(channel) for channel in channels)))

    def publish_nowait(self, channel: str, data: bytes, kind: PayloadKind, *,
                       options: ChannelOptions, event: str | None = None,
                       info: ClientInfo | None = None) -> None:
        """Validate, then publish without awaiting (messages from clients, in the order
        received); raises like ``check_publication``.

        With an ``ImmediatePublisher`` broker this completes before returning; otherwise a
        task carries it and a failure is logged.
        """
        self._check(data, kind, event, info)
        if self._publish_now is not None:
            self._publish_now(channel, data, kind, options=options, event=event, info=info)
            return
        task = asyncio.get_running_loop().create_task(
            self.broker.publish(channel, data, kind, options=options, event=event, info=info))
        self._tasks.add(task)
        task.add_done_callback(self._publish_done)

    def _publish_done(self, task: asyncio.Task[StreamPosition]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("client publication failed", exc_info=task.exception())

    def on_join(self, channel: str, info: ClientInfo) -> None:
        """Join events are for protocols with presence (Centrifugo); plain transports
        ignore them."""
        for listener in self.join_leave_listeners:
            listener.on_join(channel, info)

    def on_leave(self, channel: str, info: ClientInfo) -> None:
        for listener in self.join_leave_listeners:
            listener.on_leave(channel, info)

    def on_control(self, data: bytes) -> None:
        for listener in self.control_listeners:
            listener(data)

    def on_publication(self, pub: Publication) -> None:
        """Fan a publication out to local subscribers (``BrokerHandler``)."""
        state = self._channels.get(pub.channel)
        if state is None:
            return
        position = pub.position
        current = self._positions.get(pub.channel)
        if current is not None:
            if current.epoch == position.epoch and position.offset <= current.offset:
                return  # already delivered (e.g. seen through history first)
            if current.epoch != position.epoch or position.offset != current.offset + 1:
                self._continuity_lost(pub.channel, state,
                                      StreamPosition(position.epoch, position.offset - 1))
        self._positions[pub.channel] = position
        self.publications += 1
        positions = self._positions
        for variant, subscribers in state.groups.items():
            data = variant.encode(pub, positions)
            for subscriber in subscribers:
                subscriber.write(data)
            self.deliveries += len(subscribers)
        if state.pending:
            for sub in list(state.pending):
                self._deliver_pending(sub, pub)

    def _continuity_lost(self, name: str, state: _Channel, position: StreamPosition) -> None:
        """Tell every local subscriber of ``name`` that it missed publications and now
        continues from ``position`` (see "Lost continuity" above)."""
        log.warning("channel %r: continuity lost, resetting local subscribers to %s:%d",
                    name, position.epoch, position.offset)
        self.resets += 1
        self._positions[name] = position
        for variant, subscribers in list(state.groups.items()):
            notice = variant.encode_reset((name,), self._positions)
            for subscriber in list(subscribers):
                if notice:
                    subscriber.write(notice)
                else:
                    subscriber.close(Disconnect.INSUFFICIENT_STATE)
        for sub in list(state.pending):
            if sub.buffer is not None or sub.closed:
                continue  # still catching up: it compares history with its own cursor
            sub.positions[name] = position
            notice = sub.variant.encode_reset((name,), sub.positions)
            if notice:
                sub.subscriber.write(notice)
            else:
                sub.subscriber.close(Disconnect.INSUFFICIENT_STATE)

    # -- subscribing -----------------------------------------------------------------------

    async def subscribe(self, subscriber: Subscriber, variant: Variant, channels: Sequence[str],
                        *, since: Mapping[str, StreamPosition] | None = None) -> Subscription:
        """Subscribe, replay what was missed after ``since``, then follow live traffic.

        Raises ``BadChannel``/``UnknownNamespace`` before anything is registered.
        """
        names = tuple(dict.fromkeys(channels))
        options = {name: self.namespaces.options(name) for name in names}
        sub = Subscription(subscriber, variant, names)
        try:
            for name in names:
                await self._attach(name, sub)
            results: list[HistoryResult] = await asyncio.gather(*(
                self.broker.history(name, options=options[name],
                                    since=None if since is None else since.get(name),
                                    limit=0 if since is None or name not in since else None)
                for name in names))
        except BaseException:
            self.unsubscribe(sub)
            raise
        if sub.closed:
            return sub
        self._catch_up(sub, results, since or {})
        return sub

    async def _attach(self, name: str, sub: Subscription) -> None:
        state = self._channels.get(name)
        if state is None:
            loop = asyncio.get_running_loop()
            state = self._channels[name] = _Channel(loop.create_future())
            state.pending[sub] = None
            state.count += 1
            try:
                await self.broker.subscribe(name)
            except BaseException as exc:
                # forget the failed channel now, so the next subscriber tries again
                if self._channels.get(name) is state:
                    del self._channels[name]
                state.ready.set_exception(exc)
                state.ready.exception()  # mark retrieved
                raise
            state.ready.set_result(None)
            return
        if state.release is not None:
            state.release.cancel()
            state.release = None
        state.pending[sub] = None
        state.count += 1
        if not state.ready.done():
            await asyncio.shield(state.ready)
        elif state.ready.exception() is not None:
            raise state.ready.exception()  # type: ignore[misc]

    def _catch_up(self, sub: Subscription, results: Sequence[HistoryResult],
                  since: Mapping[str, StreamPosition]) -> None:
        replays: list[Sequence[Publication]] = []
        resets: list[str] = []
        buffered = sub.buffer or []
        first_live: dict[str, StreamPosition] = {}
        for pub in buffered:
            first_live.setdefault(pub.channel, pub.position)
        for name, result in zip(sub.channels, results, strict=True):
            hub_pos = self._positions.get(name)
            if hub_pos is None:
                self._positions[name] = result.top
            elif hub_pos.epoch != result.top.epoch:
                self._continuity_lost(name, self._channels[name], result.top)
            start = since.get(name)
            if start is None or not result.recovered:
                if start is not None:
                    resets.append(name)
                sub.positions[name] = _live_start(result.top, first_live.get(name))
            else:
                sub.positions[name] = start
                replays.append(result.publications)
        sub.buffer = None  # from here on, live publications reach it one by one or shared
        write = sub.subscriber.write
        variant = sub.variant
        if resets:
            sub.reset_channels = tuple(resets)
            notice = variant.encode_reset(resets, sub.positions)
            if notice:
                write(notice)
        # across channels by time; heapq.merge keeps each channel's offset order even if the
        # wall clock stepped back
        replay = heapq.merge(*replays, key=_publication_time) if len(replays) > 1 else (
            replays[0] if replays else ())
        for pub in (*replay, *buffered):
            self._write_individual(sub, pub)
        checkpoint = variant.encode_checkpoint(sub.positions)
        if checkpoint:
            write(checkpoint)
        self._maybe_promote(sub)

    def _write_individual(self, sub: Subscription, pub: Publication) -> None:
        current = sub.positions.get(pub.channel)
        if (current is not None and current.epoch == pub.position.epoch
                and pub.position.offset <= current.offset):
            return
        sub.positions[pub.channel] = pub.position
        sub.subscriber.write(sub.variant.encode(pub, sub.positions))
        self.deliveries += 1

    def _deliver_pending(self, sub: Subscription, pub: Publication) -> None:
        if sub.buffer is not None:
            sub.buffer.append(pub)
            return
        self._write_individual(sub, pub)
        self._maybe_promote(sub)

    def _maybe_promote(self, sub: Subscription) -> None:
        if sub.closed or sub.live:
            return
        for name in sub.channels:
            if sub.positions[name] != self._positions.get(name):
                return
        sub.live = True
        for name in sub.channels:
            state = self._channels[name]
            del state.pending[sub]
            state.groups.setdefault(sub.variant, {})[sub.subscriber] = None

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove a subscription (idempotent); channels left empty are released later."""
        if sub.closed:
            return
        sub.closed = True
        for name in sub.channels:
            state = self._channels.get(name)
            if state is None:
                continue
            removed = state.pending.pop(sub, False) is None
            group = state.groups.get(sub.variant)
            if group is not None and sub.subscriber in group:
                del group[sub.subscriber]
                removed = True
                if not group:
                    del state.groups[sub.variant]
            if not removed:
                continue
            state.count -= 1
            if state.count == 0 and state.release is None:
                loop = asyncio.get_running_loop()
                state.release = loop.call_later(self._release_delay, self._release, name)

    def _release(self, name: str) -> None:
        state = self._channels.get(name)
        if state is None or state.count > 0:
            return
        del self._channels[name]
        self._positions.pop(name, None)
        task = asyncio.get_running_loop().create_task(self.broker.unsubscribe(name))
        task.add_done_callback(_log_failure)

    # -- introspection -----------------------------------------------------------------------

    def subscriber_count(self, channel: str) -> int:
        state = self._channels.get(channel)
        return 0 if state is None else state.count

    def channel_count(self) -> int:
        return len(self._channels)

    def channel_names(self) -> list[str]:
        """Channels with local subscribers (or released a moment ago)."""
        return list(self._channels)

    def position(self, channel: str) -> StreamPosition | None:
        return self._positions.get(channel)


def _publication_time(pub: Publication) -> float:
    return pub.time


def _live_start(top: StreamPosition, first_live: StreamPosition | None) -> StreamPosition:
    """Where a subscription that replays nothing (no ``since``, or a reset) starts: the
    history top, or just before the first live publication buffered during the history read
    when the read already counted it (that publication came after the subscription started
    and was not replayed, so it must still be written)."""
    if (first_live is not None and first_live.epoch == top.epoch
            and first_live.offset <= top.offset):
        return StreamPosition(top.epoch, first_live.offset - 1)
    return top


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("broker unsubscribe failed", exc_info=task.exception())
