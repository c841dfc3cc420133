"""The hub: local subscriptions of one node, fan-out of publications, and lossless resume.

Theory of operation
-------------------
Every publication reaches ``Hub.on_publication`` from the broker (one delivery path, even
on a single process).  Subscribers of a channel are grouped by their ``Variant`` (wire
encoding); a publication is encoded once per variant and the same bytes are handed to every
subscriber of that variant with ``Subscriber.write``, which only buffers: fan-out never awaits.

Resume merge.  ``subscribe`` first registers the new subscription as *pending* on each of its
channels, so live publications arriving from then on are appended to its buffer; then it
reads history after the client's position (``since``) from the broker, at most one more
publication than the ``ResumeBudget`` allows.  When the reads return, with no await in
between, it writes what ``recovery.plan_catch_up`` decides (the rules live there, once):
(1) a reset notice for the channels whose history cannot cover the gap (epoch changed,
evicted, expired) or whose replay exceeds the budget, (2) the missed publications, (3) the
buffered live ones newer than what was replayed (duplicates are dropped by offset), and (4) a
checkpoint carrying the resulting positions.  A subscriber that batches its writes
(``Windowed``) is told each channel's ``write_delay`` first.  A subscriber with a bounded buffer
(``CatchUpWriter``: every ``Outgoing``) gets these writes between ``begin_catch_up`` and
``end_catch_up``, so the catch-up is bounded by the resume budget, not by its buffer limit,
the same on every protocol.  The subscription then joins the shared variant
group once its position equals the hub's position on every channel; until then (a broker
whose history ran ahead of its live delivery) each publication is written to it alone, after
the same offset check, so nothing is lost or duplicated across the switch.

Broker subscriptions.  The first local subscriber of a channel subscribes the node at the
broker; the channel is released (the broker unsubscribed) ``release_delay`` seconds after its
last subscriber left.  A channel has at most one broker operation at a time: a subscribe that
arrives while the release of the same channel is still unsubscribing waits for it, then
subscribes again, so a release never takes away the subscription of a newer subscriber.

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
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from livehub.codes import Disconnect, DisconnectInfo
from livehub.core.broker import Broker, HistoryResult, Publication
from livehub.core.channels import Namespaces
from livehub.core.limits import Limits
from livehub.core.presence import ClientInfo
from livehub.core.recovery import Step, plan_catch_up, step
from livehub.ratelog import RateLimitedLog
from livehub.wire.cursor import StreamPosition

log = logging.getLogger(__name__)
rlog = RateLimitedLog(log)


class Subscriber(Protocol):
    """The write-only face of a connection, as the hub sees it."""

    def write(self, data: bytes) -> None:
        """Queue already-encoded bytes.  Never blocks, never calls back into the hub
        synchronously; a subscriber whose buffer overflows closes itself later."""

    def close(self, info: DisconnectInfo) -> None:
        """Close the connection with a documented disconnect code."""


class CatchUpWriter(Protocol):
    """Optional extra of a ``Subscriber`` with a bounded buffer (``Outgoing``): the hub writes
    a catch-up between these calls, so its size is bounded by the resume budget, not by the
    subscriber's buffer limit (issue 8 item 6: one rule for every protocol)."""

    def begin_catch_up(self) -> None: ...

    def end_catch_up(self) -> None: ...


class Windowed(Protocol):
    """Optional extra of a ``Subscriber`` that batches its writes (``Outgoing``): the hub tells
    it the ``write_delay`` of each namespace it subscribes in (None: the server's)."""

    def narrow_window(self, delay: float | None) -> None: ...


class JoinLeaveListener(Protocol):
    def on_join(self, channel: str, info: ClientInfo) -> None: ...

    def on_leave(self, channel: str, info: ClientInfo) -> None: ...


