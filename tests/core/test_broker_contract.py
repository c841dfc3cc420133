"""The Broker contract (livehub.core.broker.Broker docstring), for every implementation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from livehub.core.broker import Publication
from livehub.core.channels import ChannelOptions
from livehub.core.presence import ClientInfo
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind

from .conftest import BrokerFactory

OPTS = ChannelOptions(history_size=10, history_ttl=60)


class Recorder:
    """A ``BrokerHandler`` that records everything it is given."""

    def __init__(self) -> None:
        self.pubs: list[Publication] = []
        self.presence: list[tuple[str, str, ClientInfo]] = []
        self.controls: list[bytes] = []
        self.event = asyncio.Event()

    def on_publication(self, pub: Publication) -> None:
        self.pubs.append(pub)
        self.event.set()

    def on_join(self, channel: str, info: ClientInfo) -> None:
        self.presence.append(("join", channel, info))
        self.event.set()

    def on_leave(self, channel: str, info: ClientInfo) -> None:
        self.presence.append(("leave", channel, info))
        self.event.set()

    def on_control(self, data: bytes) -> None:
        self.controls.append(data)
        self.event.set()

    async def until(self, done: Callable[[], bool], timeout: float = 5) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self.event.clear()
                await self.event.wait()

    async def wait_for(self, n: int, timeout: float = 5) -> None:
        await self.until(lambda: len(self.pubs) >= n, timeout)


async def test_offsets_are_consecutive_and_positions_returned(
        broker_factory: BrokerFactory) -> None:
    broker = await broker_factory()
    rec = Recorder()
    await broker.start(rec)
    positions = [await broker.publish("c", str(i).encode(), PayloadKind.TEXT, options=OPTS)
                 for i in range(5)]
    assert [p.offset for p in positions] == [1, 2, 3, 4, 5]
    assert len({p.epoch for p in positions}) == 1


async def test_delivery_in_order_only_to_subscribed_channels(
        broker_factory: BrokerFactory) -> None:
    broker = await broker_factory()
    rec = Recorder()
    await broker.start(rec)
    await broker.subscribe("a")
    for i in range(20):
        await broker.publish("a", str(i).encode(), PayloadKind.TEXT, options=OPTS)
        await broker.publish("b", b"x", PayloadKind.TEXT, options=OPTS)
    await rec.wait_for(20)
    assert [p.data for p in rec.pubs] == [str(i).encode() for i in range(20)]
    assert [p.position.offset for p in rec.pubs] == list(range(1, 21))
    assert {p.channel for p in rec.pubs} == {"a"}
    await broker.unsubscribe("a")
    await broker.publish("a", b"after", PayloadKind.TEXT, options=OPTS)
    await asyncio.sleep(0.05)
    assert len(rec.pubs) == 20


async def test_history_is_bounded_and_resumable(broker_factory: BrokerFactory) -> None:
    broker = await broker_factory()
    await broker.start(Recorder())
    opts = ChannelOptions(history_size=3, history_ttl=60)
    for i in range(1, 6):
        await broker.publish("h", str(i).encode(), PayloadKind.JSON, options=opts,
                             event="e" if i == 5 else None)
    full = await broker.history("h", options=opts)
    assert [p.data for p in full.publications] == [b"3", b"4", b"5"]
    assert full.publications[-1].event == "e"
    assert full.publications[0].kind is PayloadKind.JSON
    top = full.top
    assert top.offset == 5
    ok = await broker.history("h", options=opts, since=StreamPosition(top.epoch, 2))
    assert ok.recovered and [p.position.offset for p in ok.publications] == [3, 4, 5]
    gap = await broker.history("h", options=opts, since=StreamPosition(top.epoch, 1))
    assert not gap.recovered
    same = await broker.history("h", options=opts, since=top)
    assert same.recovered and list(same.publications) == []
    other = await broker.history("h", options=opts, since=StreamPosition("zzzz", 5))
    assert not other.recovered
    future = await broker.history("h", options=opts, since=StreamPosition(top.epoch, 99))
    assert not future.recovered
    none = await broker.history("h", options=opts, limit=0)
    assert list(none.publications) == [] and none.top == top


async def test_history_expires(broker_factory: BrokerFactory) -> None:
    broker = await broker_factory()
    await broker.start(Recorder())
    opts = ChannelOptions(history_size=10, history_ttl=0.2)
    first = await broker.publish("t", b"1", PayloadKind.TEXT, options=opts)
    await asyncio.sleep(0.3)
    await broker.publish("t", b"2", PayloadKind.TEXT, options=opts)
    res = await broker.history("t", options=opts, since=StreamPosition(first.epoch, 0))
    assert not res.recovered
    assert [p.data for p in res.publications] == [b"2"]


async def test_no_history_still_positions(broker_factory: BrokerFactory) -> None:
    broker = await broker_factory()
    await broker.start(Recorder())
    opts = ChannelOptions(history_size=0)
    p1 = await broker.publish("n", b"1", PayloadKind.TEXT, options=opts)
    res = await broker.history("n", options=opts, since=p1)
    assert res.recovered and res.top == p1
    await broker.publish("n", b"2", PayloadKind.TEXT, options=opts)
    res = await broker.history("n", options=opts, since=p1)
    assert not res.recovered


async def test_remove_history_keeps_positions(broker_factory: BrokerFactory) -> None:
    broker = await broker_factory()
    await broker.start(Recorder())
    p1 = await broker.publish("r", b"1", PayloadKind.TEXT, options=OPTS)
    await broker.remove_history("r")
    p2 = await broker.publish("r", b"2", PayloadKind.TEXT, options=OPTS)
    assert (p2.epoch, p2.offset) == (p1.epoch, 2)
    res = await broker.history("r", options=OPTS)
    assert [p.data for p in res.publications] == [b"2"]


async def test_publications_carry_kind_event_time_and_info(
        broker_factory: BrokerFactory) -> None:
    broker = await broker_factory()
    rec = Recorder()
    await broker.start(rec)
    await broker.subscribe("m")
    info = ClientInfo("c1", "u1", b'{"name":"Ann"}', None)
    pos = await broker.publish("m", b"\x00\xff:", PayloadKind.BINARY, options=OPTS,
                               event="tick", info=info)
    await rec.wait_for(1)
    (pub,) = rec.pubs
    assert (pub.channel, pub.data, pub.kind, pub.position) == ("m", b"\x00\xff:",
                                                                PayloadKind.BINARY, pos)
    assert pub.event == "tick" and pub.info == info
    assert abs(pub.time - time.time()) < 5
    (stored,) = (await broker.history("m", options=OPTS)).publications
    assert stored == pub


async def test_join_and_leave_reach_subscribed_nodes(broker_factory: BrokerFactory) -> None:
    broker = await broker_factory()
    rec = Recorder()
    await broker.start(rec)
    await broker.subscribe("room")
    ann = ClientInfo("c1", "ann", b'{"x":1}', b'{"y":2}')
    bob = ClientInfo("c2", "", None, None)
    await broker.publish_join("elsewhere", ann)
    await broker.publish_join("room", ann)
    await broker.publish_join("room", bob)
    await broker.publish_leave("room", ann)
    await rec.until(lambda: len(rec.presence) >= 3)
    assert rec.presence == [("join", "room", ann), ("join", "room", bob),
                            ("leave", "room", ann)]
    await broker.unsubscribe("room")
    await broker.publish_leave("room", bob)
    await asyncio.sleep(0.05)
    assert len(rec.presence) == 3


async def test_control_reaches_every_node_including_the_sender(
        broker_factory: BrokerFactory) -> None:
    broker = await broker_factory()
    rec = Recorder()
    await broker.start(rec)
    await broker.publish_control(b"disconnect user 42")
    await broker.publish_control(b"\x00binary")
    await rec.until(lambda: len(rec.controls) >= 2)
    assert rec.controls == [b"disconnect user 42", b"\x00binary"]


async def test_history_limits_and_tail(broker_factory: BrokerFactory) -> None:
    broker = await broker_factory()
    await broker.start(Recorder())
    for i in range(1, 8):
        await broker.publish("l", str(i).encode(), PayloadKind.TEXT, options=OPTS)
    tail = await broker.history("l", options=OPTS, limit=2)
    assert [p.position.offset for p in tail.publications] == [6, 7] and tail.recovered
    top = tail.top
    head = await broker.history("l", options=OPTS, since=StreamPosition(top.epoch, 2),
                                limit=3)
    assert [p.position.offset for p in head.publications] == [3, 4, 5] and head.recovered
    zero = await broker.history("l", options=OPTS, since=StreamPosition(top.epoch, 2),
                                limit=0)
    assert list(zero.publications) == [] and zero.recovered


async def test_fresh_stream_has_a_stable_epoch(broker_factory: BrokerFactory) -> None:
    """Reading a stream that has no publication yet fixes its epoch: the first publication
    continues it, so a cursor taken before any publication resumes without a reset."""
    broker = await broker_factory()
    await broker.start(Recorder())
    empty = await broker.history("fresh", options=OPTS, limit=0)
    assert empty.top.offset == 0
    pos = await broker.publish("fresh", b"1", PayloadKind.TEXT, options=OPTS)
    assert pos == StreamPosition(empty.top.epoch, 1)
    res = await broker.history("fresh", options=OPTS, since=empty.top)
    assert res.recovered and [p.data for p in res.publications] == [b"1"]


async def test_history_is_bounded_in_bytes(broker_factory: BrokerFactory) -> None:
    """``history_bytes``: the oldest publications go first; resuming from before them is not
    recoverable (the usual reset), from after them it is; positions continue."""
    opts = ChannelOptions(history_size=100, history_ttl=60, history_bytes=10_000)
    broker = await broker_factory()
    await broker.start(Recorder())
    for i in range(1, 11):
        await broker.publish("bytes", bytes([48 + i]) * 3000, PayloadKind.BINARY, options=opts)
    kept = await broker.history("bytes", options=opts)
    offsets = [p.position.offset for p in kept.publications]
    assert 1 <= len(offsets) <= 3 and offsets == list(range(11 - len(offsets), 11))
    epoch = kept.top.epoch
    lost = await broker.history("bytes", options=opts, since=StreamPosition(epoch, 1))
    assert not lost.recovered
    ok = await broker.history("bytes", options=opts, since=StreamPosition(epoch, offsets[0] - 1))
    assert ok.recovered and [p.position.offset for p in ok.publications] == offsets
    # a publication over the channel's budget on its own is positioned but not kept
    big = await broker.publish("bytes", b"x" * 20_000, PayloadKind.BINARY, options=opts)
    assert big == StreamPosition(epoch, 11)
    after = await broker.history("bytes", options=opts, since=StreamPosition(epoch, 10))
    assert not after.recovered and list(after.publications) == []
