"""HTTP/2 server connections (RFC 9113) on the sans-I/O ``h2`` library: each stream an Exchange.

A connection arrives as HTTP/1.1 (``transports.http.HttpConnection``) and becomes an
``Http2Connection`` when TLS negotiated ``h2`` by ALPN, or when its first bytes are the
HTTP/2 connection preface (h2c with prior knowledge, RFC 9113 §3.3).  The connection's budget
lease (``admission``) comes with it and ends with the socket.

Theory of operation.  Every request is one stream, an ``H2Stream``: the ``Exchange`` its
endpoint gets, exactly as on HTTP/1.1.  Its request head goes through the same
``messages.parse_head`` and its endpoint through the same router, so every check (routes,
credentials, limits, CORS) is the one HTTP/1.1 runs.  An endpoint answers with a ``Response``
(HEADERS, then DATA as the flow-control windows allow, then END_STREAM), or takes the stream
over: the factory gets a ``StreamTransport`` whose ``write`` sends DATA frames while the
peer's windows (stream and connection, §5.2) allow and keeps the rest in the stream's buffer;
its ``get_write_buffer_size`` is that buffer, so a peer that never sends WINDOW_UPDATE (or
stops reading the socket: writes pause, every stream buffers) makes its stream's ``Outgoing``
a slow consumer by the one rule (3008, in-band when it can still get out; the stream is reset
with CANCEL if it cannot within ``stream.CLOSE_TIMEOUT``).  Frames from all streams go to the
socket in one write per loop turn, like the ``Flusher``'s.

Limits: at most ``max_streams`` concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS); a
stream beyond it is refused with RST_STREAM(REFUSED_STREAM) (§5.1.2: a stream error; the
client may retry it), other streams and clients go on.  A client that exceeds the limit after
acknowledging it gets GOAWAY(PROTOCOL_ERROR) from ``h2`` (a stream error may be treated as a
connection error, §5.4.1).  A request not complete within ``head_timeout`` gets 408; a body
over ``max_body`` 413, then RST_STREAM(NO_ERROR) (§8.1); an idle connection is closed with
GOAWAY after ``keepalive_timeout``; a protocol error ends the connection with GOAWAY and the
error code ``h2`` chose.

WebSocket (RFC 8441): SETTINGS_ENABLE_CONNECT_PROTOCOL is offered, so a client (Chromium) may
open a WebSocket as a stream: an extended CONNECT with ``:protocol websocket`` reaches the
WebSocket endpoints as a ``GET`` with ``upgrade`` set, is dispatched at once (its request
never ends), its DATA are the WebSocket frames (kept, up to ``max_body``, until the endpoint
takes the stream over), and ``transports.websocket.accept`` answers 200 as HEADERS instead of
101.  Other CONNECTs get 405.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes

from livehub.codes import ErrorCode
from livehub.errors import LivehubError, MethodNotAllowed
from livehub.ratelog import RateLimitedLog
from livehub.transports.admission import Lease
from livehub.transports.messages import (
    Refused,
    Request,
    Response,
    error_response,
    parse_head,
    refusal,
)
from livehub.transports.outgoing import Outgoing
from livehub.transports.routing import Handler
from livehub.transports.stats import Answered

log = logging.getLogger(__name__)
rlog = RateLimitedLog(log)

P = TypeVar("P", bound=asyncio.BaseProtocol)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""The client connection preface (RFC 9113 §3.4)."""
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                        "upgrade"})
"""Connection-specific fields, never sent in HTTP/2 (RFC 9113 §8.2.2)."""
Router = Callable[[Request], Handler]


class _H2(h2.connection.H2Connection):
    """``h2``'s connection, with the concurrent-stream limit left to ``Http2Connection``.

    ``h2`` treats a stream over SETTINGS_MAX_CONCURRENT_STREAMS as a connection error
    (GOAWAY), and enforces the value from the first byte on, before the client can have seen
    it; RFC 9113 §5.1.2 asks for a stream error, which ``Http2Connection`` sends
    (REFUSED_STREAM).  So the count ``h2`` checks stays under the limit; reading it still
    forgets closed streams, as ``h2`` does."""

    @property
    def open_inbound_streams(self) -> int:
        count = super().open_inbound_streams
        return min(count, self.local_settings.max_concurrent_streams - 1)


