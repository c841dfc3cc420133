"""The slow-consumer rule of ``Outgoing`` (docs/limits.md), over a transport that never sends.

The end-to-end cases (real sockets and clients) are in ``test_slow_consumer.py``; here the
transport is a stand-in whose unsent byte count the test controls, so each clause of the rule
is checked exactly.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from livehub.codes import Disconnect, DisconnectInfo
from livehub.transports.outgoing import Flusher, Outgoing

MAX = 1000


class HeldTransport:
    """Keeps everything written (a peer that never reads); ``sent`` drains it."""

    def __init__(self, *, reading: bool = False, failing: bool = False) -> None:
        self.reading = reading
        """A peer that reads everything at once: nothing is ever held."""
        self.failing = failing
        """Writes raise (a bug below the connection)."""
        self.held = 0
        self.writes: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        if self.failing:
            raise RuntimeError("bug in write")
        self.writes.append(data)
        if not self.reading:
            self.held += len(data)

    def get_write_buffer_size(self) -> int:
        return self.held

    def sent(self, n: int) -> None:
        self.held -= n

    def get_extra_info(self, name: str) -> Any:
        return None

    def abort(self) -> None:
        self.aborted = True


class Conn(Outgoing):
    __slots__ = ("goodbyes",)

    def __init__(self, transport: HeldTransport) -> None:
        super().__init__(transport, Flusher(asyncio.get_running_loop()), MAX)  # type: ignore[arg-type]
        self.goodbyes: list[DisconnectInfo] = []

    def goodbye(self, info: DisconnectInfo) -> None:
        self.goodbyes.append(info)

    def heartbeat(self, now: float) -> None:
        pass


class Broken(Conn):
    """A connection with a bug in its goodbye."""

    __slots__ = ()

    def goodbye(self, info: DisconnectInfo) -> None:
        raise RuntimeError("bug")


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


@pytest.mark.parametrize("where", ["goodbye", "write"])
async def test_one_failing_connection_does_not_stop_the_flush(
        caplog: pytest.LogCaptureFixture, where: str) -> None:
    fine_before, fine_after = HeldTransport(reading=True), HeldTransport(reading=True)
    broken = HeldTransport(failing=where == "write")
    conns = [Conn(fine_before), Broken(broken), Conn(fine_after)]
    for conn in conns:  # the flusher of the first: all three in one flush
        conn._flusher = conns[0]._flusher
    for data in (b"a" * 2 * MAX, b"b" * 10, b"c" * 2 * MAX):  # the broken one is slow
        for conn in conns:
            conn.write(data)
        await _turn()
    assert broken.aborted and conns[1].closed
    expected = [b"a" * 2 * MAX, b"b" * 10, b"c" * 2 * MAX]
    assert fine_before.writes == fine_after.writes == expected
    assert not fine_before.aborted and not fine_after.aborted
    failures = [r for r in caplog.records if "failed while" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None
    conns[0].write(b"more")
    conns[2].write(b"more")
    await _turn()
    assert fine_before.writes[-1] == fine_after.writes[-1] == b"more"


def test_outgoing_is_abstract() -> None:
    with pytest.raises(TypeError, match="goodbye"):
        Outgoing(HeldTransport(), None, MAX)  # type: ignore[abstract, arg-type]
