"""An SSE reader for cluster tests that also shows checkpoints (id-only blocks), resets and
heartbeat comments (interpretation per WHATWG HTML §9.2.6)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx


@dataclass
class Block:
    event: str
    """``message`` by default; ``checkpoint`` for an id-only block, ``comment`` for a
    heartbeat comment."""
    data: str
    id: str


class SseStream:
    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200
        self._lines: AsyncIterator[str] = response.aiter_lines()
        self.last_id = ""

    async def next(self) -> Block:
        data: list[str] = []
        event = ""
        block_id: str | None = None
        async for line in self._lines:
            if line == "":
                if data:
                    return Block(event or "message", "\n".join(data), self.last_id)
                if block_id is not None:
                    return Block("checkpoint", "", self.last_id)
                continue
            if line.startswith(":"):
                return Block("comment", line[1:].strip(), self.last_id)
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
            elif name == "id":
                block_id = self.last_id = value
        raise EOFError("stream ended")

    async def next_event(self) -> Block:
        """The next block with data (skips checkpoints and comments)."""
        while True:
            block = await self.next()
            if block.event not in ("checkpoint", "comment"):
                return block

    async def subscribed(self) -> str:
        """Wait for the first checkpoint (the subscription is live); return its cursor."""
        while True:
            block = await self.next()
            if block.event == "checkpoint":
                return block.id
            assert block.event == "comment", block

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
