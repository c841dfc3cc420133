"""What only the Redis broker has to show: several nodes, publish order, and Redis failures.

Tests that restart Redis get their own ``redis-server``; the others share the session's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from livehub.core.broker import Broker
from livehub.core.channels import ChannelOptions, Namespaces
from livehub.core.hub import Hub
from livehub.core.node import Node
from livehub.core.presence import ClientInfo
from livehub.core.redis.client import RedisBroker, RedisOptions, connect
from livehub.core.redis.codec import encode_body
from livehub.errors import LivehubError, ServerError, Unavailable
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind

from ..redis_server import RedisServer
from .test_broker_contract import Recorder
from .test_hub import Fake, TagVariant

pytestmark = pytest.mark.redis
OPTS = ChannelOptions(history_size=100, history_ttl=60)
NodeFactory = Callable[..., Awaitable[RedisBroker]]


@pytest.fixture
async def nodes(redis_server: RedisServer) -> AsyncIterator[NodeFactory]:
    """Makes RedisBroker nodes on one Redis and prefix, started with their own ``Recorder``
    unless ``start`` is False (to start them with a Hub)."""
    made: list[RedisBroker] = []
    prefix = f"t{uuid.uuid4().hex[:10]}"

    async def make(server: RedisServer = redis_server, start: bool = True,
                   timeout: float = 1.0) -> RedisBroker:
        broker = RedisBroker(connect(RedisOptions(url=server.url, timeout=timeout)),
                             prefix=prefix, ping_interval=1.0)
        broker.recorder = Recorder()  # type: ignore[attr-defined]
        made.append(broker)
        if start:
            await broker.start(broker.recorder)  # type: ignore[attr-defined]
        return broker

    yield make
    for broker in made:
        await broker.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server  # type: ignore[misc]
    server.stop()


def rec(broker: Broker) -> Recorder:
    recorder: Recorder = broker.recorder  # type: ignore[attr-defined]
    return recorder


async def test_publication_reaches_every_subscribed_node(nodes: NodeFactory) -> None:
    a, b, c = await nodes(), await nodes(), await nodes()
    await a.subscribe("news")
    await b.subscribe("news")
    for i in range(10):
        await c.publish("news", str(i).encode(), PayloadKind.TEXT, options=OPTS)
    await rec(a).wait_for(10)
    await rec(b).wait_for(10)
    assert [p.data for p in rec(a).pubs] == [p.data for p in rec(b).pubs] == [
        str(i).encode() for i in range(10)]
    assert rec(c).pubs == []
    ann = ClientInfo("c1", "ann")
    await c.publish_join("news", ann)
    await c.publish_control(b"hello nodes")
    for node in (a, b, c):
        await rec(node).until(lambda n=node: len(rec(n).controls) == 1)
    await rec(a).until(lambda: len(rec(a).presence) == 1)
    assert rec(a).presence == [("join", "news", ann)] and rec(c).presence == []


async def test_one_subscription_per_channel_released_on_unsubscribe(
        nodes: NodeFactory) -> None:
    a = await nodes()
    await a.subscribe("x")
    await a.subscribe("x")
    admin: Redis = a.client
    topic = a.keys.pub_topic("x")
    assert dict(await admin.pubsub_numsub(topic)) == {topic: 1}
    await a.unsubscribe("x")
    for _ in range(50):
        if dict(await admin.pubsub_numsub(topic)) == {topic: 0}:
            break
        await asyncio.sleep(0.01)
    assert dict(await admin.pubsub_numsub(topic)) == {topic: 0}


async def test_publish_nowait_keeps_the_order_of_one_connection(
        redis_server: RedisServer) -> None:
    """``Node.publish_nowait`` starts a task per message; they must reach Redis in order."""
    broker = RedisBroker(connect(RedisOptions(url=redis_server.url)),
                         prefix=f"t{uuid.uuid4().hex[:10]}", max_batch=7)
    core = Node(broker, Namespaces(OPTS))
    await core.start()
    fake = Fake()
    await core.subscribe(fake, TagVariant(), ["chat"])
    for i in range(300):
        core.publish_nowait("chat", str(i).encode(), PayloadKind.TEXT, options=OPTS)
    async with asyncio.timeout(5):
        while len(fake.writes) < 301:
            await asyncio.sleep(0.01)
    assert fake.writes[1:] == [f"chat:{i + 1}:{i}".encode() for i in range(300)]
    await broker.close()


async def test_missed_messages_are_filled_after_the_pubsub_connection_drops(
        nodes: NodeFactory) -> None:
    """Publications made while a node's pub/sub connection is down arrive after it is back,
    in order and once each, from history."""
    a, b = await nodes(), await nodes()
    await a.subscribe("f")
    await b.publish("f", b"0", PayloadKind.TEXT, options=OPTS)
    await rec(a).wait_for(1)
    await b.client.client_kill_filter(_type="pubsub")
    for i in range(1, 6):
        await b.publish("f", str(i).encode(), PayloadKind.TEXT, options=OPTS)
    await rec(a).wait_for(6)
    await b.publish("f", b"6", PayloadKind.TEXT, options=OPTS)
    await rec(a).wait_for(7)
    await asyncio.sleep(0.05)
    assert [p.position.offset for p in rec(a).pubs] == list(range(1, 8))
    assert [p.data for p in rec(a).pubs] == [str(i).encode() for i in range(7)]
    assert a.fills >= 1  # the re-subscription was followed by a history fill


async def test_redis_down_fails_fast_and_recovers_with_a_new_epoch(
        nodes: NodeFactory, own_redis: RedisServer) -> None:
    a = await nodes(own_redis)
    b = await nodes(own_redis)
    await a.subscribe("r")
    before = await b.publish("r", b"before", PayloadKind.TEXT, options=OPTS)
    await rec(a).wait_for(1)
    own_redis.kill()
    started = time.monotonic()
    with pytest.raises(Unavailable) as exc_info:
        await b.publish("r", b"lost", PayloadKind.TEXT, options=OPTS)
    assert time.monotonic() - started < 1.0
    assert exc_info.value.http_status == 503 and "Redis" in exc_info.value.message
    with pytest.raises(Unavailable):
        await b.history("r", options=OPTS, since=before)
    async with asyncio.timeout(5):
        while a.connected:
            await asyncio.sleep(0.01)
    with pytest.raises(Unavailable):
        await a.subscribe("new-while-down")
    assert not a._link.wants(a.keys.pub_topic("new-while-down"))  # nothing left behind
    own_redis.start()
    assert await a.wait_connected(10)
    after = await b.publish("r", b"after", PayloadKind.TEXT, options=OPTS)
    assert after.epoch != before.epoch and after.offset == 1
    await rec(a).wait_for(2)
    assert [p.data for p in rec(a).pubs] == [b"before", b"after"]
    res = await b.history("r", options=OPTS, since=before)
    assert not res.recovered and res.top == after
    await a.subscribe("new-after")


async def test_hub_over_redis_announces_a_lost_stream(
        nodes: NodeFactory, own_redis: RedisServer) -> None:
    """Subscribers of a node are told (reset) when Redis lost the stream, never skipped."""
    node = await nodes(own_redis, start=False)
    core = Node(node, Namespaces(OPTS))
    await core.start()
    hub = core.hub
    fake = Fake()
    await core.subscribe(fake, TagVariant(), ["s"])
    await core.publish("s", b"1", PayloadKind.TEXT)
    async with asyncio.timeout(5):  # delivered live before Redis goes away
        while b"s:1:1" not in fake.writes:
            await asyncio.sleep(0.01)
    own_redis.kill()
    own_redis.start()
    assert await node.wait_connected(10)
    async with asyncio.timeout(5):
        while True:  # the pub/sub link may not have noticed yet: publish until delivered
            await asyncio.sleep(0.05)
            try:
                await core.publish("s", b"2", PayloadKind.TEXT)
            except Unavailable:
                continue
            break
        while b"s:1:2" not in fake.writes:
            await asyncio.sleep(0.01)
    assert fake.writes[:2] == [b"AT s=0", b"s:1:1"]
    assert fake.writes[2] == b"RESET s" and fake.writes[-1] == b"s:1:2"
    assert hub.resets >= 1


async def test_history_entries_expire_by_age_while_publishing(nodes: NodeFactory) -> None:
    node = await nodes()
    opts = ChannelOptions(history_size=100, history_ttl=0.3)
    first = await node.publish("age", b"1", PayloadKind.TEXT, options=opts)
    await node.publish("age", b"2", PayloadKind.TEXT, options=opts)
    await asyncio.sleep(0.4)
    await node.publish("age", b"3", PayloadKind.TEXT, options=opts)
    admin: Redis = node.client
    assert await admin.xlen(node.keys.history("age")) == 1
    res = await node.history("age", options=opts, since=StreamPosition(first.epoch, 0))
    assert not res.recovered and [p.data for p in res.publications] == [b"3"]
    ttl = await admin.pttl(node.keys.history("age"))
    assert 0 < ttl <= 300


async def test_frozen_redis_fails_within_the_timeout(
        nodes: NodeFactory, own_redis: RedisServer) -> None:
    """A Redis that accepts connections but never answers (stopped process, partition)."""
    node = await nodes(own_redis)
    await node.publish("z", b"1", PayloadKind.TEXT, options=OPTS)
    assert own_redis.proc is not None
    os.kill(own_redis.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await node.publish("z", b"2", PayloadKind.TEXT, options=OPTS)
        assert time.monotonic() - started < 2.5  # redis_timeout is 1 s here
    finally:
        os.kill(own_redis.proc.pid, signal.SIGCONT)
    async with asyncio.timeout(10):
        while True:
            try:
                pos = await node.publish("z", b"3", PayloadKind.TEXT, options=OPTS)
                break
            except Unavailable:
                await asyncio.sleep(0.1)
    assert pos.offset >= 2  # "2" may be stored after all: a timed-out publish is unknown


async def test_quiet_channel_is_filled_after_a_reconnect(nodes: NodeFactory) -> None:
    """Nothing delivered live yet when the pub/sub connection drops: what was published
    meanwhile still arrives, without a reset (the hub's history read set the starting point)."""
    node, other = await nodes(start=False), await nodes()
    hub = Hub(node, Namespaces(OPTS))
    await node.start(hub)
    fake = Fake()
    await hub.subscribe(fake, TagVariant(), ["quiet"])
    node._link._min_backoff = 0.3  # publish below while the node is surely disconnected
    connects = node._link.connects
    await other.client.client_kill_filter(_type="pubsub")
    async with asyncio.timeout(5):
        while node.connected:
            await asyncio.sleep(0.005)
    for i in (1, 2, 3):
        await other.publish("quiet", str(i).encode(), PayloadKind.TEXT, options=OPTS)
    assert node._link.connects == connects
    async with asyncio.timeout(5):
        while len(fake.writes) < 4:
            await asyncio.sleep(0.01)
    assert fake.writes == [b"AT quiet=0", b"quiet:1:1", b"quiet:2:2", b"quiet:3:3"]
    assert hub.resets == 0


async def test_a_burst_of_history_reads_waits_for_pooled_connections(
        nodes: NodeFactory) -> None:
    """More concurrent commands than pooled connections queue instead of failing (many
    clients subscribing at once each read history).  The wait for a pooled connection is
    bounded by the client's timeout: a generous one here, so that a loaded machine measures
    the queueing, not its own slowness (it timed out at 1 s under load)."""
    node = await nodes(timeout=10.0)
    opts = ChannelOptions(history_size=10, history_ttl=60)
    await node.publish("burst", b"x", PayloadKind.TEXT, options=opts)
    results = await asyncio.gather(*(node.history("burst", options=opts) for _ in range(300)))
    assert all(len(r.publications) == 1 for r in results)


async def test_reads_of_unpublished_channels_keep_state_briefly(nodes: NodeFactory) -> None:
    """A channel only read by a node that is not subscribed to it (``/poll`` without a cursor)
    gets a short-lived meta hash, not one for ``meta_ttl`` (24 h); a subscribed read or a
    publication makes it last."""
    from livehub.core.redis.broker import EMPTY_META_TTL

    node = await nodes()
    client = node.client
    tops = [(await node.history(f"read{i}", options=OPTS, limit=0)).top for i in range(200)]
    ttls = {await client.ttl(node.keys.meta(f"read{i}")) for i in range(200)}
    assert min(ttls) > 0 and max(ttls) <= EMPTY_META_TTL
    await node.history("read1", options=OPTS, limit=0)  # read again: still short
    assert await client.ttl(node.keys.meta("read1")) <= EMPTY_META_TTL
    # the reader's cursor stays valid for the first publication, which makes the stream last
    pos = await node.publish("read1", b"1", PayloadKind.TEXT, options=OPTS)
    assert pos == StreamPosition(tops[1].epoch, 1)
    assert await client.ttl(node.keys.meta("read1")) > EMPTY_META_TTL
    res = await node.history("read1", options=OPTS, since=tops[1])
    assert res.recovered and [p.data for p in res.publications] == [b"1"]
    # a subscribed node's read keeps the stream for meta_ttl: its subscribers hold positions
    await node.subscribe("watched")
    await node.history("watched", options=OPTS, limit=0)
    assert await client.ttl(node.keys.meta("watched")) > EMPTY_META_TTL
    await node.history("watched", options=OPTS, limit=0)
    assert await client.ttl(node.keys.meta("watched")) > EMPTY_META_TTL


async def test_a_fill_that_fails_is_logged_once_and_announced_as_a_reset(
        nodes: NodeFactory, caplog: pytest.LogCaptureFixture) -> None:
    """A gap in live delivery whose history read fails (here Redis refuses it: the history
    key has the wrong type) is logged in one line and reaches subscribers as a reset, never
    a silent stop (issue 8 item 3: the fill task's error used to be lost with the queue)."""
    node = await nodes(start=False)
    core = Node(node, Namespaces(OPTS))
    await core.start()
    fake = Fake()
    await core.subscribe(fake, TagVariant(), ["g"])
    first = await core.publish("g", b"1", PayloadKind.TEXT)
    async with asyncio.timeout(5):
        while b"g:1:1" not in fake.writes:
            await asyncio.sleep(0.01)
    await node.client.delete(node.keys.history("g"))
    await node.client.set(node.keys.history("g"), b"not a stream")
    gap = f"3:{first.epoch}:{int(time.time() * 1000)}:".encode() + encode_body(
        b"3", PayloadKind.TEXT, None, None)
    await node.client.publish(node.keys.pub_topic("g"), gap)
    async with asyncio.timeout(5):
        while b"g:3:3" not in fake.writes:
            await asyncio.sleep(0.01)
    assert fake.writes[-2:] == [b"RESET g", b"g:3:3"]
    failures = [r for r in caplog.records if "could not fill the gap" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is None
    assert "\n" not in failures[0].getMessage()


async def test_broker_errors_surface_as_server_errors(nodes: NodeFactory) -> None:
    """A history read that Redis refuses, or whose entries cannot be decoded, raises
    ``ServerError`` (a ``LivehubError``: endpoints answer it with a code) from history and
    from subscribe, and the failed subscribe leaves nothing registered (issue 8 item 3)."""
    node = await nodes(start=False)
    core = Node(node, Namespaces(OPTS), release_delay=0)
    await core.start()
    first = await core.publish("w", b"1", PayloadKind.TEXT)
    await node.client.xadd(node.keys.history("w"), {"t": 0, "p": b"garbage"}, id="2-0")
    with pytest.raises(ServerError):
        await core.history("w", since=StreamPosition(first.epoch, 0))
    with pytest.raises(ServerError):
        await core.subscribe(Fake(), TagVariant(), ["w"],
                             since={"w": StreamPosition(first.epoch, 0)})
    assert core.hub.subscriber_count("w") == 0
    await node.client.delete(node.keys.history("w"))
    await node.client.set(node.keys.history("w"), b"not a stream")
    with pytest.raises(ServerError) as refused:
        await core.history("w", since=first)
    assert refused.value.http_status == 500 and isinstance(refused.value, LivehubError)


async def test_client_publications_failing_while_redis_is_down_log_a_bounded_number_of_lines(
        own_redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    """Each client message is a task; with Redis down each one fails.  The log gets a few lines
    per 10 s, not one per message (issue 10, finding 5)."""
    broker = RedisBroker(connect(RedisOptions(url=own_redis.url, timeout=1.0)),
                         prefix=f"t{uuid.uuid4().hex[:10]}")
    core = Node(broker, Namespaces(OPTS))
    await core.start()
    own_redis.kill()
    with caplog.at_level(logging.ERROR, "livehub.core.node"):
        for i in range(300):
            core.publish_nowait("chat", str(i).encode(), PayloadKind.TEXT, options=OPTS)
        async with asyncio.timeout(10):
            while core._tasks:
                await asyncio.sleep(0.01)
    failed = [r for r in caplog.records if "client publication failed" in r.getMessage()]
    assert 1 <= len(failed) <= 10
    await broker.close()


async def test_undecodable_presence_is_a_server_error(redis_server: RedisServer) -> None:
    from livehub.core.redis.client import RedisPresence

    client = connect(RedisOptions(url=redis_server.url))
    presence = RedisPresence(client, prefix=f"t{uuid.uuid4().hex[:10]}")
    try:
        await presence.add("p", ClientInfo("c1", "u1"), ttl=60)
        await client.hset(presence.keys.presence("p"), "c1", b"\xff")
        with pytest.raises(ServerError):
            await presence.presence("p")
    finally:
        await client.aclose()
