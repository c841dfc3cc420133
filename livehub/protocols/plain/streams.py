"""SSE (``GET /events``) and HTTP streaming (``GET /stream``) endpoints.

Both check the request's credentials and channels first (``livehub.protocols.credentials``:
401 for a bad or expired token, 403 for a channel it may not read), then take over the socket,
write the response head, and hand a write-only ``StreamConnection`` to the hub.  A stream whose
token expires is ended in-band with disconnect 3005 (connection expired; 3006 when a
subscription token expires first): the client reconnects with a fresh token.  Resume position
comes from ``Last-Event-ID`` (what ``EventSource`` sends on reconnection), ``?last_event_id=``
or ``?cursor=``; ``?recent=N`` first replays the newest N publications of every channel the
position does not cover (the hub's one resume path: real positions, so a reconnection that
brings ``Last-Event-ID`` continues after them instead of replaying them again).  On SSE,
``?format=json`` makes each event's data a JSON envelope naming its channel (the ``event:``
line moves into it), for pages that follow many channels with ``onmessage`` alone.
"""

from __future__ import annotations

import functools
import json
import logging

from livehub.codes import Disconnect, DisconnectInfo
from livehub.core.hub import Variant
from livehub.errors import BadRequest, LivehubError
from livehub.protocols.credentials import Access, authorize
from livehub.protocols.plain.variants import json_line, json_variant, sse_variant
from livehub.ratelog import RateLimitedLog
from livehub.transports.context import ServerContext
from livehub.transports.framing import chunk, identity
from livehub.transports.http import Request, Response
from livehub.transports.routing import Exchange
from livehub.transports.stream import StreamConnection, StreamFraming, open_stream
from livehub.wire import sse
from livehub.wire.cursor import StreamPosition, decode_cursor

log = logging.getLogger(__name__)
rlog = RateLimitedLog(log)


def stream_channels(ctx: ServerContext, request: Request) -> list[str]:
    """The ``channel`` parameters of a request, validated (400/404 on bad ones)."""
    channels = list(dict.fromkeys(request.args("channel")))
    if not channels:
        raise BadRequest("at least one channel parameter is required")
    if len(channels) > ctx.settings.max_channels:
        ctx.node.limit_hits["max_channels"] += 1
        raise BadRequest(f"at most {ctx.settings.max_channels} channels per stream")
    for name in channels:
        ctx.node.options(name)
    return channels


def stream_since(request: Request, channels: list[str],
                 *names: str) -> dict[str, StreamPosition] | None:
    """The resume position of a request (first of ``Last-Event-ID`` and query ``names``)."""
    text = request.headers.get("last-event-id")
    for name in names:
        if text:
            break
        text = request.arg(name)
    if not text:
        return None
    return decode_cursor(text, channels)


def stream_recent(request: Request) -> int:
    """``?recent=N`` (0 without it): how many of the newest publications of each channel to
    replay before live traffic; the hub caps it at the resume budget.  400 for what is not a
    whole number >= 0."""
    text = request.arg("recent")
    if text is None:
        return 0
    if not text.isdigit() or len(text) > 9:
        raise BadRequest("recent must be a whole number of publications, 0 to 999999999")
    return int(text)


def _sse_goodbye(info: DisconnectInfo) -> bytes:
    body = json.dumps({"code": info.code, "reason": info.reason,
                       "reconnect": info.reconnect}).encode()
    return sse.event_block(sse.data_lines(body), event="disconnect")


def _stream_goodbye_line(info: DisconnectInfo) -> bytes:
    return json_line({"type": "disconnect", "code": info.code, "reason": info.reason,
                      "reconnect": info.reconnect})


def _stream_goodbye(info: DisconnectInfo) -> bytes:
    return chunk(_stream_goodbye_line(info))


