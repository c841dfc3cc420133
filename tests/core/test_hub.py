"""Hub fan-out and the resume merge, with a fake transport."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from livehub.codes import DisconnectInfo
from livehub.core.broker import Publication
from livehub.core.channels import ChannelOptions, Namespaces
from livehub.core.memory import MemoryBroker
from livehub.core.node import Node
from livehub.errors import BadChannel, UnknownNamespace
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind


class Fake:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self, info: DisconnectInfo) -> None:
        self.writes.append(b"CLOSED")


class TagVariant:
    """Encodes a publication as ``channel:offset:data``; counts how often it encodes."""

    def __init__(self) -> None:
        self.encodes = 0

    def encode(self, pub: Publication, positions: Mapping[str, StreamPosition]) -> bytes:
        self.encodes += 1
        return f"{pub.channel}:{pub.position.offset}:".encode() + pub.data

    def encode_reset(self, channels: Sequence[str],
                     positions: Mapping[str, StreamPosition]) -> bytes:
        return b"RESET " + ",".join(channels).encode()

    def encode_checkpoint(self, positions: Mapping[str, StreamPosition]) -> bytes:
        return b"AT " + ",".join(f"{c}={p.offset}" for c, p in sorted(positions.items())).encode()


NS = Namespaces(ChannelOptions(history_size=5), {"x": ChannelOptions()})


@pytest.fixture
async def node() -> Node:
    n = Node(MemoryBroker(), NS, release_delay=0.01)
    await n.start()
    return n


async def test_encoded_once_per_variant_and_shared(node: Node) -> None:
    variant = TagVariant()
    fakes = [Fake() for _ in range(50)]
    for f in fakes:
        await node.subscribe(f, variant, ["a"])
    before = variant.encodes
    await node.publish("a", b"hi", PayloadKind.TEXT)
    assert variant.encodes - before == 1
    last = [f.writes[-1] for f in fakes]
    assert all(w is last[0] for w in last)  # the very same bytes object
    assert last[0] == b"a:1:hi"


async def test_resume_replays_missed_then_live_without_duplicates(node: Node) -> None:
    v = TagVariant()
    for i in range(3):
        await node.publish("a", str(i).encode(), PayloadKind.TEXT)
    top = hub_pos = (await node.broker.history("a", options=NS.default, limit=0)).top
    since = {"a": StreamPosition(top.epoch, 1)}
    f = Fake()
    sub = await node.subscribe(f, v, ["a"], since=since)
    await node.publish("a", b"live", PayloadKind.TEXT)
    assert f.writes == [b"a:2:1", b"a:3:2", b"AT a=3", b"a:4:live"]
    assert sub.live and hub_pos.offset == 3


async def test_live_publications_during_history_read_are_merged(node: Node) -> None:
    """Publications arriving while history is read are buffered, deduplicated, merged."""
    v = TagVariant()
    await node.publish("a", b"0", PayloadKind.TEXT)
    epoch = (await node.broker.history("a", options=NS.default, limit=0)).top.epoch
    broker = node.broker
    real_history = broker.history

    async def slow_history(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        # a publication lands after the subscription is registered, before history returns
        await node.publish("a", b"during", PayloadKind.TEXT)
        return await real_history(*args, **kwargs)  # type: ignore[arg-type]

    broker.history = slow_history  # type: ignore[method-assign]
    f = Fake()
    await node.subscribe(f, v, ["a"], since={"a": StreamPosition(epoch, 0)})
    broker.history = real_history  # type: ignore[method-assign]
    await node.publish("a", b"after", PayloadKind.TEXT)
    assert f.writes == [b"a:1:0", b"a:2:during", b"AT a=2", b"a:3:after"]


async def test_reset_when_history_cannot_cover(node: Node) -> None:
    v = TagVariant()
    for i in range(10):
        await node.publish("a", str(i).encode(), PayloadKind.TEXT)
    epoch = (await node.broker.history("a", options=NS.default, limit=0)).top.epoch
    f = Fake()
    sub = await node.subscribe(f, v, ["a"], since={"a": StreamPosition(epoch, 1)})
    assert sub.reset_channels == ("a",)
    assert f.writes == [b"RESET a", b"AT a=10"]
    f2 = Fake()
    await node.subscribe(f2, v, ["a"], since={"a": StreamPosition("otherepoch", 10)})
    assert f2.writes[0] == b"RESET a"


async def test_multi_channel_resume(node: Node) -> None:
    v = TagVariant()
    pa = await node.publish("a", b"a1", PayloadKind.TEXT)
    pb = await node.publish("b", b"b1", PayloadKind.TEXT)
    await node.publish("b", b"b2", PayloadKind.TEXT)
    await node.publish("a", b"a2", PayloadKind.TEXT)
    f = Fake()
    since = {"a": pa, "b": StreamPosition(pb.epoch, 0)}
    await node.subscribe(f, v, ["a", "b"], since=since)
    assert f.writes == [b"b:1:b1", b"b:2:b2", b"a:2:a2", b"AT a=2,b=2"]


async def test_unsubscribe_stops_delivery_and_releases(node: Node) -> None:
    v = TagVariant()
    f = Fake()
    sub = await node.subscribe(f, v, ["a"])
    assert node.hub.subscriber_count("a") == 1
    node.unsubscribe(sub)
    node.unsubscribe(sub)  # idempotent
    await node.publish("a", b"x", PayloadKind.TEXT)
    assert b"a:1:x" not in f.writes
    await asyncio.sleep(0.05)
    assert node.hub.channel_count() == 0


async def test_bad_channels_are_refused_before_registration(node: Node) -> None:
    with pytest.raises(BadChannel):
        await node.subscribe(Fake(), TagVariant(), ["bad name"])
    with pytest.raises(UnknownNamespace):
        await node.subscribe(Fake(), TagVariant(), ["nope:1"])
    assert node.hub.channel_count() == 0


async def test_publish_nowait_uses_the_same_path(node: Node) -> None:
    v = TagVariant()
    f = Fake()
    await node.subscribe(f, v, ["x:1"])
    node.publish_nowait("x:1", b"p", PayloadKind.TEXT, options=NS.options("x:1"))
    assert f.writes[-1] == b"x:1:1:p"


async def test_failed_broker_subscribe_is_retried_by_the_next_subscriber(node: Node) -> None:
    from livehub.errors import Unavailable

    broker = node.broker
    real = broker.subscribe
    calls = 0

    async def flaky(channel: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Unavailable("broker down")
        await real(channel)

    broker.subscribe = flaky  # type: ignore[method-assign]
    with pytest.raises(Unavailable):
        await node.subscribe(Fake(), TagVariant(), ["a"])
    f = Fake()
    await node.subscribe(f, TagVariant(), ["a"])
    await node.publish("a", b"ok", PayloadKind.TEXT)
    assert f.writes[-1] == b"a:1:ok" and calls == 2


class SilentVariant(TagVariant):
    """A wire that cannot carry a reset notice (like raw WebSocket messages)."""

    def encode_reset(self, channels: Sequence[str],
                     positions: Mapping[str, StreamPosition]) -> bytes:
        return b""


def _pub(channel: str, epoch: str, offset: int, data: bytes) -> Publication:
    return Publication(channel, data, PayloadKind.TEXT, StreamPosition(epoch, offset))


async def test_new_epoch_in_live_delivery_is_announced_not_skipped(node: Node) -> None:
    """A broker whose store lost the stream delivers a new epoch: subscribers are told."""
    v = TagVariant()
    f = Fake()
    await node.subscribe(f, v, ["a"])
    await node.publish("a", b"old", PayloadKind.TEXT)
    node.hub.on_publication(_pub("a", "newepoch", 3, b"new"))
    assert f.writes[-3:] == [b"a:1:old", b"RESET a", b"a:3:new"]
    assert node.hub.position("a") == StreamPosition("newepoch", 3)
    assert node.hub.resets == 1
    node.hub.on_publication(_pub("a", "newepoch", 4, b"next"))
    assert f.writes[-1] == b"a:4:next" and node.hub.resets == 1


async def test_gap_in_live_delivery_is_announced(node: Node) -> None:
    v = TagVariant()
    f = Fake()
    await node.subscribe(f, v, ["a"])
    p1 = await node.publish("a", b"1", PayloadKind.TEXT)
    node.hub.on_publication(_pub("a", p1.epoch, 5, b"5"))
    assert f.writes[-2:] == [b"RESET a", b"a:5:5"]
    node.hub.on_publication(_pub("a", p1.epoch, 4, b"old"))  # behind: a duplicate, dropped
    assert f.writes[-1] == b"a:5:5"


async def test_lost_continuity_closes_subscribers_that_cannot_be_told(node: Node) -> None:
    class Closing(Fake):
        def close(self, info: DisconnectInfo) -> None:
            super().close(info)
            self.code = info.code
            node.unsubscribe(sub)  # as a real connection does when it closes

    f = Closing()
    sub = await node.subscribe(f, SilentVariant(), ["a"])
    await node.publish("a", b"1", PayloadKind.TEXT)
    node.hub.on_publication(_pub("a", "newepoch", 1, b"x"))
    assert f.writes == [b"AT a=0", b"a:1:1", b"CLOSED"] and f.code == 3010


async def test_new_epoch_seen_by_a_new_subscriber_resets_the_others(node: Node) -> None:
    """History showing another epoch than the hub's position: live subscribers are told."""
    v = TagVariant()
    f = Fake()
    await node.subscribe(f, v, ["a"])
    await node.publish("a", b"1", PayloadKind.TEXT)
    node.hub._positions["a"] = StreamPosition("stale", 7)  # as if the store lost the stream
    f2 = Fake()
    sub2 = await node.subscribe(f2, v, ["a"])
    assert f.writes[-1] == b"RESET a"
    assert sub2.live and f2.writes == [b"AT a=1"]
    await node.publish("a", b"2", PayloadKind.TEXT)
    assert f.writes[-1] == f2.writes[-1] == b"a:2:2"