class StreamTransport(asyncio.Transport):
    """The transport a taken-over stream's protocol writes to: one HTTP/2 stream."""

    __slots__ = ("_protocol", "_stream")

    def __init__(self, stream: H2Stream) -> None:
        super().__init__()
        self._stream = stream
        self._protocol: asyncio.BaseProtocol | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._stream.conn.send(self._stream, bytes(data))

    def get_write_buffer_size(self) -> int:
        return len(self._stream.out)

    def is_closing(self) -> bool:
        return self._stream.finishing or self._stream.gone

    def close(self) -> None:
        self._stream.conn.finish(self._stream)

    def abort(self) -> None:
        self._stream.conn.reset(self._stream, ErrorCodes.CANCEL)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        transport = self._stream.conn.transport
        return default if transport is None else transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def pause_reading(self) -> None:
        """Nothing to pause: a stream's input is its (bounded) request, or a WebSocket's
        frames, which its connection holds itself while it wants them held."""

    def resume_reading(self) -> None:
        """See ``pause_reading``."""

    def is_reading(self) -> bool:
        return not self.is_closing()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """END_STREAM once what the stream holds is sent (the half-close of HTTP/2)."""
        self._stream.conn.finish(self._stream)


class H2Stream:
    """One request and its answer: the ``Exchange`` of an endpoint on HTTP/2."""

    __slots__ = ("_lost", "answered", "body", "body_size", "conn", "finishing", "gone", "id",
                 "out", "received", "request", "tail", "transport")

    def __init__(self, conn: Http2Connection, stream_id: int) -> None:
        self.conn = conn
        self.id = stream_id
        self.request: Request | None = None
        self.body: list[bytes] = []
        self.body_size = 0
        self.received = False
        """The peer ended its side (the request is complete)."""
        self.answered = False
        """An answer is under way (the endpoint runs, or a refusal was sent): later DATA of
        the request is dropped."""
        self.out = bytearray()
        """DATA the peer's flow-control windows do not let out yet."""
        self.tail = bytearray()
        """A WebSocket's frames that arrived before its endpoint took the stream over."""
        self.finishing = False
        """END_STREAM is owed once ``out`` is sent."""
        self.gone = False
        """Ended (both sides done, or reset): nothing more is sent."""
        self.transport: StreamTransport | None = None
        self._lost: Callable[[], None] | None = None

    # -- Exchange --------------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        return self.gone or self.conn.closing

    def take_over(self, factory: Callable[[asyncio.Transport], P]) -> tuple[P, bytes]:
        request = self.request
        if request is not None and request.method == "HEAD":
            raise MethodNotAllowed(f"HEAD cannot open a stream on {request.path}: use GET",
                                   allow="GET")
        transport = StreamTransport(self)
        protocol = factory(transport)
        transport.set_protocol(protocol)
        self.transport = transport
        self._lost = None
        if self.gone and isinstance(protocol, asyncio.Protocol):
            # reset (or its connection lost) while the endpoint was deciding: the new owner
            # learns it at once, so it releases what it takes (a subscription) and nothing
            # stays behind (a client resetting streams as fast as it opens them)
            protocol.connection_lost(None)
        tail, self.tail = bytes(self.tail), bytearray()
        return protocol, tail

    def stream_head(self, request: Request, status: int,
                    headers: list[tuple[str, str]]) -> bytes:
        self.conn.send_head(self, status, headers, end_stream=False)
        return b""

    def extra_headers(self, request: Request) -> list[tuple[str, str]]:
        return self.conn.extra_headers(request)

    def watch_lost(self, callback: Callable[[], None]) -> None:
        self._lost = callback

    def forget_lost(self) -> None:
        self._lost = None

    # -- the end -----------------------------------------------------------------------------

    def ended(self) -> None:
        """The stream is over (answered, reset, or its connection lost): tell its owner."""
        if self.gone:
            return
        self.gone = True
        self.out = bytearray()
        transport = self.transport
        if transport is not None:
            protocol = transport._protocol
            if isinstance(protocol, asyncio.Protocol):
                protocol.connection_lost(None)
        elif self._lost is not None:
            lost, self._lost = self._lost, None
            lost()


