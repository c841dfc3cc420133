"""The Broker contract (livehub.core.broker.Broker docstring), for every implementation."""

from __future__ import annotations

import asyncio

from livehub.core.broker import Publication
from livehub.core.channels import ChannelOptions
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind

from .conftest import BrokerFactory

OPTS = ChannelOptions(history_size=10, history_ttl=60)


class Recorder:
    def __init__(self) -> None:
        self.pubs: list[Publication] = []
        self.event = asyncio.Event()

    def on_publication(self, pub: Publication) -> None:
        self.pubs.append(pub)
        self.event.set()

    async def wait_for(self, n: int) -> None:
        async with asyncio.timeout(5):
            while len(self.pubs) < n:
                self.event.clear()
                await self.event.wait()


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
