"""Long-polling: ``GET /poll?channel=a&cursor=C[&timeout=S]``.

Answers at once with everything newer than the cursor (or a reset notice when history cannot
cover the gap), otherwise waits up to ``timeout`` seconds for the next publications.  Without a
cursor it answers at once with the current cursor, so the client starts from "now"; with
``?recent=N`` (and no cursor) it answers with the newest N publications of each channel and the
cursor after them (waiting like any poll when there are none).  The reply
is ``{"messages": [...], "cursor": C2, "reset": [channels]}``: pass ``C2`` to the next poll.
The wait reuses the hub's resume merge, so nothing published between two polls is lost.
Every poll is checked like a stream (``livehub.protocols.credentials``): 401 or 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence

from livehub.codes import DisconnectInfo
from livehub.errors import BadRequest
from livehub.protocols.credentials import authorize
from livehub.protocols.plain.streams import stream_channels, stream_recent, stream_since
from livehub.protocols.plain.variants import json_variant
from livehub.transports.context import ServerContext
from livehub.transports.framing import identity
from livehub.transports.http import Request, Response
from livehub.transports.routing import Exchange
from livehub.wire.cursor import CursorCodec


class _Collector:
    """A subscriber that gathers encoded lines and wakes the waiting poll."""

    __slots__ = ("lines", "waiter")

    def __init__(self, waiter: asyncio.Future[None]) -> None:
        self.lines: list[bytes] = []
        self.waiter = waiter

    def write(self, data: bytes) -> None:
        self.lines.append(data)
        if not self.waiter.done() and not data.startswith(_CHECKPOINT):
            # wake on the next iteration, so publications of this iteration come together
            asyncio.get_running_loop().call_soon(self._wake)

    def _wake(self) -> None:
        if not self.waiter.done():
            self.waiter.set_result(None)

    def lost(self) -> None:
        """The client went away: stop waiting (the subscription ends with the wait)."""
        self._wake()

    def close(self, info: DisconnectInfo) -> None:
        self._wake()


def _timeout(ctx: ServerContext, request: Request) -> float:
    text = request.arg("timeout")
    if text is None:
        return ctx.settings.poll_timeout
    try:
        value = float(text)
    except ValueError:
        raise BadRequest("timeout must be a number of seconds") from None
    if not 0 <= value <= ctx.settings.max_poll_timeout:
        raise BadRequest(f"timeout must be between 0 and {ctx.settings.max_poll_timeout}")
    return value


async def poll_endpoint(ctx: ServerContext, request: Request,
                        http: Exchange) -> Response:
    channels = stream_channels(ctx, request)
    since = stream_since(request, channels, "cursor", "since")
    recent = stream_recent(request)
    timeout = _timeout(ctx, request)
    await authorize(ctx, request, channels)
    node = ctx.node
    if since is None and recent == 0:
        positions = {name: await node.top(name) for name in channels}
        return _reply([], CursorCodec(channels).encode(positions), [])
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    collector = _Collector(waiter)
    sub = await node.subscribe(collector, json_variant(channels, identity, "plain"), channels,
                              since=since, recent=recent)
    http.watch_lost(collector.lost)
    try:
        if not _has_news(collector.lines) and timeout > 0 and not http.closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), timeout)
    finally:
        node.unsubscribe(sub)
    messages: list[object] = []
    resets: list[str] = []
    cursor = CursorCodec(channels).encode(sub.positions)
    for line in collector.lines:
        item = json.loads(line)
        kind = item.pop("type", None)
        cursor = item.get("cursor", cursor)
        if kind == "pub":
            messages.append(item)
        elif kind == "reset":
            resets.extend(item["channels"])
    return _reply(messages, cursor, resets)


_CHECKPOINT = b'{"type":"cursor"'


def _has_news(lines: Sequence[bytes]) -> bool:
    return any(not line.startswith(_CHECKPOINT) for line in lines)


def _reply(messages: list[object], cursor: str, resets: list[str]) -> Response:
    body: dict[str, object] = {"messages": messages, "cursor": cursor}
    if resets:
        body["reset"] = resets
    return Response.json(body)
