"""A minimal SSE reader over httpx for tests (interpretation per WHATWG HTML §9.2.6)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx


@dataclass
class Event:
    data: str
    event: str
    id: str


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    data: list[str] = []
    event = ""
    last_id = ""
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield Event("\n".join(data), event or "message", last_id)
            data, event = [], ""
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "id":
            last_id = value


async def take(response: httpx.Response, n: int) -> list[Event]:
    out: list[Event] = []
    async for ev in events(response):
        out.append(ev)
        if len(out) == n:
            break
    return out
