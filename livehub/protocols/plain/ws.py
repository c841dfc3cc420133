"""WebSocket endpoints: ``/echo`` (the textbook echo) and ``/ws?channel=...`` (a raw channel).

``/ws`` checks credentials like every plain endpoint (``livehub.protocols.credentials``), but
answers a refusal after the handshake, with a close code a browser can see: 3500 (invalid
token), 3005 (token expired: reconnect with a fresh one), 3507 (permission denied).  Messages
the client sends are published when ``livehub.core.permissions`` allows it (else 3507).
"""

from __future__ import annotations

import asyncio

from livehub.codes import Disconnect, DisconnectInfo
from livehub.core.channels import ChannelOptions
from livehub.core.hub import Subscription, Variant
from livehub.core.limits import TokenBucket
from livehub.core.permissions import ANONYMOUS, Principal, check_publish
from livehub.errors import BadRequest, Forbidden, LivehubError, Unauthorized
from livehub.protocols.credentials import Access, authorize
from livehub.protocols.plain.streams import stream_recent
from livehub.protocols.plain.variants import json_variant, raw_ws_variant
from livehub.transports import websocket
from livehub.transports.context import ServerContext
from livehub.transports.http import Request
from livehub.transports.routing import Exchange
from livehub.transports.websocket import WebSocketConnection
from livehub.wire.cursor import decode_cursor
from livehub.wire.handshake import Handshake
from livehub.wire.payload import PayloadKind
from livehub.wire.websocket import Opcode


class EchoConnection(WebSocketConnection):
    """``/echo``: answers each text message with ``Echo: <message>``, binary as is."""

    __slots__ = ()

    def on_text(self, text: str) -> None:
        self.write(self.own_frame(Opcode.TEXT, ("Echo: " + text).encode()))

    def on_binary(self, data: bytes) -> None:
        self.write(self.own_frame(Opcode.BINARY, data))


class ChannelConnection(WebSocketConnection):
    """``/ws?channel=c``: every publication of ``c`` as one message; messages sent by the
    client are published to ``c`` when its namespace allows client publishing."""

    __slots__ = ("_bucket", "channel", "options", "principal", "subscription")

    def __init__(self, ctx: ServerContext, transport: asyncio.Transport,
                 handshake: Handshake, channel: str, options: ChannelOptions) -> None:
        super().__init__(ctx, transport, handshake)
        self.channel = channel
        self.options = options
        self.principal: Principal = ANONYMOUS
        self.subscription: Subscription | None = None
        self._bucket: TokenBucket | None = None  # made on the first message

    def on_text(self, text: str) -> None:
        self._publish(text.encode(), PayloadKind.TEXT)

    def on_binary(self, data: bytes) -> None:
        self._publish(data, PayloadKind.BINARY)

    def _publish(self, data: bytes, kind: PayloadKind) -> None:
        try:
            # the connection passed the subscribe check before it was accepted
            check_publish(self.principal, self.channel, self.options, subscribed=True)
        except LivehubError as exc:
            self._send_close(exc.close_code, exc.message)
            return
        bucket = self._bucket
        if bucket is None:
            bucket = self._bucket = self._ctx.node.limits.publish_bucket()
        if bucket is not None and not bucket.take():
            self._ctx.node.limit_hits["client_publish_rate"] += 1
            limits = self._ctx.node.limits
            self._send_close(Disconnect.TOO_MANY_REQUESTS.code,
                             f"too many requests: more than {limits.client_publish_rate:g} "
                             f"publications per second (burst {limits.client_publish_burst})")
            return
        try:
            self._ctx.node.publish_nowait(self.channel, data, kind, options=self.options)
        except LivehubError as exc:
            self._send_close(exc.close_code, exc.message)

    def on_closed(self) -> None:
        if self.subscription is not None:
            self._ctx.node.unsubscribe(self.subscription)

    def channels(self) -> tuple[str, ...]:
        return (self.channel,)

    def user(self) -> str:
        return self.principal.user


async def echo_endpoint(ctx: ServerContext, request: Request, http: Exchange) -> None:
    handshake = websocket.handshake(ctx, request)
    conn, tail = http.take_over(lambda transport: EchoConnection(ctx, transport, handshake))
    conn.start(websocket.accept(http, request, handshake), tail)


async def channel_endpoint(ctx: ServerContext, request: Request, http: Exchange) -> None:
    channels = request.args("channel")
    if len(channels) != 1:
        raise BadRequest("exactly one channel parameter is required")
    channel = channels[0]
    options = ctx.node.options(channel)
    fmt = request.arg("format", "raw")
    if fmt not in ("raw", "json"):
        raise BadRequest("format must be raw or json")
    cursor = request.arg("since") or request.arg("cursor")
    since = decode_cursor(cursor, [channel]) if cursor else None
    recent = stream_recent(request)
    handshake = websocket.handshake(ctx, request)
    refusal: LivehubError | None = None
    access = Access(ANONYMOUS, None)
    try:
        access = await authorize(ctx, request, [channel])
    except (Unauthorized, Forbidden) as exc:
        refusal = exc
    conn, tail = http.take_over(
        lambda transport: ChannelConnection(ctx, transport, handshake, channel, options))
    conn.principal = access.principal
    conn.hold_input()  # the client's own messages come back to it: subscribe first
    conn.start(websocket.accept(http, request, handshake), tail)
    if refusal is not None:
        conn.close(DisconnectInfo(refusal.close_code, refusal.message))
        conn.release_input()  # to read the peer's answering Close
        return
    ctx.expire(conn, access.expire_at, access.expiry)
    ctx.own(conn, access.principal.user)
    key = None if handshake.deflate is None else handshake.deflate.variant_key
    variant: Variant
    if fmt == "json":
        variant = json_variant([channel], conn.frame_text, ("ws", key))
    else:
        variant = raw_ws_variant(key, conn.frame_text, conn.frame_binary)
    try:
        sub = await ctx.node.subscribe(conn, variant, [channel], since=since, recent=recent)
    except LivehubError as exc:
        conn.close(DisconnectInfo(exc.close_code, exc.message))
        conn.release_input()  # to read the peer's answering Close
        return
    conn.subscription = sub
    if conn.closed:
        ctx.node.unsubscribe(sub)
    elif sub.reset_channels and fmt == "raw":
        conn.close(DisconnectInfo(Disconnect.INSUFFICIENT_STATE.code,
                                  "cannot resume: history does not cover the gap"))
    conn.release_input()