class Http2Connection(asyncio.Protocol):
    """One HTTP/2 connection: its streams, their flow control, one socket write per turn."""

    def __init__(self, router: Router, *, max_head: int, max_url: int, max_body: int,
                 head_timeout: float, keepalive_timeout: float, max_streams: int,
                 extra_headers: Callable[[Request], list[tuple[str, str]]] | None = None,
                 on_done: Callable[[Http2Connection], None] | None = None,
                 lease: Lease | None = None, refused: Response | None = None,
                 on_answer: Answered | None = None) -> None:
        self._router = router
        self._on_answer = on_answer
        """Told of every answer sent (access log, counters: ``transports.stats``)."""
        self._max_head = max_head
        self._max_url = max_url
        self._max_body = max_body
        self._head_timeout = head_timeout
        self._keepalive_timeout = keepalive_timeout
        self._max_streams = max_streams
        self._extra_headers = extra_headers
        self._on_done = on_done
        self._lease = lease
        self._refused = refused
        """Over a connection budget: every request is answered with this, then GOAWAY."""
        self._h2 = _H2(h2.config.H2Configuration(
            client_side=False, header_encoding=None))
        self._streams: dict[int, H2Stream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._deadlines: dict[int, float] = {}
        """Streams whose request is incomplete: when they must be complete (408 after)."""
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._flush_scheduled = False
        self._paused = False
        self._stopping = False
        self.closing = False
        self.transport: asyncio.Transport | None = None
        self._client = ""

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self._client = f"{peer[0]}:{peer[1]}"
        self._h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self._max_streams,
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
            # RFC 8441: WebSockets as streams (extended CONNECT with :protocol websocket)
            h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
        self._h2.initiate_connection()
        self._flush()
        self._arm(self._head_timeout)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            for event in self._h2.receive_data(data):
                self._event(event)
        except h2.exceptions.ProtocolError as exc:
            # h2 has queued a GOAWAY with the error's code (RFC 9113 §5.4.1)
            rlog.info("h2-protocol", "HTTP/2 client %s broke the protocol: %s", self._client,
                      exc)
            self._close()
            return
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._cancel_timers()
        for stream in list(self._streams.values()):
            stream.ended()
        self._streams.clear()
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        if self._on_done is not None:
            on_done, self._on_done = self._on_done, None
            on_done(self)

    def pause_writing(self) -> None:
        """The socket's buffer is full: streams keep their DATA (their own buffers grow, so a
        peer that does not read becomes a slow consumer), and reading stops."""
        self._paused = True
        if self.transport is not None and not self.closing:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if self.transport is None or self.closing:
            return
        self.transport.resume_reading()
        self._pump_all()

    # -- events ------------------------------------------------------------------------------

    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._request(event.stream_id, event.headers or [])
        elif isinstance(event, h2.events.DataReceived):
            self._data(event)
        elif isinstance(event, h2.events.StreamEnded):
            self._request_ended(event.stream_id)
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self._pump_all()
        elif isinstance(event, h2.events.StreamReset):
            stream = self._streams.pop(event.stream_id, None)
            self._deadlines.pop(event.stream_id, None)
            if stream is not None:
                stream.ended()
                self._maybe_idle()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._close()

    def _request(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> None:
        if len(self._streams) >= self._max_streams or self._stopping:
            # RFC 9113 §5.1.2: a stream error; the client may retry it
            self._h2.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        stream = H2Stream(self, stream_id)
        self._streams[stream_id] = stream
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            stream.request = self._head(headers)
        except Refused as exc:
            self._refuse(stream, exc.response)
            return
        if self._refused is not None:
            self._refuse(stream, self._refused)
            self._stopping = True
            return
        if stream.request.upgrade:  # a WebSocket: its request never ends, it runs now
            self._dispatch(stream)
            return
        self._deadlines[stream_id] = asyncio.get_running_loop().time() + self._head_timeout
        self._arm_deadline()

    def _head(self, headers: list[tuple[bytes, bytes]]) -> Request:
        """The request of a HEADERS block, by the same rules as HTTP/1.1 (``parse_head``)."""
        pseudo: dict[bytes, bytes] = {}
        fields: list[tuple[bytes, bytes]] = []
        size = 0
        for name, value in headers:
            size += len(name) + len(value) + 4
            if name.startswith(b":"):
                pseudo[name] = value
            else:
                fields.append((name, value))
        if size > self._max_head:
            raise Refused(refusal(431, f"request head larger than {self._max_head} bytes",
                                  code=ErrorCode.LIMIT_EXCEEDED))
        method = pseudo.get(b":method", b"")
        tunnel = method == b"CONNECT"
        if tunnel:
            if pseudo.get(b":protocol") != b"websocket":
                raise Refused(refusal(405, "CONNECT is only for WebSocket here (RFC 8441 "
                                      ":protocol websocket)"))
            method = b"GET"  # the WebSocket endpoints' method: the route decides as usual
        target = pseudo.get(b":path", b"")
        if len(target) > self._max_url:
            raise Refused(refusal(414, f"URL longer than {self._max_url} bytes",
                                  code=ErrorCode.LIMIT_EXCEEDED))
        authority = pseudo.get(b":authority")
        if authority is not None and not any(name == b"host" for name, _ in fields):
            fields.append((b"host", authority))
        request = parse_head(method, target, fields, "2", max_body=self._max_body,
                             client=self._client, upgrade=tunnel)
        lease = self._lease
        if lease is not None and lease.proxied:
            request.client = lease.forwarded(request.headers) or self._client
        return request

    def _data(self, event: h2.events.DataReceived) -> None:
        stream_id = event.stream_id
        length = event.flow_controlled_length or 0
        if length:
            self._h2.acknowledge_received_data(length, stream_id)
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        data = event.data or b""
        if stream.request is not None and stream.request.upgrade:
            self._tunnel_data(stream, data)
            return
        if stream.answered:
            return  # a refused stream: its DATA is dropped
        stream.body_size += len(data)
        if stream.body_size > self._max_body:
            self._refuse(stream, refusal(413, f"body larger than {self._max_body} bytes",
                                         code=ErrorCode.LIMIT_EXCEEDED))
            return
        stream.body.append(data)

    def _request_ended(self, stream_id: int) -> None:
        self._deadlines.pop(stream_id, None)
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        stream.received = True
        transport = stream.transport
        if transport is not None and isinstance(transport._protocol, asyncio.Protocol):
            # a WebSocket whose client ended its side: like a TCP FIN
            if not transport._protocol.eof_received():
                transport.close()
            return
        if stream.answered:  # refused: retired once the refusal is sent
            return
        if stream.body and stream.request is not None:
            stream.request.body = b"".join(stream.body)
            stream.body = []
        self._dispatch(stream)

    def _dispatch(self, stream: H2Stream) -> None:
        """Run the endpoint of ``stream`` (in a task of its own)."""
        stream.answered = True
        task = asyncio.get_running_loop().create_task(self._serve(stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _tunnel_data(self, stream: H2Stream, data: bytes) -> None:
        """DATA of a WebSocket stream: its frames, for the connection that took it over, or
        kept until it does (bounded like a request body)."""
        transport = stream.transport
        if transport is not None:
            protocol = transport._protocol
            if isinstance(protocol, asyncio.Protocol) and not stream.gone:
                protocol.data_received(data)
            return
        stream.tail += data
        if len(stream.tail) > self._max_body:
            self.reset(stream, ErrorCodes.ENHANCE_YOUR_CALM)

    def _refuse(self, stream: H2Stream, response: Response) -> None:
        """Answer ``response`` without running an endpoint; the rest of the request is not
        read (RST_STREAM(NO_ERROR) once answered, RFC 9113 §8.1)."""
        self._deadlines.pop(stream.id, None)
        if stream.request is None:
            stream.request = Request("GET", "", {}, {}, version="2", client=self._client)
        stream.answered = True
        self.respond(stream, response)

    # -- answering -------------------------------------------------------------------------

    async def _serve(self, stream: H2Stream) -> None:
        """Run the endpoint of ``stream`` and send its answer (``HttpConnection._handle``'s
        rules: after a take-over, errors go to the stream's owner)."""
        request = stream.request
        assert request is not None
        try:
            handler = self._router(request)
            response = await handler(request, stream)
        except LivehubError as exc:
            if stream.transport is not None:
                rlog.warning("taken-over", "%s %s failed after take-over: %s", request.method,
                             request.path, exc.message)
                self._owner_failed(stream, exc)
                return
            response = error_response(exc)
        except Exception as exc:  # noqa: BLE001 - logged with its traceback (rate-limited)
            rlog.exception("http-handler", "handler failed for %s %s", request.method,
                           request.path)
            if stream.transport is not None:
                self._owner_failed(stream, exc)
                return
            response = Response.json({"error": {"code": 100, "message": "internal error"}}, 500)
        if response is None or stream.gone:
            return
        stream.forget_lost()
        self.respond(stream, response)
        self._schedule_flush()

    @staticmethod
    def _owner_failed(stream: H2Stream, exc: Exception) -> None:
        transport = stream.transport
        if transport is None:
            return
        protocol: object = transport._protocol
        if isinstance(protocol, Outgoing):
            protocol.fail(exc)
        else:
            transport.abort()

    def respond(self, stream: H2Stream, response: Response) -> None:
        """Send ``response`` on ``stream`` (HEADERS, DATA as the windows allow, END_STREAM)."""
        request = stream.request
        assert request is not None
        headers = [("content-type", response.content_type)]
        if not response.streamed:
            headers.append(("content-length", str(len(response.body))))
        headers.extend(self.extra_headers(request))
        headers.extend(response.headers)
        body = b"" if request.method == "HEAD" else response.body
        self.send_head(stream, response.status, headers, end_stream=not body)
        if self._on_answer is not None:
            self._on_answer(request, response, request.client or self._client, None)
        if body:
            self.send(stream, body)
            self.finish(stream)

    def extra_headers(self, request: Request) -> list[tuple[str, str]]:
        return [] if self._extra_headers is None else self._extra_headers(request)

    def send_head(self, stream: H2Stream, status: int, headers: list[tuple[str, str]], *,
                  end_stream: bool) -> None:
        if stream.gone or self.closing:
            return
        fields = [(":status", str(status))]
        for name, value in headers:
            lower = name.lower()
            if lower not in HOP_BY_HOP:
                fields.append((lower, value))
        self._h2.send_headers(stream.id, fields, end_stream=end_stream)
        if end_stream:
            self._sent_end(stream)
        self._schedule_flush()

    def send(self, stream: H2Stream, data: bytes) -> None:
        """DATA on ``stream``: sent now as far as the windows allow, the rest buffered."""
        if stream.gone or stream.finishing or self.closing:
            return
        if not stream.out and not self._paused:
            h2conn = self._h2
            if (len(data) <= h2conn.local_flow_control_window(stream.id)
                    and len(data) <= h2conn.max_outbound_frame_size):
                h2conn.send_data(stream.id, data)
                self._schedule_flush()
                return
        stream.out += data
        self._pump(stream)

    def finish(self, stream: H2Stream) -> None:
        """END_STREAM once what ``stream`` holds is sent."""
        if stream.gone or stream.finishing:
            return
        stream.finishing = True
        if not stream.out:
            self._end(stream)

    def reset(self, stream: H2Stream, code: ErrorCodes) -> None:
        """RST_STREAM: the stream ends now, what it holds is dropped."""
        if stream.gone:
            return
        self._streams.pop(stream.id, None)
        self._deadlines.pop(stream.id, None)
        if not self.closing:
            try:
                self._h2.reset_stream(stream.id, code)
            except h2.exceptions.StreamClosedError:
                log.debug("stream %d was closed already: no RST_STREAM owed", stream.id)
            self._schedule_flush()
        stream.ended()
        self._maybe_idle()

    def _pump(self, stream: H2Stream) -> None:
        out = stream.out
        h2conn = self._h2
        while out and not self._paused and not stream.gone:
            window = h2conn.local_flow_control_window(stream.id)
            if window <= 0:
                break
            size = min(window, h2conn.max_outbound_frame_size, len(out))
            h2conn.send_data(stream.id, bytes(out[:size]))
            del out[:size]
        if not out and stream.finishing:
            self._end(stream)
        self._schedule_flush()

    def _pump_all(self) -> None:
        if self.closing:
            return
        for stream in list(self._streams.values()):
            if stream.out:
                self._pump(stream)

    def _end(self, stream: H2Stream) -> None:
        if stream.gone or self.closing:
            return
        self._h2.end_stream(stream.id)
        self._sent_end(stream)
        self._schedule_flush()

    def _sent_end(self, stream: H2Stream) -> None:
        """Our side of ``stream`` is done; a request answered before it was complete (a
        refusal) is cut short with RST_STREAM(NO_ERROR) (RFC 9113 §8.1)."""
        if not stream.received and not self.closing:
            self._h2.reset_stream(stream.id, ErrorCodes.NO_ERROR)
        self._retire(stream)

    def _retire(self, stream: H2Stream) -> None:
        self._streams.pop(stream.id, None)
        self._deadlines.pop(stream.id, None)
        stream.ended()
        self._maybe_idle()

    # -- the socket ------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        data = self._h2.data_to_send()
        if data:
            transport.write(data)

    def _close(self) -> None:
        """Send what ``h2`` holds (a GOAWAY) and close the socket."""
        self._flush()
        self.closing = True
        self._cancel_timers()
        if self.transport is not None:
            self.transport.close()

    def _goaway(self, code: ErrorCodes = ErrorCodes.NO_ERROR, why: bytes | None = None) -> None:
        if not self.closing:
            self._h2.close_connection(code, additional_data=why)
            self._close()

    # -- timers ----------------------------------------------------------------------------

    def _arm(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_idle)

    def _maybe_idle(self) -> None:
        if self._streams or self.closing:
            return
        if self._stopping:
            self._goaway()
        else:
            self._arm(self._keepalive_timeout)

    def _on_idle(self) -> None:
        self._timer = None
        if not self._streams:
            self._goaway()

    def _arm_deadline(self) -> None:
        if self._deadline_timer is not None or not self._deadlines:
            return
        loop = asyncio.get_running_loop()
        first = min(self._deadlines.values())
        self._deadline_timer = loop.call_at(first, self._on_deadline)

    def _on_deadline(self) -> None:
        self._deadline_timer = None
        now = asyncio.get_running_loop().time()
        for stream_id, at in list(self._deadlines.items()):
            stream = self._streams.get(stream_id)
            if at <= now and stream is not None:
                self._refuse(stream, refusal(408, "request not received in time"))
        self._flush()
        self._arm_deadline()

    def _cancel_timers(self) -> None:
        for timer in (self._timer, self._deadline_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._deadline_timer = None

    # -- server stop -----------------------------------------------------------------------

    def shutdown(self) -> None:
        """Server stop: refuse new streams; GOAWAY once the open ones are answered (the
        long-lived ones are ended by the server's drain, which closes them)."""
        self._stopping = True
        if not self._streams:
            self._goaway()

    def abort(self) -> None:
        """Drop the connection at once (end of the server's drain time)."""
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


def switch(conn: Http2Connection, transport: asyncio.Transport, data: bytes) -> None:
    """Make ``conn`` the protocol of ``transport`` (after ALPN or the preface) and feed it the
    bytes already received."""
    transport.set_protocol(conn)
    conn.connection_made(transport)
    if data:
        conn.data_received(data)
    transport.resume_reading()
