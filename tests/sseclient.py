"""A minimal SSE reader for tests (interpretation per WHATWG HTML §9.2.6).

``Interpreter`` turns lines into events and is shared by the httpx readers here, the cluster
tests' ``SseStream`` and the reference interpreter of the wire tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

CHECKPOINT = "checkpoint"
"""``Event.event`` of an id-only block (reported with ``Interpreter(extras=True)``)."""
COMMENT = "comment"
"""``Event.event`` of a comment line such as a heartbeat (with ``extras=True``)."""


@dataclass
class Event:
    data: str
    event: str
    id: str


class Interpreter:
    """Line-by-line event stream interpretation; ``feed`` returns the event a line completes.

    With ``extras`` it also returns id-only blocks as ``CHECKPOINT`` and comment lines as
    ``COMMENT`` events (with the comment text, stripped, as data).
    """

    __slots__ = ("data", "event", "extras", "has_id", "last_id")

    def __init__(self, *, extras: bool = False) -> None:
        self.extras = extras
        self.data: list[str] = []
        self.event = ""
        self.has_id = False
        self.last_id = ""

    def feed(self, line: str) -> Event | None:
        if line == "":
            data, event, has_id = self.data, self.event, self.has_id
            self.data, self.event, self.has_id = [], "", False
            if data:
                return Event("\n".join(data), event or "message", self.last_id)
            if has_id and self.extras:
                return Event("", CHECKPOINT, self.last_id)
            return None
        if line.startswith(":"):
            return Event(line[1:].strip(), COMMENT, self.last_id) if self.extras else None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self.data.append(value)
        elif field == "event":
            self.event = value
        elif field == "id" and "\0" not in value:
            self.last_id = value
            self.has_id = True
        return None


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    interpreter = Interpreter()
    async for line in response.aiter_lines():
        ev = interpreter.feed(line)
        if ev is not None:
            yield ev


async def take(response: httpx.Response, n: int) -> list[Event]:
    out: list[Event] = []
    async for ev in events(response):
        out.append(ev)
        if len(out) == n:
            break
    return out