async def _start(ctx: ServerContext, request: Request, http: Exchange, *,
                 framing: StreamFraming, variant: Variant, channels: list[str],
                 since: dict[str, StreamPosition] | None, recent: int,
                 access: Access) -> Response | None:
    if request.method == "HEAD":
        return framing.head_response()
    conn = open_stream(http, request, framing,
                       lambda transport: StreamConnection(ctx, transport, framing))
    conn.authenticated = access.principal.user
    ctx.expire(conn, access.expire_at, access.expiry)
    ctx.own(conn, access.principal.user)
    try:
        conn.subscription = await ctx.node.subscribe(conn, variant, channels, since=since,
                                                     recent=recent)
    except LivehubError as exc:
        rlog.warning("stream-subscribe", "stream subscribe failed: %s", exc.message)
        conn.close(Disconnect.SERVER_ERROR)
        return None
    if conn.closed:
        ctx.node.unsubscribe(conn.subscription)
    return None


_NDJSON = "application/x-ndjson"
STREAM_CHUNKED = StreamFraming(content_type=_NDJSON, chunked=True, goodbye=_stream_goodbye,
                               heartbeat=chunk(json_line({"type": "ping"})))
STREAM_PLAIN = StreamFraming(content_type=_NDJSON, chunked=False, goodbye=_stream_goodbye_line,
                             heartbeat=json_line({"type": "ping"}))
"""``/stream`` for HTTP/1.0 clients, which do not know chunked (RFC 9112 §7.1), and HTTP/2."""


@functools.cache
def sse_framing(retry_ms: int) -> StreamFraming:
    """The SSE framing of a ``retry`` setting, one object shared by every stream."""
    return StreamFraming(content_type="text/event-stream; charset=utf-8", chunked=False,
                         goodbye=_sse_goodbye, heartbeat=sse.comment("heartbeat"),
                         preamble=sse.retry(retry_ms))


async def sse_endpoint(ctx: ServerContext, request: Request,
                       http: Exchange) -> Response | None:
    """``GET /events?channel=a&channel=b`` — Server-Sent Events (WHATWG HTML §9.2)."""
    channels = stream_channels(ctx, request)
    since = stream_since(request, channels, "last_event_id", "cursor")
    recent = stream_recent(request)
    fmt = request.arg("format", "raw")
    if fmt not in ("raw", "json"):
        raise BadRequest("format must be raw or json")
    access = await authorize(ctx, request, channels)
    return await _start(ctx, request, http, framing=sse_framing(ctx.settings.sse_retry_ms),
                        variant=sse_variant(channels, envelope=fmt == "json"),
                        channels=channels, since=since, recent=recent, access=access)


async def stream_authorized(ctx: ServerContext, request: Request, http: Exchange,
                            channels: list[str], access: Access) -> Response | None:
    """``/stream`` (JSON lines: channel, event, data, cursor) of ``channels`` for a request
    its caller has authorized itself (the admin dashboard's live tail)."""
    since = stream_since(request, channels, "cursor", "since")
    return await _json_lines(ctx, request, http, channels, since=since,
                             recent=stream_recent(request), access=access)


async def _json_lines(ctx: ServerContext, request: Request, http: Exchange,
                      channels: list[str], *, since: dict[str, StreamPosition] | None,
                      recent: int, access: Access) -> Response | None:
    """The JSON-lines stream in the framing of the request's HTTP version."""
    if request.version != "1.1":
        return await _start(ctx, request, http, framing=STREAM_PLAIN,
                            variant=json_variant(channels, identity, "plain"),
                            channels=channels, since=since, recent=recent, access=access)
    return await _start(ctx, request, http, framing=STREAM_CHUNKED,
                        variant=json_variant(channels, chunk, "chunk"), channels=channels,
                        since=since, recent=recent, access=access)


async def stream_endpoint(ctx: ServerContext, request: Request,
                          http: Exchange) -> Response | None:
    """``GET /stream?channel=a`` — HTTP streaming, one JSON object per line: chunked for
    HTTP/1.1 clients; for HTTP/1.0 clients, which do not know chunked (RFC 9112 §7.1), the
    lines themselves and the end of the stream is the end of the connection; on HTTP/2 the
    lines themselves in DATA frames (chunked is not HTTP/2's, RFC 9113 §8.2.2)."""
    channels = stream_channels(ctx, request)
    since = stream_since(request, channels, "cursor", "since")
    recent = stream_recent(request)
    access = await authorize(ctx, request, channels)
    return await _json_lines(ctx, request, http, channels, since=since, recent=recent,
                             access=access)
