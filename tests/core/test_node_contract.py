"""The Node contract (livehub.core.node.Node docstring), over every broker implementation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from livehub.core.broker import Broker
from livehub.core.channels import ChannelOptions, Namespaces
from livehub.core.limits import Limits
from livehub.core.node import Node
from livehub.core.presence import ClientInfo
from livehub.errors import BadChannel, UnknownNamespace
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind

from .conftest import BrokerFactory
from .test_hub import Fake, TagVariant

NS = Namespaces(ChannelOptions(history_size=50, history_ttl=60),
                {"p": ChannelOptions(presence=True, join_leave=True)})


async def until(done: Callable[[], bool], timeout: float = 5) -> None:
    """Wait for delivery across the broker (Redis delivers on a later loop turn)."""
    async with asyncio.timeout(timeout):
        while not done():
            await asyncio.sleep(0.005)


async def make_node(broker_factory: BrokerFactory, **kwargs: object) -> Node:
    broker: Broker = await broker_factory()
    node = Node(broker, NS, release_delay=0, **kwargs)  # type: ignore[arg-type]
    await node.start()
    return node


async def test_release_and_subscribe_in_one_loop_turn(broker_factory: BrokerFactory) -> None:
    """Issue 8 item 2: a subscribe right after the hub released the channel (before the
    broker unsubscribe ran) must still receive publications."""
    node = await make_node(broker_factory)
    variant = TagVariant()
    first = await node.subscribe(Fake(), variant, ["a"])
    node.unsubscribe(first)
    while node.hub.channel_count():  # the release runs; its broker unsubscribe is pending
        await asyncio.sleep(0)
    fake = Fake()
    await node.subscribe(fake, variant, ["a"])
    await node.publish("a", b"hello", PayloadKind.TEXT)
    await until(lambda: b"a:1:hello" in fake.writes)


async def test_release_and_subscribe_again_and_again(broker_factory: BrokerFactory) -> None:
    """Subscribe and leave in every order around releases; the last subscriber receives."""
    node = await make_node(broker_factory)
    variant = TagVariant()
    for turn in range(5):
        sub = await node.subscribe(Fake(), variant, ["a"])
        node.unsubscribe(sub)
        for _ in range(turn):
            await asyncio.sleep(0)
    fake = Fake()
    await node.subscribe(fake, variant, ["a"])
    position = await node.publish("a", b"last", PayloadKind.TEXT)
    await until(lambda: f"a:{position.offset}:last".encode() in fake.writes)


async def test_publish_history_and_top(broker_factory: BrokerFactory) -> None:
    node = await make_node(broker_factory)
    assert (await node.top("h")).offset == 0
    positions = [await node.publish("h", str(i).encode(), PayloadKind.TEXT, event="e")
                 for i in range(3)]
    assert await node.top("h") == positions[-1]
    result = await node.history("h", since=positions[0])
    assert result.recovered and [p.data for p in result.publications] == [b"1", b"2"]
    assert [p.event for p in result.publications] == ["e", "e"]
    await node.remove_history("h")
    after = await node.history("h", since=positions[0])
    assert not after.recovered and after.top == positions[-1]


async def test_subscribe_resumes_and_follows_live(broker_factory: BrokerFactory) -> None:
    node = await make_node(broker_factory)
    first = await node.publish("r", b"1", PayloadKind.TEXT)
    await node.publish("r", b"2", PayloadKind.TEXT)
    fake = Fake()
    sub = await node.subscribe(fake, TagVariant(), ["r"], since={"r": first})
    await node.publish("r", b"3", PayloadKind.TEXT)
    await until(lambda: b"r:3:3" in fake.writes)
    assert fake.writes == [b"r:2:2", b"AT r=2", b"r:3:3"]
    assert sub.reset_channels == ()


async def test_resume_beyond_the_budget_is_a_reset(broker_factory: BrokerFactory) -> None:
    """Issue 10 item 2: a catch-up larger than the resume budget is refused with a reset
    and replays nothing."""
    node = await make_node(broker_factory, limits=Limits(resume_max_publications=3))
    start = await node.publish("b", b"0", PayloadKind.TEXT)
    for i in range(1, 6):
        await node.publish("b", str(i).encode(), PayloadKind.TEXT)
    fake = Fake()
    sub = await node.subscribe(fake, TagVariant(), ["b"], since={"b": start})
    assert sub.reset_channels == ("b",)
    assert fake.writes == [b"RESET b", b"AT b=6"]
    assert node.hub.resumes_over_budget == 1
    fits = Fake()
    await node.subscribe(fits, TagVariant(), ["b"], since={"b": StreamPosition(start.epoch, 3)})
    assert fits.writes == [b"b:4:3", b"b:5:4", b"b:6:5", b"AT b=6"]


async def test_resume_byte_budget(broker_factory: BrokerFactory) -> None:
    node = await make_node(broker_factory, limits=Limits(resume_max_bytes=1000))
    start = await node.publish("big", b"x", PayloadKind.TEXT)
    await node.publish("big", b"y" * 600, PayloadKind.TEXT)
    await node.publish("big", b"z" * 600, PayloadKind.TEXT)
    fake = Fake()
    sub = await node.subscribe(fake, TagVariant(), ["big"], since={"big": start})
    assert sub.reset_channels == ("big",) and fake.writes == [b"RESET big", b"AT big=3"]


async def test_publish_nowait_keeps_call_order(broker_factory: BrokerFactory) -> None:
    node = await make_node(broker_factory)
    fake = Fake()
    await node.subscribe(fake, TagVariant(), ["o"])
    options = node.options("o")
    for i in range(50):
        node.publish_nowait("o", str(i).encode(), PayloadKind.TEXT, options=options)
    await until(lambda: len(fake.writes) == 51)
    assert fake.writes[1:] == [f"o:{i + 1}:{i}".encode() for i in range(50)]


async def test_join_leave_and_control_reach_listeners(broker_factory: BrokerFactory) -> None:
    node = await make_node(broker_factory)
    events: list[tuple[str, str, str]] = []
    controls: list[bytes] = []

    class Listener:
        def on_join(self, channel: str, info: ClientInfo) -> None:
            events.append(("join", channel, info.client))

        def on_leave(self, channel: str, info: ClientInfo) -> None:
            events.append(("leave", channel, info.client))

    node.add_join_leave_listener(Listener())
    node.add_control_listener(controls.append)
    await node.subscribe(Fake(), TagVariant(), ["p:1"])  # join/leave reach subscribed nodes
    info = ClientInfo("c1", "u1")
    await node.publish_join("p:1", info)
    await node.publish_leave("p:1", info)
    await node.publish_control(b"ctl")
    await until(lambda: len(events) == 2 and controls == [b"ctl"])
    assert events == [("join", "p:1", "c1"), ("leave", "p:1", "c1")]


async def test_presence_through_the_node(broker_factory: BrokerFactory) -> None:
    node = await make_node(broker_factory)
    await node.add_presence("p:2", ClientInfo("c1", "u1"), ttl=60)
    await node.add_presence("p:2", ClientInfo("c2", "u1"), ttl=60)
    assert set(await node.presence_of("p:2")) == {"c1", "c2"}
    stats = await node.presence_stats("p:2")
    assert (stats.num_clients, stats.num_users) == (2, 1)
    await node.remove_presence("p:2", "c1")
    assert set(await node.presence_of("p:2")) == {"c2"}


async def test_bad_channels_are_refused_before_anything_is_stored(
        broker_factory: BrokerFactory) -> None:
    node = await make_node(broker_factory)
    with pytest.raises(BadChannel):
        await node.publish("bad name", b"x", PayloadKind.TEXT)
    with pytest.raises(UnknownNamespace):
        await node.history("nope:1")
    with pytest.raises(UnknownNamespace):
        await node.subscribe(Fake(), TagVariant(), ["nope:1"])
    assert node.hub.channel_count() == 0


async def test_journal_gets_every_publication_once(broker_factory: BrokerFactory) -> None:
    """Publish, broadcast and publish_nowait of a journaled namespace append one entry each
    to the journal (in publish order), none for other namespaces or the journal itself."""
    from livehub.core.journal import Journal, decode_entry, encode_entry

    node = await make_node(broker_factory)
    journal = Journal("$journal", frozenset({""}))
    node.add_journal(journal)
    await node.publish("a", b"one", PayloadKind.TEXT, event="e")
    await node.publish("p:x", b"not journaled", PayloadKind.TEXT)
    await node.broadcast(["b", "c"], b"\x00\x01", PayloadKind.BINARY)
    node.publish_nowait("a", b'{"k":1}', PayloadKind.JSON, options=node.options("a"))
    await until(lambda: len(node._tasks) == 0)
    await node.publish("a", b"own entry", PayloadKind.TEXT, journal=False)
    await node.append(journal, encode_entry("a", b"own entry", PayloadKind.TEXT,
                                            entry_id="x1", meta={"m": 1}))
    entries = [decode_entry(p.data) for p in (await node.history("$journal")).publications]
    assert [(e.channel, e.data, e.kind) for e in entries[:1]] == [
        ("a", b"one", PayloadKind.TEXT)]
    assert entries[0].event == "e"
    assert sorted(e.channel for e in entries[1:3]) == ["b", "c"]
    assert entries[1].data == b"\x00\x01" and entries[1].kind is PayloadKind.BINARY
    assert (entries[3].data, entries[3].kind) == (b'{"k":1}', PayloadKind.JSON)
    assert (entries[4].entry_id, entries[4].meta) == ("x1", {"m": 1})
    assert len(entries) == 5
