"""Centrifugo transports and their endpoints.

Bidirectional: ``/connection/websocket`` (JSON over WebSocket text frames); with emulation
``/connection/http_stream`` (POST, newline-delimited JSON, chunked) and ``/connection/sse``
(GET, ``cf_connect`` query, one reply per event), whose client-to-server commands arrive as
``POST /emulation`` ("Bidirectional emulation").  The emulation endpoint never looks for the
session itself: it publishes a control message through the broker and the node that holds
the session (maybe another process) feeds the commands to it.

Unidirectional ("Unidirectional client protocol"): ``/connection/uni_websocket`` (connect
request as the first message or ``cf_connect``), ``/connection/uni_sse`` (``cf_connect`` or
POST body) and ``/connection/uni_http_stream`` (POST body); they receive bare ``Push``
objects.  Pings: ``{}`` (bidirectional, uni HTTP stream), an empty message (uni WebSocket),
``event: ping`` (uni SSE).
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache, partial
from typing import TYPE_CHECKING

from livehub.codes import Disconnect, DisconnectInfo
from livehub.errors import BadRequest, PayloadTooLarge
from livehub.protocols.centrifugo import control, protocol
from livehub.protocols.centrifugo.commands import uni_connect
from livehub.protocols.centrifugo.session import Session
from livehub.protocols.centrifugo.variants import (
    PushVariant,
    http_stream_variant,
    sse_frame,
    sse_variant,
    websocket_variant,
)
from livehub.transports import websocket
from livehub.transports.context import ServerContext
from livehub.transports.http import Request, Response
from livehub.transports.routing import Exchange, Router
from livehub.transports.stream import StreamConnection, StreamFraming, open_stream
from livehub.transports.websocket import WebSocketConnection
from livehub.wire.handshake import Handshake

if TYPE_CHECKING:
    from livehub.protocols.centrifugo.node import CentrifugoNode

log = logging.getLogger(__name__)

GET = frozenset({"GET", "HEAD"})
POST = frozenset({"POST"})


class CentrifugoWebSocket(WebSocketConnection):
    """A WebSocket carrying the Centrifugo protocol (bidirectional or unidirectional)."""

    __slots__ = ("_uni_started", "emulation", "name", "ping_frame", "session", "uni",
                 "variant")

    internal_error = Disconnect.SERVER_ERROR
    """Centrifugo says 3004 (reconnect) when a bug ends a connection, on every transport."""

    def __init__(self, ctx: ServerContext, transport: asyncio.Transport,
                 handshake: Handshake, node: CentrifugoNode, *, uni: bool) -> None:
        super().__init__(ctx, transport, handshake)
        self.name = "uni_websocket" if uni else "websocket"
        self.uni = uni
        self.emulation = False
        bits = None if handshake.deflate is None else handshake.deflate.variant_key
        self.variant: PushVariant = websocket_variant(bits, uni=uni)
        self.ping_frame = self.variant.frame(b"" if uni else protocol.PING)
        self._uni_started = False
        self.session = Session(node, self)

    def on_text(self, text: str) -> None:
        if not self.uni:
            self.session.feed(text)
        elif not self._uni_started:
            self.start_uni(text)

    def start_uni(self, text: str) -> None:
        """The connect request of a unidirectional WebSocket (first message or query)."""
        self._uni_started = True
        if len(text) > self.session.node.settings.uni_max_connect_size:
            self.close(DisconnectInfo(Disconnect.BAD_REQUEST.code, "connect request too large"))
            return
        try:
            params = protocol.parse_json(text or "{}", "connect request")
        except BadRequest as exc:
            self.close(DisconnectInfo(Disconnect.BAD_REQUEST.code, exc.message))
            return
        self.session.node.spawn(uni_connect(self.session, params))

    def on_binary(self, data: bytes) -> None:
        self.close(DisconnectInfo(Disconnect.BAD_REQUEST.code,
                                  "binary frames: only the JSON protocol is supported"))

    def on_closed(self) -> None:
        self.session.closed()

    protocol = "centrifugo"
    going_away = Disconnect.SHUTDOWN

    @property
    def transport_name(self) -> str:
        return self.name

    def channels(self) -> tuple[str, ...]:
        return tuple(self.session.subs)

    def user(self) -> str:
        return self.session.user

    def heartbeat(self, now: float) -> None:
        """The node pings at the protocol level (``{}`` and its pong)."""

    def close(self, info: DisconnectInfo) -> None:
        if self.uni and not self.closed:
            self.write(self.variant.encode_push("disconnect",
                                                protocol.disconnect_body(info.code, info.reason)))
        super().close(info)


class CentrifugoStream(StreamConnection):
    """Centrifugo's SSE and HTTP streaming: the one stream connection of ``transports``,
    carrying a session (replies and pushes out; commands arrive through ``/emulation``)."""

    __slots__ = ("emulation", "name", "ping_frame", "session", "uni", "variant")

    def __init__(self, ctx: ServerContext, transport: asyncio.Transport, node: CentrifugoNode,
                 *, name: str, uni: bool, variant: PushVariant, framing: StreamFraming,
                 ping_frame: bytes) -> None:
        super().__init__(ctx, transport, framing)
        self.name = name
        self.uni = uni
        self.emulation = not uni
        self.variant = variant
        self.ping_frame = ping_frame
        self.session = Session(node, self)

    def on_closed(self) -> None:
        self.session.closed()

    protocol = "centrifugo"

    @property
    def transport_name(self) -> str:
        return self.name

    def channels(self) -> tuple[str, ...]:
        return tuple(self.session.subs)

    def user(self) -> str:
        return self.session.user


# -- endpoints -------------------------------------------------------------------------------


def _handshake(ctx: ServerContext, request: Request) -> Handshake:
    if request.arg("cf_protocol", "json") != "json":
        raise BadRequest("only the JSON protocol is supported")
    return websocket.handshake(ctx, request)


async def websocket_endpoint(node: CentrifugoNode, ctx: ServerContext, request: Request,
                             http: Exchange) -> None:
    handshake = _handshake(ctx, request)
    conn, tail = http.take_over(
        lambda transport: CentrifugoWebSocket(ctx, transport, handshake, node, uni=False))
    conn.session.vouched = request.user
    conn.start(websocket.accept(http, request, handshake), tail)


async def uni_websocket_endpoint(node: CentrifugoNode, ctx: ServerContext, request: Request,
                                 http: Exchange) -> None:
    handshake = _handshake(ctx, request)
    connect = request.arg("cf_connect")
    conn, tail = http.take_over(
        lambda transport: CentrifugoWebSocket(ctx, transport, handshake, node, uni=True))
    conn.session.vouched = request.user
    conn.start(websocket.accept(http, request, handshake), tail if connect is None else b"")
    if connect is not None:
        conn.start_uni(connect)


def _disconnect_push(variant: PushVariant, info: DisconnectInfo) -> bytes:
    return variant.encode_push("disconnect", protocol.disconnect_body(info.code, info.reason))


@cache
def _stream_kind(*, sse: bool, uni: bool, chunked: bool = True
                 ) -> tuple[PushVariant, StreamFraming, bytes]:
    """The push variant, the stream framing and the ping of one kind of Centrifugo stream
    (``chunked``: HTTP/1.1 chunks for HTTP streaming; HTTP/2 sends the lines as they are)."""
    if sse:
        variant = sse_variant(uni=uni)
        ping = b"event: ping\ndata:\n\n" if uni else sse_frame(protocol.PING)
        content_type = "text/event-stream; charset=utf-8"
    else:
        variant = http_stream_variant(uni=uni, chunked=chunked)
        ping = variant.frame(protocol.PING)
        content_type = "application/json"
    framing = StreamFraming(content_type=content_type, chunked=not sse and chunked,
                            goodbye=partial(_disconnect_push, variant))
    return variant, framing, ping


def _take_over_stream(node: CentrifugoNode, ctx: ServerContext, request: Request,
                      http: Exchange, *, name: str, uni: bool, sse: bool
                      ) -> CentrifugoStream:
    variant, framing, ping = _stream_kind(sse=sse, uni=uni, chunked=request.version == "1.1")
    conn = open_stream(http, request, framing, lambda transport: CentrifugoStream(
        ctx, transport, node, name=name, uni=uni, variant=variant, framing=framing,
        ping_frame=ping))
    conn.session.vouched = request.user
    return conn


def _connect_text(node: CentrifugoNode, request: Request) -> str:
    text = request.arg("cf_connect")
    if text is None:
        if len(request.body) > node.settings.uni_max_connect_size:
            raise PayloadTooLarge("connect request too large")
        try:
            text = request.body.decode()
        except UnicodeDecodeError:
            raise BadRequest("connect request is not UTF-8") from None
    elif len(text) > node.settings.uni_max_connect_size:
        raise PayloadTooLarge("connect request too large")
    return text


def _check_commands(text: str) -> None:
    commands = protocol.parse_commands(text)
    if not commands or commands[0].method != "connect":
        raise BadRequest("the stream must start with a connect command")


async def sse_endpoint(node: CentrifugoNode, ctx: ServerContext, request: Request,
                       http: Exchange) -> None:
    """``/connection/sse``: bidirectional emulation over SSE."""
    text = _connect_text(node, request)
    _check_commands(text)
    conn = _take_over_stream(node, ctx, request, http, name="sse", uni=False, sse=True)
    conn.session.feed(text)


async def http_stream_endpoint(node: CentrifugoNode, ctx: ServerContext, request: Request,
                               http: Exchange) -> None:
    """``/connection/http_stream``: bidirectional emulation over HTTP streaming."""
    text = _connect_text(node, request)
    _check_commands(text)
    conn = _take_over_stream(node, ctx, request, http, name="http_stream", uni=False,
                             sse=False)
    conn.session.feed(text)


async def emulation_endpoint(node: CentrifugoNode, ctx: ServerContext, request: Request,
                             http: Exchange) -> Response:
    """``POST /emulation``: commands of an SSE or HTTP-stream session, routed to the node
    that holds the session through the broker."""
    body = protocol.parse_json(request.body, "emulation request")
    session = body.get("session")
    if not isinstance(session, str) or not session:
        raise BadRequest("session is required")
    data = body.get("data")
    if not isinstance(data, str | list | dict):
        raise BadRequest("data must hold the commands")
    node_id = body.get("node")
    await node.core.publish_control(control.encode(
        "emulation", node=node_id if isinstance(node_id, str) else None, session=session,
        data=data))
    return Response(204, content_type="text/plain")


async def uni_sse_endpoint(node: CentrifugoNode, ctx: ServerContext, request: Request,
                           http: Exchange) -> None:
    params = protocol.parse_json(_connect_text(node, request) or "{}", "connect request")
    conn = _take_over_stream(node, ctx, request, http, name="uni_sse", uni=True, sse=True)
    await uni_connect(conn.session, params)


async def uni_http_stream_endpoint(node: CentrifugoNode, ctx: ServerContext, request: Request,
                                   http: Exchange) -> None:
    params = protocol.parse_json(_connect_text(node, request) or "{}", "connect request")
    conn = _take_over_stream(node, ctx, request, http, name="uni_http_stream", uni=True,
                             sse=False)
    await uni_connect(conn.session, params)


def install_transports(app: Router, node: CentrifugoNode) -> None:
    """Mount the connection endpoints the settings enable."""
    app.route("/connection/websocket", GET, partial(websocket_endpoint, node))
    if node.settings.emulation:
        app.route("/connection/sse", frozenset({"GET", "POST"}), partial(sse_endpoint, node))
        app.route("/connection/http_stream", POST, partial(http_stream_endpoint, node))
        app.route("/emulation", POST, partial(emulation_endpoint, node))
    if node.settings.uni:
        app.route("/connection/uni_websocket", GET, partial(uni_websocket_endpoint, node))
        app.route("/connection/uni_sse", frozenset({"GET", "POST"}),
                  partial(uni_sse_endpoint, node))
        app.route("/connection/uni_http_stream", POST, partial(uni_http_stream_endpoint, node))

