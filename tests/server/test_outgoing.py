"""The slow-consumer rule of ``Outgoing`` (docs/limits.md), over a transport that never sends.

The end-to-end cases (real sockets and clients) are in ``test_slow_consumer.py``; here the
transport is a stand-in whose unsent byte count the test controls, so each clause of the rule
is checked exactly.
"""

from __future__ import annotations

import asyncio
from typing import Any

from livehub.codes import Disconnect, DisconnectInfo
from livehub.transports.outgoing import Flusher, Outgoing

MAX = 1000


class HeldTransport:
    """Keeps everything written (a peer that never reads); ``sent`` drains it."""

    def __init__(self) -> None:
        self.held = 0
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.held += len(data)

    def get_write_buffer_size(self) -> int:
        return self.held

    def sent(self, n: int) -> None:
        self.held -= n

    def get_extra_info(self, name: str) -> Any:
        return None


class Conn(Outgoing):
    __slots__ = ("goodbyes",)

    def __init__(self, transport: HeldTransport) -> None:
        super().__init__(transport, Flusher(asyncio.get_running_loop()), MAX)  # type: ignore[arg-type]
        self.goodbyes: list[DisconnectInfo] = []

    def goodbye(self, info: DisconnectInfo) -> None:
        self.goodbyes.append(info)


async def _turn() -> None:
    """Let the loop run the flush (and any goodbye) scheduled by the writes."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_one_message_of_any_size_is_held() -> None:
    t = HeldTransport()
    conn = Conn(t)
    conn.write(b"x" * 50 * MAX)
    await _turn()
    assert conn.goodbyes == [] and t.held == 50 * MAX
    conn.write(b"y" * (MAX - 10))  # behind the large one: within max_buffer
    await _turn()
    assert conn.goodbyes == []
    conn.write(b"z" * 20)  # now more than max_buffer besides the largest message
    await _turn()
    assert conn.goodbyes == [Disconnect.SLOW]


async def test_large_message_queued_behind_small_ones_in_one_turn() -> None:
    t = HeldTransport()
    conn = Conn(t)
    conn.write(b"a" * 100)
    conn.write(b"b" * 5 * MAX)  # the queue minus its largest message is 100 bytes
    conn.write(b"c" * 100)
    await _turn()
    assert conn.goodbyes == [] and t.writes == [b"a" * 100 + b"b" * 5 * MAX + b"c" * 100]


async def test_queue_over_max_buffer_besides_its_largest_overflows() -> None:
    t = HeldTransport()
    conn = Conn(t)
    for _ in range(12):
        conn.write(b"m" * 100)
    await _turn()
    assert conn.goodbyes == [Disconnect.SLOW]
    assert t.writes == []  # the queue was dropped: the client resumes from before it


async def test_allowance_ends_when_the_transport_drains() -> None:
    t = HeldTransport()
    conn = Conn(t)
    conn.write(b"x" * 5 * MAX)
    await _turn()
    t.sent(5 * MAX)  # the peer read the large message
    conn.write(b"y" * 10)
    await _turn()
    # back to max_buffer alone: what the transport holds now may not exceed it
    conn.write(b"z" * (MAX + 1))
    await _turn()
    assert conn.goodbyes == []  # a single message again: held
    conn.write(b"w" * MAX)
    await _turn()
    assert conn.goodbyes == [Disconnect.SLOW]


async def test_catch_up_is_not_limited() -> None:
    t = HeldTransport()
    conn = Conn(t)
    conn.begin_catch_up()
    for _ in range(30):
        conn.write(b"r" * 100)
    conn.end_catch_up()
    await _turn()
    assert conn.goodbyes == [] and t.held == 3000
    conn.write(b"live")  # the replay is the allowance until the transport drains
    await _turn()
    assert conn.goodbyes == []
