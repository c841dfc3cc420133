"""The memory broker's own bounds: total history memory (oldest evicted first, across
channels) and no stored state for channels that were only read (issue 10, findings 1 and 7)."""

from __future__ import annotations

import time

from livehub.core.channels import ChannelOptions
from livehub.core.memory import ENTRY_OVERHEAD, MemoryBroker
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind

from .test_broker_contract import Recorder

OPTS = ChannelOptions(history_size=1000, history_ttl=600)
ENTRY = 1000 + ENTRY_OVERHEAD


async def test_total_history_memory_evicts_oldest_first_across_channels() -> None:
    broker = MemoryBroker(history_memory=10 * ENTRY)
    await broker.start(Recorder())
    first = await broker.publish("a", b"a" * 1000, PayloadKind.BINARY, options=OPTS)
    for i in range(30):
        await broker.publish("abc"[i % 3], b"x" * 1000, PayloadKind.BINARY, options=OPTS)
    assert broker.history_bytes <= 10 * ENTRY and broker.stored == 10
    assert broker.evictions == 21
    kept = {name: [p.position.offset for p in (await broker.history(name, options=OPTS))
                   .publications] for name in "abc"}
    # the 10 newest of 31 publications survive, whatever their channel
    assert sum(len(v) for v in kept.values()) == 10
    assert kept == {"a": [9, 10, 11], "b": [8, 9, 10], "c": [7, 8, 9, 10]}
    lost = await broker.history("a", options=OPTS, since=first)
    assert not lost.recovered  # announced with the usual reset
    ok = await broker.history("a", options=OPTS, since=StreamPosition(first.epoch, 8))
    assert ok.recovered and [p.position.offset for p in ok.publications] == [9, 10, 11]
    await broker.close()


async def test_eviction_fifo_stays_bounded_when_channels_trim_themselves() -> None:
    small = ChannelOptions(history_size=1, history_ttl=600)
    broker = MemoryBroker(history_memory=10**9)
    await broker.start(Recorder())
    for i in range(20_000):
        await broker.publish(f"c{i % 10}", b"x", PayloadKind.TEXT, options=small)
    assert broker.stored == 10
    assert len(broker._budget.order) <= 2 * broker.stored + 1024
    await broker.close()


async def test_reads_of_unknown_channels_store_nothing() -> None:
    broker = MemoryBroker()
    await broker.start(Recorder())
    tops = [(await broker.history(f"never{i}", options=OPTS, limit=0)).top
            for i in range(1000)]
    assert broker.channel_count() == 0
    assert all(top.offset == 0 for top in tops)
    again = await broker.history("never7", options=OPTS, since=tops[7])
    assert again.recovered and again.top == tops[7]
    # the first publication keeps the epoch a reader was given: its cursor resumes exactly
    pos = await broker.publish("never7", b"1", PayloadKind.TEXT, options=OPTS)
    assert pos == StreamPosition(tops[7].epoch, 1)
    res = await broker.history("never7", options=OPTS, since=tops[7])
    assert res.recovered and [p.data for p in res.publications] == [b"1"]
    assert broker.channel_count() == 1
    await broker.close()


async def test_a_forgotten_stream_never_comes_back_with_its_old_epoch() -> None:
    short = ChannelOptions(history_size=10, history_ttl=1)
    broker = MemoryBroker(meta_ttl=10)
    await broker.start(Recorder())
    await broker.subscribe("waiting")  # subscribed, never published: keeps its position
    waiting = (await broker.history("waiting", options=short, limit=0)).top
    old = await broker.publish("gone", b"1", PayloadKind.TEXT, options=short)
    broker.sweep(now=time.time() + 100)
    assert broker.channel_count() == 1  # "gone" forgotten, "waiting" kept at its position
    new = await broker.publish("gone", b"2", PayloadKind.TEXT, options=short)
    assert new.offset == 1 and new.epoch != old.epoch
    res = await broker.history("gone", options=short, since=old)
    assert not res.recovered
    pos = await broker.publish("waiting", b"w", PayloadKind.TEXT, options=short)
    assert pos == StreamPosition(waiting.epoch, 1)
    await broker.close()


async def test_a_namespace_budget_keeps_its_channels_from_pushing_others_out() -> None:
    """The public demo namespace (anonymous publishers) has its own budget: filling it evicts
    its own oldest publications, never those of other namespaces."""
    open_ns = ChannelOptions(history_size=1000, history_ttl=600,
                             namespace_history_bytes=5 * ENTRY)
    broker = MemoryBroker(history_memory=100 * ENTRY)
    await broker.start(Recorder())
    news = [await broker.publish("news:n", b"n" * 1000, PayloadKind.BINARY, options=OPTS)
            for _ in range(3)]
    for i in range(200):
        await broker.publish(f"chat:r{i}", b"c" * 1000, PayloadKind.BINARY, options=open_ns)
    assert broker.namespace_bytes("chat") <= 5 * ENTRY
    kept = (await broker.history("news:n", options=OPTS, since=StreamPosition(
        news[0].epoch, 0))).publications
    assert [p.position for p in kept] == news
    newest = [(await broker.history(f"chat:r{i}", options=open_ns)).publications
              for i in range(195, 200)]
    assert all(len(pubs) == 1 for pubs in newest)
    await broker.close()
