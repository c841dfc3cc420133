"""The Node: the one face of the core that protocols use (publish, history, presence, subscribe).

Protocols never touch the broker or the presence store; they ask the node.  The node owns the
``Hub`` (local subscribers and fan-out), the ``Broker`` (storage, positions, delivery between
nodes) and the ``PresenceManager``, and states what every operation guarantees.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from livehub.core.broker import Broker, HistoryResult, ImmediatePublisher
from livehub.core.channels import ChannelOptions, Namespaces
from livehub.core.hub import Hub, JoinLeaveListener, Subscriber, Subscription, Variant
from livehub.core.journal import Journal, encode_entry
from livehub.core.limits import Limits
from livehub.core.opstats import BrokerOps
from livehub.core.presence import ClientInfo, MemoryPresence, PresenceManager, PresenceStats
from livehub.core.recovery import ResumeBudget
from livehub.errors import LivehubError, PayloadTooLarge
from livehub.ratelog import RateLimitedLog
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind
from livehub.wire.validation import check_event, check_text

log = logging.getLogger(__name__)
rlog = RateLimitedLog(log)
T = TypeVar("T")


class Node:
    """Publish, read history, subscribe, presence, join/leave and control, for one process.

    Guarantees (the same with the memory and the Redis broker; contract suite in
    ``tests/core/test_node_contract.py``):

    * **One delivery path.**  ``publish`` stores and positions a publication atomically
      (``Broker.publish``) and every node's hub fans it out from the broker, this one
      included; what ``publish`` returns is the publication's position.
    * **Order.**  ``publish_nowait`` calls of one caller are published in call order.
    * **Lossless subscribe.**  A subscription returned by ``subscribe`` receives every
      publication of its channels stored after the position it was given (``since``), or
      after the moment it subscribed, exactly once and in offset order per channel; when
      that is impossible (history evicted or expired, a new epoch, a replay beyond the
      ``ResumeBudget``) it is told with a reset notice, never silently skipped.  Releasing a
      channel never takes away the broker subscription of a newer subscriber.
    * **Errors.**  Operations raise only ``LivehubError`` subclasses for refusals and
      broker failures (``Unavailable`` when the broker cannot serve now, ``ServerError``
      when it refused or returned something undecodable): callers answer with their codes.
    * **Validation.**  Channel names and namespaces are checked before anything is stored
      or registered (``BadChannel``, ``UnknownNamespace``); every publication, from every
      protocol, is validated once before it is stored (``check_publication``): it is valid,
      stored and delivered to everyone, or refused and stored nowhere.
    * **Journals.**  A publication to a channel a ``Journal`` covers is followed by an entry
      in the journal channel (``livehub.core.journal``), from every protocol, unless the
      caller appends its own entry (``journal=False``).
    """

    def __init__(self, broker: Broker, namespaces: Namespaces, *,
                 presence: PresenceManager | None = None, limits: Limits | None = None,
                 release_delay: float = 1.0) -> None:
        self.namespaces = namespaces
        self.limits = limits if limits is not None else Limits()
        self.presence: PresenceManager = presence if presence is not None else MemoryPresence()
        self.hub = Hub(broker, namespaces, release_delay=release_delay, limits=self.limits)
        self._rules = self.limits.publication_rules
        self._broker = broker
        self._publish_now = broker.publish_now if isinstance(broker, ImmediatePublisher) else None
        self._tasks: set[asyncio.Task[StreamPosition]] = set()
        self.ops = BrokerOps()
        """Latency and errors of the broker operations awaited here (metrics)."""
        self.publications_refused: Counter[str] = Counter()
        """Publications refused by validation, by reason (``size``, ``json``, ``text``,
        ``event``, ``info``): metrics."""
        self.limit_hits: Counter[str] = Counter()
        """Refusals by the budget that refused (``client_publish_rate``, ``api_max_batch``...),
        counted by the protocol that applies it: metrics (``docs/limits.md``)."""
        self.journals: list[Journal] = []

    @property
    def broker(self) -> Broker:
        """The broker (for the composition root and tests; protocols use the methods)."""
        return self._broker

    @property
    def resume(self) -> ResumeBudget:
        return self.hub.resume

    def options(self, channel: str) -> ChannelOptions:
        """The options of ``channel``'s namespace (raises ``BadChannel``/``UnknownNamespace``)."""
        return self.namespaces.options(channel)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the broker; from now on publications reach the hub."""
        await self._broker.start(self.hub)

    async def close(self) -> None:
        await self._broker.close()

    # -- publishing --------------------------------------------------------------------------

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
        try:
            self._rules.check(data, kind, event)
            if info is not None:
                check_text(info.user, "user")
                check_text(info.client, "client")
        except LivehubError as exc:
            self.publications_refused[_refusal_reason(exc, data, kind, event)] += 1
            raise

    async def _timed(self, op: str, call: Awaitable[T]) -> T:
        """Await a broker operation, counting its latency and its errors (``ops``)."""
        start = time.perf_counter()
        try:
            result = await call
        except LivehubError as exc:
            self.ops.error(op, exc)
            raise
        self.ops.observe(op, time.perf_counter() - start)
        return result

    async def publish(self, channel: str, data: bytes, kind: PayloadKind, *,
                      event: str | None = None, info: ClientInfo | None = None,
                      journal: bool = True) -> StreamPosition:
        """Validate, then store, position and deliver a publication; its position.

        ``journal=False``: the caller appends the journal entry itself (``append``)."""
        options = self.check_publication(channel, data, kind, event=event, info=info)
        position = await self._timed("publish", self._broker.publish(
            channel, data, kind, options=options, event=event, info=info))
        if journal and self.journals:
            await self._journal(channel, data, kind, event)
        return position

    def add_journal(self, journal: Journal) -> None:
        """Keep ``journal`` from now on (a protocol's ``install``); checks its channel."""
        self.namespaces.options(journal.channel)
        self.journals.append(journal)

    def journal_of(self, channel: str) -> Journal | None:
        """The journal that covers ``channel``, if any."""
        for journal in self.journals:
            if journal.covers(channel):
                return journal
        return None

    async def append(self, journal: Journal, entry: bytes) -> StreamPosition:
        """Append an entry of the caller's own (``encode_entry``) to ``journal``."""
        options = self.namespaces.options(journal.channel)
        return await self._broker.publish(journal.channel, entry, PayloadKind.TEXT,
                                          options=options)

    async def _journal(self, channel: str, data: bytes, kind: PayloadKind,
                       event: str | None) -> None:
        journal = self.journal_of(channel)
        if journal is not None:
            await self.append(journal, encode_entry(channel, data, kind, event=event))

    async def broadcast(self, channels: Sequence[str], data: bytes, kind: PayloadKind, *,
                        event: str | None = None
                        ) -> list[StreamPosition | LivehubError]:
        """Validate once, then publish to every channel; a channel's position or its error
        (bad name, broker unavailable).  Raises for a publication that is refused."""
        self._check(data, kind, event, None)

        async def one(channel: str) -> StreamPosition | LivehubError:
            try:
                options = self.namespaces.options(channel)
                position = await self._timed("publish", self._broker.publish(
                    channel, data, kind, options=options, event=event))
                if self.journals:
                    await self._journal(channel, data, kind, event)
                return position
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
        journal = self.journal_of(channel) if self.journals else None
        if self._publish_now is not None:
            self._publish_now(channel, data, kind, options=options, event=event, info=info)
            if journal is not None:
                self._publish_now(journal.channel, encode_entry(channel, data, kind, event=event),
                                  PayloadKind.TEXT, options=self.namespaces.options(
                                      journal.channel))
            return
        task = asyncio.get_running_loop().create_task(
            self._publish_task(channel, data, kind, options=options, event=event, info=info))
        self._tasks.add(task)
        task.add_done_callback(self._publish_done)

    async def _publish_task(self, channel: str, data: bytes, kind: PayloadKind, *,
                            options: ChannelOptions, event: str | None,
                            info: ClientInfo | None) -> StreamPosition:
        position = await self._timed("publish", self._broker.publish(
            channel, data, kind, options=options, event=event, info=info))
        if self.journals:
            await self._journal(channel, data, kind, event)
        return position

    def _publish_done(self, task: asyncio.Task[StreamPosition]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            rlog.log(logging.ERROR, "client-publication",
                     "client publication failed: %s", task.exception())

    # -- history -----------------------------------------------------------------------------

    async def history(self, channel: str, *, since: StreamPosition | None = None,
                      limit: int | None = None) -> HistoryResult:
        """Publications after ``since`` (all retained if None, none if ``limit`` is 0)."""
        options = self.namespaces.options(channel)
        return await self._timed("history", self._broker.history(
            channel, options=options, since=since, limit=limit))

    async def top(self, channel: str) -> StreamPosition:
        """The position of the newest publication of ``channel`` (offset 0: none yet)."""
        return (await self.history(channel, limit=0)).top

    async def remove_history(self, channel: str) -> None:
        """Drop the retained publications of ``channel`` (positions continue)."""
        self.namespaces.options(channel)
        await self._broker.remove_history(channel)

    # -- subscribing -------------------------------------------------------------------------

    async def subscribe(self, subscriber: Subscriber, variant: Variant, channels: Sequence[str],
                        *, since: Mapping[str, StreamPosition] | None = None,
                        recent: int = 0) -> Subscription:
        """Subscribe, replay what was missed after ``since``, then follow live traffic.

        ``recent``: on the channels without a position in ``since``, first the newest
        ``recent`` retained publications (at most the resume budget, newest kept), with their
        real positions, so a later resume continues from them without a duplicate."""
        return await self.hub.subscribe(subscriber, variant, channels, since=since,
                                        recent=recent)

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove a subscription (idempotent)."""
        self.hub.unsubscribe(sub)

    # -- presence, join/leave, control -------------------------------------------------------

    async def add_presence(self, channel: str, info: ClientInfo, *, ttl: float) -> None:
        await self.presence.add(channel, info, ttl=ttl)

    async def remove_presence(self, channel: str, client: str) -> None:
        await self.presence.remove(channel, client)

    async def presence_of(self, channel: str) -> dict[str, ClientInfo]:
        """Live presence entries of ``channel`` by client id."""
        return await self.presence.presence(channel)

    async def presence_stats(self, channel: str) -> PresenceStats:
        return await self.presence.stats(channel)

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        """Tell every node's join/leave listeners that ``info`` joined ``channel``."""
        await self._broker.publish_join(channel, info)

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        await self._broker.publish_leave(channel, info)

    async def publish_control(self, data: bytes) -> None:
        """Deliver a control message to every node's control listeners, this one included."""
        await self._broker.publish_control(data)

    def add_join_leave_listener(self, listener: JoinLeaveListener) -> None:
        self.hub.join_leave_listeners.append(listener)

    def add_control_listener(self, listener: Callable[[bytes], None]) -> None:
        self.hub.control_listeners.append(listener)


def _refusal_reason(exc: LivehubError, data: bytes, kind: PayloadKind,
                    event: str | None) -> str:
    """Why ``Node._check`` refused a publication (its metric label; the error path only)."""
    if isinstance(exc, PayloadTooLarge):
        return "size"
    if event is not None:
        try:
            check_event(event)
        except LivehubError:
            return "event"
    if kind is PayloadKind.JSON:
        return "json"
    if kind is PayloadKind.TEXT:
        try:
            data.decode()
        except UnicodeDecodeError:
            return "text"
    return "info"