async def test_catch_up_is_bracketed_for_subscribers_with_a_bounded_buffer(node: Node) -> None:
    """The hub writes a catch-up between ``begin_catch_up`` and ``end_catch_up`` of a
    subscriber that has them (``Outgoing``), on every protocol; live traffic is outside."""

    class Bounded(Fake):
        def begin_catch_up(self) -> None:
            self.writes.append(b"BEGIN")

        def end_catch_up(self) -> None:
            self.writes.append(b"END")

    first = await node.publish("a", b"1", PayloadKind.TEXT)
    await node.publish("a", b"2", PayloadKind.TEXT)
    f = Bounded()
    await node.subscribe(f, TagVariant(), ["a"], since={"a": first})
    await node.publish("a", b"3", PayloadKind.TEXT)
    assert f.writes == [b"BEGIN", b"a:2:2", b"AT a=2", b"END", b"a:3:3"]


async def test_recent_replays_the_newest_at_their_positions_then_live(node: Node) -> None:
    """``recent``: the newest N retained publications, then live; a position in ``since``
    wins over it (a reconnection never replays them twice)."""
    v = TagVariant()
    for i in range(4):
        await node.publish("a", str(i).encode(), PayloadKind.TEXT)
    f = Fake()
    sub = await node.subscribe(f, v, ["a"], recent=2)
    await node.publish("a", b"live", PayloadKind.TEXT)
    assert f.writes == [b"a:3:2", b"a:4:3", b"AT a=4", b"a:5:live"]
    assert sub.live
    again = Fake()  # a client that had seen up to offset 4
    await node.subscribe(again, v, ["a"], since={"a": sub.positions["a"]}, recent=2)
    assert again.writes == [b"a:5:live", b"AT a=5"]


class OddVariant(TagVariant):
    """A filtering wire (like Mercure's selectors): odd offsets only, ``b""`` for the rest."""

    def encode(self, pub: Publication, positions: Mapping[str, StreamPosition]) -> bytes:
        return super().encode(pub, positions) if pub.position.offset % 2 else b""


async def test_an_empty_encoding_is_written_to_nobody_live_or_in_a_catch_up(
        node: Node) -> None:
    variant = OddVariant()
    live = [Fake() for _ in range(3)]
    for f in live:
        await node.subscribe(f, variant, ["a"])
    for i in range(4):
        await node.publish("a", f"m{i}".encode(), PayloadKind.TEXT)
    late = Fake()  # replays offsets 1..4 from history, then goes live
    await node.subscribe(late, variant, ["a"], since={"a": StreamPosition(
        node.hub.position("a").epoch, 0)})
    await node.publish("a", b"m4", PayloadKind.TEXT)
    for f in [*live, late]:
        assert b"" not in f.writes
        assert [w for w in f.writes if w.startswith(b"a:")] == [b"a:1:m0", b"a:3:m2", b"a:5:m4"]
