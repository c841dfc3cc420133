"""A minimal raw Centrifugo JSON client over ``websockets``, for exact wire assertions."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection


class RawClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0
        self.pushes: list[dict[str, Any]] = []

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        text = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(text, str)
        lines = [json.loads(line) for line in text.split("\n") if line]
        first: dict[str, Any] = lines[0]
        self.pushes.extend(lines[1:])
        return first

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command and return its reply (pushes meanwhile are kept)."""
        self.next_id += 1
        await self.ws.send(json.dumps({"id": self.next_id, method: params or {}}))
        while True:
            reply = await self.recv()
            if reply.get("id") == self.next_id:
                return reply
            self.pushes.append(reply)

    async def push(self, timeout: float = 5) -> dict[str, Any]:
        if self.pushes:
            return self.pushes.pop(0)
        while True:
            msg = await self.recv(timeout)
            if "push" in msg:
                push: dict[str, Any] = msg["push"]
                return push

    async def closed_with(self) -> int:
        """Wait for the server's Close frame; its code."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), 5)
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is not None
            return exc.rcvd.code


def connect(url: str, **kwargs: Any) -> Any:
    return websockets.connect(url, **kwargs)
