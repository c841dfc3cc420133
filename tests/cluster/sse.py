"""An SSE reader for cluster tests that also shows checkpoints (id-only blocks), resets and
heartbeat comments (interpretation per WHATWG HTML §9.2.6)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx

from ..sseclient import CHECKPOINT, COMMENT, Event, Interpreter

Block = Event
"""``event`` is ``message`` by default; ``checkpoint`` for an id-only block, ``comment`` for a
heartbeat comment."""


class SseStream:
    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200
        self._lines: AsyncIterator[str] = response.aiter_lines()
        self._interpreter = Interpreter(extras=True)

    @property
    def last_id(self) -> str:
        return self._interpreter.last_id

    async def next(self) -> Block:
        async for line in self._lines:
            block = self._interpreter.feed(line)
            if block is not None:
                return block
        raise EOFError("stream ended")

    async def next_event(self) -> Block:
        """The next block with data (skips checkpoints and comments)."""
        while True:
            block = await self.next()
            if block.event not in (CHECKPOINT, COMMENT):
                return block

    async def subscribed(self) -> str:
        """Wait for the first checkpoint (the subscription is live); return its cursor."""
        while True:
            block = await self.next()
            if block.event == CHECKPOINT:
                return block.id
            assert block.event == COMMENT, block

    async def datas(self, n: int) -> list[str]:
        out = []
        for _ in range(n):
            block = await self.next_event()
            assert block.event == "message", block
            out.append(block.data)
        return out

    @staticmethod
    def json(block: Block) -> object:
        return json.loads(block.data)
