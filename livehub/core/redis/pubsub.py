"""One Redis pub/sub connection that follows a changing set of topics and survives Redis outages.

Theory of operation
-------------------
A node has exactly one pub/sub connection.  ``add`` records topics as *wanted*, sends one
``SUBSCRIBE`` for those not yet sent on the current connection, and returns when Redis has
confirmed every one of them (so a publication made after ``add`` returns is delivered).
``remove`` forgets topics and sends ``UNSUBSCRIBE`` without waiting.

A reader task owns the connection: it reads messages and confirmations and hands them to the
owner's callbacks in the order Redis sent them (Redis keeps publish order per connection).  When
the connection breaks (or stays silent for three ping intervals), waiters fail with
``Unavailable``; the task reconnects with exponential backoff and jitter, subscribes every
wanted topic again, calls ``on_reconnected`` before reading the confirmations, and reports
each confirmation through ``on_subscribed(topic, resubscribed)`` so the owner can fill what it
missed while disconnected.  redis-py's own retries are off on the
client this uses (see ``redis.connect``); reconnection is done here only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from livehub.errors import Unavailable

log = logging.getLogger(__name__)

BATCH = 500
"""Topics per SUBSCRIBE command when subscribing again after a reconnect."""


class PubSubLink:
    """The single pub/sub connection of a node (see the module docstring)."""

    def __init__(self, client: Redis, *, fixed: Iterable[bytes],
                 on_message: Callable[[bytes, bytes], None],
                 on_subscribed: Callable[[bytes, bool], None],
                 on_reconnected: Callable[[], Awaitable[None]] | None = None,
                 ping_interval: float = 5.0, subscribe_timeout: float = 5.0,
                 min_backoff: float = 0.05, max_backoff: float = 2.0) -> None:
        self._client = client
        self._fixed = tuple(fixed)
        self._on_message = on_message
        self._on_subscribed = on_subscribed
        self._on_reconnected = on_reconnected
        self._ping_interval = ping_interval
        self._subscribe_timeout = subscribe_timeout
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._wanted: set[bytes] = set()
        self._sent: set[bytes] = set()
        self._confirmed: set[bytes] = set()
        self._ever_confirmed: set[bytes] = set()
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        self.connects = 0
        """How many times the connection was established (1 + reconnects)."""

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    async def start(self, wait: float) -> bool:
        """Start the reader task; wait up to ``wait`` seconds for the first connection."""
        self._task = asyncio.get_running_loop().create_task(self._run())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), wait)
        return self.connected

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_connected(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), timeout)
        return self.connected

    # -- topics ---------------------------------------------------------------------------------

    async def add(self, topics: tuple[bytes, ...]) -> None:
        """Subscribe ``topics``; return once Redis confirmed them, else raise ``Unavailable``."""
        self._wanted.update(topics)
        missing = [t for t in topics if t not in self._confirmed]
        if not missing:
            return
        pubsub = self._pubsub
        if pubsub is None or not self.connected:
            raise Unavailable("broker unavailable: not connected to Redis, try again later")
        loop = asyncio.get_running_loop()
        futures = []
        for topic in missing:
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(topic, []).append(fut)
            futures.append(fut)
        to_send = [t for t in missing if t not in self._sent]
        try:
            if to_send:
                self._sent.update(to_send)
                await pubsub.subscribe(*to_send)
            async with asyncio.timeout(self._subscribe_timeout):
                await asyncio.gather(*futures)
        except (RedisError, OSError, TimeoutError):
            raise Unavailable("broker unavailable: Redis did not confirm the subscription, "
                              "try again later") from None
        finally:
            for fut in futures:
                if not fut.done():
                    fut.cancel()

    async def remove(self, topics: tuple[bytes, ...]) -> None:
        """Unsubscribe ``topics`` (no wait for Redis; messages for them are ignored)."""
        sent = [t for t in topics if t in self._sent]
        for topic in topics:
            self._wanted.discard(topic)
            self._confirmed.discard(topic)
            self._sent.discard(topic)
            self._ever_confirmed.discard(topic)
        pubsub = self._pubsub
        if sent and pubsub is not None and self.connected:
            try:
                await pubsub.unsubscribe(*sent)
            except (RedisError, OSError) as exc:
                log.debug("unsubscribe failed (the reconnect will not restore it): %s", exc)

    def wants(self, topic: bytes) -> bool:
        return topic in self._wanted

    # -- the reader task ------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._min_backoff
        while True:
            pubsub = self._client.pubsub()
            try:
                topics = [*self._fixed, *self._wanted]
                self._sent = set(topics)
                for i in range(0, len(topics), BATCH):
                    await pubsub.subscribe(*topics[i:i + BATCH])
                self._pubsub = pubsub
                self.connects += 1
                self._up.set()
                if self.connects > 1:
                    log.warning("reconnected to Redis pub/sub; subscribing %d channel topics "
                                "again", len(self._wanted))
                    if self._on_reconnected is not None:
                        await self._on_reconnected()
                delay = self._min_backoff
                await self._read(pubsub)
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.warning("Redis pub/sub connection lost: %s", exc)
                else:
                    log.debug("Redis pub/sub connect failed: %s", exc)
            except Exception:
                # a bug here must not end the reader: log it and connect again
                log.exception("Redis pub/sub reader failed; reconnecting")
            finally:
                self._down()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self._max_backoff)

    def _down(self) -> None:
        self._up.clear()
        self._pubsub = None
        self._sent.clear()
        self._confirmed.clear()
        waiters, self._waiters = self._waiters, {}
        for futures in waiters.values():
            for fut in futures:
                if not fut.done():
                    fut.set_exception(Unavailable("broker unavailable: Redis connection lost"))
                    fut.exception()  # retrieved: the waiter may be gone already

    async def _read(self, pubsub: PubSub) -> None:
        loop = asyncio.get_running_loop()
        last_seen = loop.time()
        while True:
            message: dict[str, Any] | None = await pubsub.get_message(
                timeout=self._ping_interval)
            now = loop.time()
            if message is None:
                if now - last_seen > 3 * self._ping_interval:
                    raise ConnectionError("Redis pub/sub connection silent: no answer to pings")
                await pubsub.ping()
                continue
            last_seen = now
            kind = message.get("type")
            if kind == "message":
                self._on_message(message["channel"], message["data"])
            elif kind == "subscribe":
                self._confirm(message["channel"])

    def _confirm(self, topic: bytes) -> None:
        if topic not in self._wanted and topic not in self._fixed:
            # removed while the confirmation was in flight (or while subscribing again after
            # a reconnect, when remove could not send UNSUBSCRIBE): drop it now
            self._sent.discard(topic)
            pubsub = self._pubsub
            if pubsub is not None:
                pending: asyncio.Future[Any] = asyncio.ensure_future(pubsub.unsubscribe(topic))
                pending.add_done_callback(_ignore_failure)
            return
        self._confirmed.add(topic)
        resubscribed = topic in self._ever_confirmed
        self._ever_confirmed.add(topic)
        for fut in self._waiters.pop(topic, ()):
            if not fut.done():
                fut.set_result(None)
        self._on_subscribed(topic, resubscribed)


def _ignore_failure(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.debug("unsubscribe failed: %s", done.exception())
