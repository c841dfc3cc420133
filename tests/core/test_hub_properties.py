"""The hub's promise under any interleaving (hypothesis): every subscriber, fresh or resuming,
gets each publication once, in order, from where it starts; a gap only right after a reset;
and, still subscribed at the end, it has everything up to the newest.  Releases and
re-subscriptions of the channel happen in between (issue 8 item 2)."""

from __future__ import annotations

import asyncio

from hypothesis import example, given, settings
from hypothesis import strategies as st

from livehub.core.channels import ChannelOptions, Namespaces
from livehub.core.memory import MemoryBroker
from livehub.core.node import Node
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind

from .test_hub import Fake, TagVariant

OPS = st.lists(st.tuples(st.sampled_from(["pub", "sub", "resume", "unsub", "turn"]),
                         st.integers(0, 30)), max_size=40)


def check(writes: list[bytes], since: StreamPosition | None, top: int, live: bool) -> None:
    """The writes of one subscriber (``TagVariant``: ``a:offset:data``, ``RESET a``,
    ``AT a=offset``) keep the promise."""
    last = since.offset if since is not None else None
    reset = False
    for data in writes:
        if data == b"RESET a":
            reset = True
            continue
        if data.startswith(b"AT a="):
            offset = int(data[5:])
            assert last is None or reset or offset == last, writes
            last, reset = offset, False
            continue
        offset = int(data.split(b":")[1])
        assert last is None or offset == last + 1 or (reset and offset > last), writes
        last, reset = offset, False
    if live:
        assert last == top, (writes, top)


async def scenario(ops: list[tuple[str, int]]) -> None:
    node = Node(MemoryBroker(), Namespaces(ChannelOptions(history_size=5)), release_delay=0)
    await node.start()
    variant = TagVariant()
    positions: list[StreamPosition] = []
    subs: list[tuple[Fake, StreamPosition | None, object]] = []
    gone: set[int] = set()
    for op, n in ops:
        if op == "pub":
            positions.append(await node.publish("a", str(n).encode(), PayloadKind.TEXT))
        elif op in ("sub", "resume"):
            since = positions[n % len(positions)] if op == "resume" and positions else None
            fake = Fake()
            sub = await node.subscribe(fake, variant, ["a"],
                                       since=None if since is None else {"a": since})
            subs.append((fake, since, sub))
        elif op == "unsub" and subs:
            i = n % len(subs)
            node.unsubscribe(subs[i][2])  # type: ignore[arg-type]
            gone.add(i)
        else:
            await asyncio.sleep(0)
    await node.publish("a", b"end", PayloadKind.TEXT)
    top = (await node.top("a")).offset
    for i, (fake, since, _) in enumerate(subs):
        check(fake.writes, since, top, i not in gone)
    await node.close()


@settings(max_examples=150, deadline=None)
@given(OPS)
@example([("sub", 0), ("unsub", 0), ("turn", 0), ("turn", 0), ("sub", 0)])  # the release race
def test_every_subscriber_gets_everything_once_in_order(ops: list[tuple[str, int]]) -> None:
    asyncio.run(scenario(ops))
