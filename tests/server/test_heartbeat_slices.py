"""The heartbeat tick goes ``HEARTBEAT_SLICE`` connections per loop turn (issue 15): it never
holds the loop for every connection at once, every open connection still gets its heartbeat,
and a connection closed while the tick waits is not ticked."""

from __future__ import annotations

import asyncio

import pytest

from livehub.codes import DisconnectInfo
from livehub.core.channels import Namespaces
from livehub.core.memory import MemoryBroker
from livehub.core.node import Node
from livehub.transports import context
from livehub.transports.context import ServerContext, ServerSettings


class Turns:
    """Counts loop turns: a callback that schedules itself again runs once per iteration."""

    def __init__(self) -> None:
        self.turn = 0
        self.stopped = False
        self.loop = asyncio.get_running_loop()
        self.loop.call_soon(self.step)

    def step(self) -> None:
        self.turn += 1
        if not self.stopped:
            self.loop.call_soon(self.step)


class Beating:
    def __init__(self, turns: Turns) -> None:
        self.turns = turns
        self.beats: list[int] = []

    def heartbeat(self, now: float) -> None:
        self.beats.append(self.turns.turn)

    def close(self, info: DisconnectInfo) -> None:
        pass


async def test_a_tick_yields_between_slices_and_beats_every_open_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "HEARTBEAT_SLICE", 3)
    ctx = ServerContext.create(Node(MemoryBroker(), Namespaces()), ServerSettings())
    turns = Turns()
    conns = [Beating(turns) for _ in range(10)]
    for conn in conns:
        ctx.connections[conn] = None

    async def close_one_meanwhile() -> None:
        await asyncio.sleep(0)
        del ctx.connections[conns[-1]]  # closed while the first slices are written

    closer = asyncio.get_running_loop().create_task(close_one_meanwhile())
    await ctx.tick(0.0, 0.0)
    await closer
    turns.stopped = True
    assert all(len(c.beats) == 1 for c in conns[:-1]) and conns[-1].beats == []
    slices = [[c.beats[0] for c in conns[k:k + 3] if c.beats] for k in range(0, 10, 3)]
    assert all(len(set(s)) == 1 for s in slices if s)  # one slice per turn
    firsts = [s[0] for s in slices if s]
    assert firsts == sorted(firsts) and len(set(firsts)) == len(firsts)  # each its own turn
