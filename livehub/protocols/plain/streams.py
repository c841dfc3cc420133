"""SSE (``GET /events``) and HTTP streaming (``GET /stream``) endpoints.

Both take over the socket after validating the request, write the response head, and hand a
write-only ``StreamConnection`` to the hub.  Resume position comes from ``Last-Event-ID``
(what ``EventSource`` sends on reconnection), ``?last_event_id=`` or ``?cursor=``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from livehub.codes import Disconnect, DisconnectInfo
from livehub.core.hub import Variant
from livehub.errors import BadRequest, LivehubError
from livehub.protocols.plain.variants import json_line, json_variant, sse_variant
from livehub.transports.context import ServerContext
from livehub.transports.framing import chunk, identity
from livehub.transports.http import HttpConnection, Request, Response, head_bytes
from livehub.transports.stream import StreamConnection
from livehub.wire import sse
from livehub.wire.cursor import StreamPosition, decode_cursor

log = logging.getLogger(__name__)


def stream_channels(ctx: ServerContext, request: Request) -> list[str]:
    """The ``channel`` parameters of a request, validated (400/404 on bad ones)."""
    channels = list(dict.fromkeys(request.args("channel")))
    if not channels:
        raise BadRequest("at least one channel parameter is required")
    if len(channels) > ctx.settings.max_channels:
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


def _sse_goodbye(info: DisconnectInfo) -> bytes:
    body = json.dumps({"code": info.code, "reason": info.reason,
                       "reconnect": info.reconnect}).encode()
    return sse.event_block(sse.data_lines(body), event="disconnect")


def _stream_goodbye_line(info: DisconnectInfo) -> bytes:
    return json_line({"type": "disconnect", "code": info.code, "reason": info.reason,
                      "reconnect": info.reconnect})


def _stream_goodbye(info: DisconnectInfo) -> bytes:
    return chunk(_stream_goodbye_line(info)) + b"0\r\n\r\n"


async def _start(ctx: ServerContext, request: Request, http: HttpConnection, *,
                 content_type: str, chunked: bool, preamble: bytes, heartbeat: bytes,
                 goodbye: Callable[[DisconnectInfo], bytes], variant: Variant,
                 channels: list[str], since: dict[str, StreamPosition] | None
                 ) -> Response | None:
    headers = [("cache-control", "no-cache, no-transform"), ("x-accel-buffering", "no")]
    if request.method == "HEAD":
        # the head a GET would get, no stream (RFC 9110 §9.3.2)
        return Response(200, content_type=content_type, headers=headers, streamed=True)
    headers.insert(0, ("content-type", content_type))
    headers.extend(http.extra_headers(request))
    headers.append(("transfer-encoding", "chunked") if chunked else ("connection", "close"))
    conn, _ = http.take_over(
        lambda transport: StreamConnection(ctx, transport, heartbeat=heartbeat, goodbye=goodbye))
    conn.write(head_bytes(200, headers) + preamble)
    conn.begin_catch_up()
    try:
        conn.subscription = await ctx.node.subscribe(conn, variant, channels, since=since)
    except LivehubError as exc:
        log.warning("stream subscribe failed: %s", exc.message)
        conn.close(Disconnect.SERVER_ERROR)
        return None
    finally:
        conn.end_catch_up()
    if conn.closed:
        ctx.node.unsubscribe(conn.subscription)
    return None


async def sse_endpoint(ctx: ServerContext, request: Request,
                       http: HttpConnection) -> Response | None:
    """``GET /events?channel=a&channel=b`` — Server-Sent Events (WHATWG HTML §9.2)."""
    channels = stream_channels(ctx, request)
    since = stream_since(request, channels, "last_event_id", "cursor")
    return await _start(ctx, request, http, content_type="text/event-stream; charset=utf-8",
                 chunked=False, preamble=sse.retry(ctx.settings.sse_retry_ms),
                 heartbeat=sse.comment("heartbeat"), goodbye=_sse_goodbye,
                 variant=sse_variant(channels), channels=channels, since=since)


async def stream_endpoint(ctx: ServerContext, request: Request,
                          http: HttpConnection) -> Response | None:
    """``GET /stream?channel=a`` — HTTP streaming, one JSON object per line: chunked for
    HTTP/1.1 clients; for HTTP/1.0 clients, which do not know chunked (RFC 9112 §7.1), the
    lines themselves and the end of the stream is the end of the connection."""
    channels = stream_channels(ctx, request)
    since = stream_since(request, channels, "cursor", "since")
    if request.version == "1.0":
        return await _start(ctx, request, http, content_type="application/x-ndjson",
                            chunked=False, preamble=b"", heartbeat=json_line({"type": "ping"}),
                            goodbye=_stream_goodbye_line,
                            variant=json_variant(channels, identity, "plain"),
                            channels=channels, since=since)
    return await _start(ctx, request, http, content_type="application/x-ndjson",
                        chunked=True, preamble=b"",
                        heartbeat=chunk(json_line({"type": "ping"})), goodbye=_stream_goodbye,
                        variant=json_variant(channels, chunk, "chunk"), channels=channels,
                        since=since)