class Variant(Protocol):
    """A wire encoding of publications; hashable, shared by the subscribers that use it."""

    def encode(self, pub: Publication, positions: Mapping[str, StreamPosition]) -> bytes:
        """Bytes of one publication; ``positions`` are the positions after it.  ``b""``:
        nothing for these subscribers (a filtering wire, such as Mercure's topic selectors);
        the hub then writes nothing to them, so subscribers never see an empty write."""

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
    """Local subscriptions and fan-out for one node (publishing goes through ``Node``)."""

    def __init__(self, broker: Broker, namespaces: Namespaces, *,
                 release_delay: float = 1.0, limits: Limits | None = None) -> None:
        self.broker = broker
        self.namespaces = namespaces
        self.limits = limits if limits is not None else Limits()
        self.resume = self.limits.resume_budget
        self._channels: dict[str, _Channel] = {}
        self._positions: dict[str, StreamPosition] = {}
        self._releasing: dict[str, asyncio.Task[None]] = {}
        """Broker unsubscribes in progress, by channel (see "Broker subscriptions")."""
        self._release_delay = release_delay
        self.deliveries = 0
        self.publications = 0
        self.resets = 0
        """Times local subscribers were told that continuity of a channel was lost."""
        self.resumes_over_budget = 0
        """Resumes answered with a reset because the replay exceeded the resume budget."""
        self.resumes = 0
        """Subscriptions that resumed from a position (``since``), and what they replayed:"""
        self.resumed_publications = 0
        self.resumes_reset = 0
        """Resumes told that history could not cover the gap (on at least one channel)."""
        self.join_leave_listeners: list[JoinLeaveListener] = []
        self.control_listeners: list[Callable[[bytes], None]] = []

    # -- broker events (BrokerHandler) -------------------------------------------------------

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
        if (current is None or position.offset != current.offset + 1
                or position.epoch != current.epoch):
            # not plainly the next one: the rules of recovery.step decide
            after = step(current, position)
            if after is Step.SEEN:
                return  # already delivered (e.g. seen through history first)
            if after is Step.GAP:
                self._continuity_lost(pub.channel, state,
                                      StreamPosition(position.epoch, position.offset - 1))
        self._positions[pub.channel] = position
        self.publications += 1
        positions = self._positions
        for variant, subscribers in state.groups.items():
            data = variant.encode(pub, positions)
            if not data:
                continue  # filtered out for this variant: no call per subscriber
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
                        *, since: Mapping[str, StreamPosition] | None = None,
                        recent: int = 0) -> Subscription:
        """Subscribe, replay what was missed after ``since`` (and, on channels without a
        position there, the ``recent`` newest publications, within the resume budget), then
        follow live traffic.

        Raises ``BadChannel``/``UnknownNamespace`` before anything is registered.
        """
        names = tuple(dict.fromkeys(channels))
        options = {name: self.namespaces.options(name) for name in names}
        sub = Subscription(subscriber, variant, names)
        since = since or {}
        limit = self.resume.read_limit
        recent = max(0, min(recent, self.resume.max_publications))
        narrow = getattr(subscriber, "narrow_window", None)  # Windowed, see _catch_up
        if narrow is not None:
            for opts in options.values():
                narrow(opts.write_delay)
        try:
            for name in names:
                await self._attach(name, sub)
            results: list[HistoryResult] = await asyncio.gather(*(
                self.broker.history(name, options=options[name], since=since.get(name),
                                    limit=limit if name in since else recent)
                for name in names))
        except BaseException:
            self.unsubscribe(sub)
            raise
        if sub.closed:
            return sub
        self._catch_up(sub, results, since)
        return sub

    async def _attach(self, name: str, sub: Subscription) -> None:
        state = self._channels.get(name)
        if state is None:
            loop = asyncio.get_running_loop()
            state = self._channels[name] = _Channel(loop.create_future())
            state.pending[sub] = None
            state.count += 1
            try:
                releasing = self._releasing.get(name)
                if releasing is not None:
                    # the previous broker subscription is going: subscribe after it went
                    await asyncio.wait((releasing,))
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
        for name, result in zip(sub.channels, results, strict=True):
            hub_pos = self._positions.get(name)
            if hub_pos is None:
                self._positions[name] = result.top
            elif hub_pos.epoch != result.top.epoch:
                self._continuity_lost(name, self._channels[name], result.top)
        plan = plan_catch_up(sub.channels, results, since, sub.buffer or (), self.resume)
        sub.buffer = None  # from here on, live publications reach it one by one or shared
        if since:
            self.resumes += 1
            self.resumed_publications += len(plan.writes)
            if plan.resets:
                self.resumes_reset += 1
        if plan.over_budget:
            self.resumes_over_budget += 1
            rlog.info("resume-budget", "resume of %s over the resume budget (%d publications, "
                      "%d bytes): reset", ", ".join(plan.over_budget),
                      self.resume.max_publications, self.resume.max_bytes)
        positions = sub.positions
        positions.update(plan.start)
        subscriber = sub.subscriber
        # optional extras are found by their method, not with isinstance on a
        # runtime_checkable Protocol, which walks the protocol's members on every call (about
        # 5 us each in CPython 3.11: a third of a subscribe; issue 15)
        bracket = (cast(CatchUpWriter, subscriber) if hasattr(subscriber, "begin_catch_up")
                   else None)
        if bracket is not None:
            bracket.begin_catch_up()
        try:
            write = subscriber.write
            variant = sub.variant
            if plan.resets:
                sub.reset_channels = plan.resets
                notice = variant.encode_reset(plan.resets, positions)
                if notice:
                    write(notice)
            for pub in plan.writes:
                positions[pub.channel] = pub.position
                data = variant.encode(pub, positions)
                if data:
                    write(data)
                    self.deliveries += 1
            checkpoint = variant.encode_checkpoint(positions)
            if checkpoint:
                write(checkpoint)
        finally:
            if bracket is not None:
                bracket.end_catch_up()
        self._maybe_promote(sub)

    def _write_individual(self, sub: Subscription, pub: Publication) -> None:
        if step(sub.positions.get(pub.channel), pub.position) is Step.SEEN:
            return
        sub.positions[pub.channel] = pub.position
        data = sub.variant.encode(pub, sub.positions)
        if data:
            sub.subscriber.write(data)
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
        task = asyncio.get_running_loop().create_task(self._unsubscribe(name, state))
        self._releasing[name] = task
        task.add_done_callback(self._released)

    async def _unsubscribe(self, name: str, state: _Channel) -> None:
        """The broker side of a release; one subscribe of ``name`` waits for it."""
        if not state.ready.done():
            await asyncio.wait((state.ready,))
        if state.ready.exception() is None:
            await self.broker.unsubscribe(name)

    def _released(self, task: asyncio.Task[None]) -> None:
        for name, releasing in list(self._releasing.items()):
            if releasing is task:
                del self._releasing[name]
        if not task.cancelled() and task.exception() is not None:
            log.error("broker unsubscribe failed: %s", task.exception())

    # -- introspection -----------------------------------------------------------------------

    def subscriber_count(self, channel: str) -> int:
        state = self._channels.get(channel)
        return 0 if state is None else state.count

    def channel_count(self) -> int:
        return len(self._channels)

    def subscription_count(self) -> int:
        """Local subscriptions summed over channels (a stream of 3 channels counts 3)."""
        return sum(state.count for state in self._channels.values())

    def channel_names(self) -> list[str]:
        """Channels with local subscribers (or released a moment ago)."""
        return list(self._channels)

    def position(self, channel: str) -> StreamPosition | None:
        return self._positions.get(channel)
