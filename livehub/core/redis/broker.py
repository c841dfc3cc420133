"""The Redis broker: history, positions and cross-node delivery through one Redis server.

Theory of operation
-------------------
*Publish.*  One Lua script (``redis_scripts.PUBLISH``) increments the channel's offset in its
meta hash, appends the publication to the channel's history stream (bounded by
``history_size`` and ``history_bytes``, oldest first; entries older than ``history_ttl``
trimmed) and ``PUBLISH``es the same bytes
to the channel's topic, atomically.  A meta hash that Redis lost (restart, flush, expiry) is
created again with a new epoch and the old history is dropped with it.

*Order of publications.*  Every command this broker sends (publish scripts, join/leave,
control) goes through one FIFO queue drained by one sender task, which pipelines up to
``max_batch`` commands per round trip on one connection.  Calls reach Redis in the order
``publish`` was called: ``Node.publish_nowait`` starts one task per client message, tasks start
in creation order (the event loop's ready queue is FIFO), and ``publish`` enqueues before its
first ``await``.  So one connection's messages keep their order across the cluster.

*Live delivery.*  ``subscribe`` adds the channel's two topics (publications, join/leave) to the
node's single pub/sub connection (``PubSubLink``) and returns once Redis confirmed them.
Messages of one channel arrive in offset order (the script publishes inside the atomic step and
Redis keeps order per connection).  Each channel remembers the position it delivered last; a
message that is not the next one (``recovery.step``: a reconnect lost some, or the epoch
changed) starts a *fill*:
later messages queue behind it while the history after the last delivered position (or from
the start of the new epoch) is read, then history and queue are delivered in offset order with
duplicates dropped.  After a reconnect every channel is filled the same way as soon as its
subscription is confirmed again.  Whatever history cannot cover reaches the hub as a gap or an
epoch change, which the hub announces to its subscribers as a reset: never a silent skip.

*Failures.*  Commands fail fast with ``Unavailable`` (HTTP 503) while Redis is unreachable;
redis-py's retries are off (a publish is not idempotent).  A command Redis refuses (an error
reply) or history that cannot be decoded raises ``ServerError``: no Redis or codec exception
leaves this module.  A fill that cannot read history is logged in one line and delivers its
queue alone, so the hub announces the gap (a reset).  The pub/sub connection reconnects by
itself with backoff; local subscribers stay connected meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError

from livehub.core.broker import BrokerHandler, HistoryResult, Publication
from livehub.core.channels import ChannelOptions
from livehub.core.presence import ClientInfo
from livehub.core.recovery import Step, fill_from, step, unseen
from livehub.core.redis.codec import (
    CodecError,
    Keys,
    decode_join_leave,
    decode_message,
    encode_body,
    encode_join_leave,
)
from livehub.core.redis.pubsub import PubSubLink
from livehub.core.redis.scripts import HISTORY, PUBLISH
from livehub.errors import ServerError, Unavailable
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind

log = logging.getLogger(__name__)

UNAVAILABLE = "broker unavailable: cannot reach Redis, try again later"
EMPTY_META_TTL = 600
"""Seconds the meta hash of a channel that was only read (never published to, not subscribed
on the reading node) is kept: a cursor from ``/poll`` without one stays valid for the next
poll, and reading many channel names costs Redis little, briefly (issue 10, finding 7)."""
FILL_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0)
"""Seconds between attempts to fill a gap from history while Redis is unreachable."""


def new_epoch() -> str:
    return secrets.token_hex(4)


def ttl_ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000)) if seconds > 0 else 0


@dataclass(eq=False, slots=True)
class _Chan:
    """Delivery state of one subscribed channel."""

    name: str
    topics: tuple[bytes, bytes]
    last: StreamPosition | None = None
    queue: list[Publication] | None = None
    """Not None while a fill runs: live publications wait here."""


@dataclass(eq=False, slots=True)
class _Command:
    args: tuple[Any, ...]
    future: asyncio.Future[Any]


class RedisBroker:
    """A ``Broker`` on Redis (see the module docstring).  Not an ``ImmediatePublisher``."""

    def __init__(self, client: Redis, *, prefix: str = "livehub", meta_ttl: float = 86400.0,
                 max_batch: int = 512, max_queue: int = 100_000, ping_interval: float = 5.0,
                 connect_wait: float = 2.0, subscribe_timeout: float = 5.0) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self._meta_ttl = meta_ttl
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._connect_wait = connect_wait
        self._handler: BrokerHandler | None = None
        self._chans: dict[str, _Chan] = {}
        self._topics: dict[bytes, tuple[_Chan, bool]] = {}
        self._queue: deque[_Command] = deque()
        self._inflight: list[_Command] = []
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._fills: set[asyncio.Task[None]] = set()
        self._history = client.register_script(HISTORY)
        self._publish_sha = self.client.register_script(PUBLISH).sha
        self._link = PubSubLink(client, fixed=(self.keys.control,),
                                on_message=self._on_message, on_subscribed=self._on_subscribed,
                                on_reconnected=self._on_reconnected,
                                ping_interval=ping_interval, subscribe_timeout=subscribe_timeout)
        self.fills = 0
        """Fills started (a gap in live delivery or a re-subscription after a reconnect)."""

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, handler: BrokerHandler) -> None:
        if self._sender is not None:
            raise RuntimeError("broker already started")
        self._handler = handler
        self._sender = asyncio.get_running_loop().create_task(self._send_forever())
        if not await self._link.start(self._connect_wait):
            log.warning("Redis is not reachable yet; publishing fails with 503 until it is, "
                        "the pub/sub connection keeps retrying")

    async def close(self) -> None:
        await self._link.close()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        for task in list(self._fills):
            task.cancel()
        for cmd in (*self._inflight, *self._queue):
            if not cmd.future.done():
                cmd.future.set_exception(Unavailable("broker closed"))
        self._inflight = []
        self._queue.clear()
        await self.client.aclose()

    @property
    def connected(self) -> bool:
        """Whether the pub/sub connection is up."""
        return self._link.connected

    async def wait_connected(self, timeout: float) -> bool:
        return await self._link.wait_connected(timeout)

    @property
    def reconnects(self) -> int:
        """Times the pub/sub connection was re-established after the first (metrics)."""
        return max(0, self._link.connects - 1)

    # -- subscriptions -------------------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        """Subscribe (idempotent); a subscribe that raises leaves nothing subscribed."""
        chan = self._chans.get(channel)
        if chan is None:
            chan = _Chan(channel, (self.keys.pub_topic(channel),
                                   self.keys.join_leave_topic(channel)))
            self._chans[channel] = chan
            self._topics[chan.topics[0]] = (chan, True)
            self._topics[chan.topics[1]] = (chan, False)
        try:
            await self._link.add(chan.topics)
        except BaseException:
            await self.unsubscribe(channel)
            raise

    async def unsubscribe(self, channel: str) -> None:
        chan = self._chans.pop(channel, None)
        if chan is None:
            return
        for topic in chan.topics:
            self._topics.pop(topic, None)
        await self._link.remove(chan.topics)

    # -- publishing ----------------------------------------------------------------------------

    def _enqueue(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command for the sender; synchronous, so call order is send order."""
        if len(self._queue) >= self._max_queue:
            raise Unavailable("broker unavailable: too many publications waiting for Redis")
        if self._sender is None:
            raise Unavailable("broker not started")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Command(args, fut))
        self._wake.set()
        return fut

    async def publish(self, channel: str, data: bytes, kind: PayloadKind, *,
                      options: ChannelOptions, event: str | None = None,
                      info: ClientInfo | None = None) -> StreamPosition:
        history_ms = ttl_ms(options.history_ttl)
        fut = self._enqueue(
            "EVALSHA", self._publish_sha, 2, self.keys.meta(channel), self.keys.history(channel),
            encode_body(data, kind, event, info), options.history_size, history_ms,
            self._meta_seconds(options), self.keys.pub_topic(channel), new_epoch(),
            options.history_bytes)
        reply = await fut
        return StreamPosition(_text(reply[1]), int(reply[0]))

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        await self._enqueue("PUBLISH", self.keys.join_leave_topic(channel),
                            encode_join_leave(True, info))

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        await self._enqueue("PUBLISH", self.keys.join_leave_topic(channel),
                            encode_join_leave(False, info))

    async def publish_control(self, data: bytes) -> None:
        await self._enqueue("PUBLISH", self.keys.control, data)

    def _meta_seconds(self, options: ChannelOptions) -> int:
        if self._meta_ttl <= 0:
            return 0
        return max(math.ceil(self._meta_ttl), math.ceil(options.history_ttl) + 1)

    async def _send_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._inflight = [self._queue.popleft()
                                          for _ in range(min(self._max_batch, len(self._queue)))]
                try:
                    replies = await self._execute([cmd.args for cmd in batch])
                except (RedisError, OSError) as exc:
                    log.warning("Redis command batch failed: %s", exc)
                    for cmd in batch:
                        if not cmd.future.done():
                            cmd.future.set_exception(Unavailable(UNAVAILABLE))
                    continue
                for cmd, reply in zip(batch, replies, strict=True):
                    if cmd.future.done():
                        continue
                    if isinstance(reply, Exception):
                        log.error("Redis refused a command: %s", reply)
                        cmd.future.set_exception(ServerError(f"broker error: {reply}"))
                    else:
                        cmd.future.set_result(reply)

    async def _execute(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Run commands in one pipeline; load the publish script once if Redis lost it."""
        replies = await self._pipeline(commands)
        redo = [i for i, r in enumerate(replies) if _is_noscript(r)]
        if redo:
            await self.client.script_load(PUBLISH)
            again = await self._pipeline([commands[i] for i in redo])
            for i, reply in zip(redo, again, strict=True):
                replies[i] = reply
        return replies

    async def _pipeline(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for args in commands:
            pipe.execute_command(*args)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    # -- history -------------------------------------------------------------------------------

    async def history(self, channel: str, *, options: ChannelOptions,
                      since: StreamPosition | None = None, limit: int | None = None
                      ) -> HistoryResult:
        chan = self._chans.get(channel)
        result = await self._read(channel, since, limit, size=options.history_size,
                                  history_ms=ttl_ms(options.history_ttl),
                                  history_bytes=options.history_bytes,
                                  meta_seconds=self._meta_seconds(options),
                                  empty_seconds=0 if chan is not None else EMPTY_META_TTL)
        if chan is not None and chan.last is None and chan.queue is None:
            # Nothing delivered live yet: whoever subscribed has seen up to the top, so from
            # here on a gap in live delivery (a reconnect) is detected and filled.
            chan.last = result.top
        return result

    async def _read(self, channel: str, since: StreamPosition | None, limit: int | None, *,
                    size: int, history_ms: int, meta_seconds: int,
                    history_bytes: int = 0, empty_seconds: int = 0) -> HistoryResult:
        """Run the history script (``size`` -1: read without trimming; ``empty_seconds``: TTL
        of a meta hash the read creates, 0 for ``meta_seconds``)."""
        args: list[str | int] = [size, history_ms, meta_seconds, new_epoch(),
                "" if since is None else since.epoch, 0 if since is None else since.offset,
                -1 if limit is None else limit, history_bytes, empty_seconds]
        keys = [self.keys.meta(channel), self.keys.history(channel)]
        try:
            try:
                reply = await self._history(keys=keys, args=args)
            except RedisConnectionError:
                # a pooled connection that Redis closed: reads are safe to send again, once
                reply = await self._history(keys=keys, args=args)
        except ResponseError as exc:
            log.error("Redis refused a history read of %r: %s", channel, exc)
            raise ServerError(f"broker error: {exc}") from None
        except (RedisError, OSError) as exc:
            log.warning("Redis history read failed: %s", exc)
            raise Unavailable(UNAVAILABLE) from None
        epoch, top_offset, messages, first = reply
        top = StreamPosition(_text(epoch), int(top_offset))
        try:
            pubs = [decode_message(channel, m) for m in messages]
        except CodecError as exc:
            log.error("malformed history of channel %r: %s", channel, exc)
            raise ServerError(f"malformed history of channel {channel!r}") from None
        if since is None:
            return HistoryResult(pubs, top, True)
        if since.epoch != top.epoch or since.offset > top.offset:
            return HistoryResult([], top, False)
        first = int(first)
        recovered = first == since.offset + 1 if first else since.offset == top.offset
        return HistoryResult(pubs, top, recovered)

    async def remove_history(self, channel: str) -> None:
        try:
            await self.client.delete(self.keys.history(channel))
        except (RedisError, OSError):
            raise Unavailable(UNAVAILABLE) from None

    # -- live delivery -------------------------------------------------------------------------

    def _on_message(self, topic: bytes, data: bytes) -> None:
        handler = self._handler
        if handler is None:
            return
        if topic == self.keys.control:
            handler.on_control(data)
            return
        found = self._topics.get(topic)
        if found is None or not self._link.wants(topic):
            return
        chan, is_pub = found
        try:
            if is_pub:
                self._offer(chan, decode_message(chan.name, data))
            else:
                join, info = decode_join_leave(data)
                if join:
                    handler.on_join(chan.name, info)
                else:
                    handler.on_leave(chan.name, info)
        except CodecError as exc:
            log.error("dropped a malformed message on %r: %s", topic, exc)

    def _offer(self, chan: _Chan, pub: Publication) -> None:
        if chan.queue is not None:
            chan.queue.append(pub)
            return
        last = chan.last
        after = step(last, pub.position)
        if after is Step.NEXT:
            self._deliver(chan, pub)
        elif after is Step.GAP:
            assert last is not None
            self._start_fill(chan, fill_from(last, pub.position), [pub])
        # Step.SEEN: already delivered

    def _deliver(self, chan: _Chan, pub: Publication) -> None:
        chan.last = pub.position
        assert self._handler is not None
        self._handler.on_publication(pub)

    async def _on_reconnected(self) -> None:
        """Redis came back: pooled command connections are likely dead, drop the idle ones
        so the next publish or fill does not fail on one."""
        try:
            await self.client.connection_pool.disconnect(inuse_connections=False)
        except (RedisError, OSError) as exc:
            log.debug("dropping pooled connections failed: %s", exc)

    def _on_subscribed(self, topic: bytes, resubscribed: bool) -> None:
        found = self._topics.get(topic)
        if found is None or not found[1] or not resubscribed:
            return
        chan = found[0]
        if chan.last is not None and chan.queue is None:
            self._start_fill(chan, chan.last, [])

    def _start_fill(self, chan: _Chan, since: StreamPosition,
                    queued: list[Publication]) -> None:
        chan.queue = queued
        self.fills += 1
        task = asyncio.get_running_loop().create_task(self._fill(chan, since))
        self._fills.add(task)
        task.add_done_callback(self._fill_done)

    def _fill_done(self, task: asyncio.Task[None]) -> None:
        self._fills.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("gap fill failed: %r", task.exception())

    async def _fill(self, chan: _Chan, since: StreamPosition) -> None:
        """Deliver what live delivery missed after ``since``, then the queued messages.

        A fill that cannot read history delivers the queue alone: the hub sees the gap and
        tells its subscribers they missed publications (a reset), never a silent skip.
        """
        found: list[Publication] = []
        try:
            for delay in (*FILL_DELAYS, None):
                try:
                    found = await self._missed(chan.name, since)
                    break
                except Unavailable as exc:
                    if delay is None:
                        log.error("could not fill the gap of channel %r from history (%s): "
                                  "local subscribers will be told they missed publications",
                                  chan.name, exc.message)
                        break
                    await asyncio.sleep(delay)
                    if self._chans.get(chan.name) is not chan:
                        return
        except Exception as exc:  # noqa: BLE001 - whatever failed, the gap is announced below
            log.error("could not fill the gap of channel %r from history (%s): local "
                      "subscribers will be told they missed publications", chan.name, exc)
        finally:
            queued, chan.queue = chan.queue or [], None
        if self._chans.get(chan.name) is not chan:
            return  # unsubscribed meanwhile
        for pub in unseen(chan.last, (*found, *queued)):
            self._deliver(chan, pub)


    async def _missed(self, channel: str, since: StreamPosition) -> list[Publication]:
        """Publications after ``since``; if the stream was lost and started again, those of
        the new epoch from its start."""
        meta = math.ceil(self._meta_ttl) if self._meta_ttl > 0 else 0
        result = await self._read(channel, since, None, size=-1, history_ms=0,
                                  meta_seconds=meta)
        found = list(result.publications)
        if result.top.epoch != since.epoch and result.top.offset > 0:
            newer = await self._read(channel, StreamPosition(result.top.epoch, 0), None,
                                     size=-1, history_ms=0, meta_seconds=meta)
            found.extend(newer.publications)
        return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _is_noscript(reply: object) -> bool:
    return isinstance(reply, NoScriptError) or (
        isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT"))
