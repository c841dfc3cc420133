"""HTTP/1.1 server connection on httptools: parsing, limits, keep-alive, flow control, takeover.

One ``HttpConnection`` per accepted socket.  Requests are parsed by httptools (llhttp) and
answered in order (pipelined requests wait their turn).  A handler returns a ``Response``, or
``None`` after it *took over* the connection (WebSocket upgrade, SSE, HTTP streaming), in which
case the socket now belongs to another protocol object and this one is dropped, so an idle
long-lived connection does not keep a parser, a task or request buffers.

Refusals (each answered with a fixed message and the connection closed, after the answers
owed to earlier pipelined requests): request line and headers over ``max_head`` bytes (431),
URL over ``max_url`` (414), body over ``max_body`` (413), a head not complete within
``head_timeout`` seconds (408), malformed HTTP (400), an HTTP/1.1 request without ``Host`` or
with two (400, RFC 9112 §3.2), HTTP/1.0 with ``Transfer-Encoding`` (400, RFC 9112 §6.1), a
version other than 1.0 and 1.1 (505; 0.9-style request lines 400), connection budgets (429 /
503, ``livehub.transports.admission``).

Flow control: when the transport's write buffer passes its high-water mark
(``pause_writing``), the connection stops reading and stops answering queued requests until it
drains below the low-water mark (``resume_writing``); a peer that never reads is dropped after
``keepalive_timeout``.  So a client pipelining requests without reading costs at most one
read's worth of parsed requests plus the transport's high-water mark.

``Expect: 100-continue`` (RFC 9110 §10.1.1): once the head is known to be acceptable (size,
route, method and the route's ``precheck``, e.g. the API key) the server sends ``100 Continue``
and then reads the body; otherwise it answers with the final status at once and closes.

An upgrade request stops the parser: every byte after it, in the same read or later, is kept
for the protocol that ``take_over`` installs (a WebSocket's first frame may arrive with the
handshake).

Errors: before a take-over, a handler's ``LivehubError`` is answered with its HTTP status and
anything else with a generic 500 (and a traceback in the log).  After a take-over the socket
is no longer this connection's: every error of the handler goes to the protocol that owns it
(``Outgoing.fail``: a documented close or disconnect code, then the connection is gone), never
to the socket as an HTTP answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import httptools

from livehub.codes import ErrorCode
from livehub.errors import LivehubError, MethodNotAllowed
from livehub.ratelog import RateLimitedLog
from livehub.transports.admission import Admission, Lease, canonical
from livehub.transports.messages import (
    CONTINUE,
    Refused,
    Request,
    Response,
    error_response,
    head_bytes,
    parse_head,
    parser_refusal,
    refusal,
    wants_continue,
)
from livehub.transports.outgoing import Outgoing
from livehub.transports.routing import Exchange, Handler
from livehub.transports.stats import Answered

__all__ = ["Exchange", "Handler", "HttpConnection", "HttpLimits", "Request", "Response",
           "Router", "error_response", "head_bytes"]

log = logging.getLogger(__name__)
rlog = RateLimitedLog(log)

P = TypeVar("P", bound=asyncio.BaseProtocol)

H2_PREFACE = b"PRI * HTTP/2.0\r\n"
"""How the HTTP/2 connection preface starts (RFC 9113 §3.4)."""
LINGER = 2.0
"""Seconds a rejected connection is drained before it is closed."""

Router = Callable[[Request], Handler]
"""Finds the handler of a request (raising ``LivehubError`` for 404/405)."""
ToHttp2 = Callable[[asyncio.Transport, Lease | None, Response | None, bytes], None]
"""Hands a socket over to HTTP/2 (``transports.h2``): with its budget lease, the refusal owed
to it if it is over a budget, and the bytes already received."""
Precheck = Callable[[Request], None]
"""Judges a request from its head alone (route, method, credentials), raising
``LivehubError``; run before ``100 Continue`` is sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpLimits:
    max_head: int = 64 * 1024
    max_url: int = 8 * 1024
    max_body: int = 1024 * 1024
    head_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    max_pipelined: int = 32


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; ``HttpConnection._fail`` says why."""


class HttpConnection(asyncio.Protocol):
    """One HTTP/1.1 connection until it closes or is taken over; the ``Exchange`` of the
    request it is answering (HTTP/1.1 answers one request at a time)."""

    def __init__(self, router: Router, *, limits: HttpLimits,
                 extra_headers: Callable[[Request], list[tuple[str, str]]] | None = None,
                 on_done: Callable[[HttpConnection], None] | None = None,
                 precheck: Precheck | None = None,
                 admission: Admission | None = None,
                 http2: ToHttp2 | None = None,
                 on_answer: Answered | None = None) -> None:
        self._router = router
        self._http2 = http2
        """Makes this connection HTTP/2 (ALPN ``h2``, or the preface on the first read)."""
        self._first_read = http2 is not None
        self._on_answer = on_answer
        """Told of every answer sent (access log, counters: ``transports.stats``)."""
        self._started: float | None = None
        self._limits = limits
        self._extra_headers = extra_headers
        self._on_done = on_done
        """Called once when the connection is lost or taken over (the server's registry)."""
        self._precheck = precheck
        self._admission = admission
        self._lease: Lease | None = None
        self._refusal: Response | None = None
        """Over a connection budget: the answer to the first request."""
        self._client = ""
        self._stopping = False
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[Request] = deque()
        self._busy = False
        self._closing = False
        self._taken_over = False
        self._owner: tuple[asyncio.BaseProtocol, asyncio.Transport] | None = None
        """The protocol that took the socket over and the socket (for the handler's errors)."""
        self._timer: asyncio.TimerHandle | None = None
        self._fail: Response | None = None
        self._deferred: Response | None = None
        """A refusal that waits for the answers owed to earlier pipelined requests."""
        self._request: Request | None = None
        """The request being parsed (known from its head on)."""
        self._current: Request | None = None
        """The request being answered."""
        self._on_lost: Callable[[], None] | None = None
        self._write_paused = False
        self._continue_for: Request | None = None
        """A request whose client waits for ``100 Continue`` behind earlier answers."""
        self._upgrade_tail = b""
        self._upgraded = False
        """An upgrade request was parsed: later bytes belong to the protocol it asks for
        (``take_over`` hands them over), never to the HTTP parser."""
        self._reset_message()

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        ip = ""
        if isinstance(peer, tuple):
            ip = canonical(peer[0])
            self._client = f"{peer[0]}:{peer[1]}"
        self._arm_timer(self._limits.head_timeout)
        if self._admission is not None:
            self._lease = Lease(self._admission, ip)
            sock = transport.get_extra_info("socket")
            refused = self._lease.take(sock.fileno() if sock is not None else -1)
            if refused is not None:
                # answered once the request head is in: an answer before the request races
                # with clients still sending it (and a WebSocket client then sees no status)
                self._refusal = refused
                self._arm_timer(LINGER)
        if self._http2 is not None:
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
                self._to_http2(b"")

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lease is not None:
            self._lease.release()
        if self._on_lost is not None:
            on_lost, self._on_lost = self._on_lost, None
            on_lost()
        self._done()

    def _done(self) -> None:
        if self._on_done is not None:
            on_done, self._on_done = self._on_done, None
            on_done(self)

    def pause_writing(self) -> None:
        """The transport's buffer is above its high-water mark: stop reading and answering."""
        self._write_paused = True
        if self.transport is not None and not self._closing:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._closing or self.transport is None:
            return
        self._update_reading()
        self._maybe_start()

    def data_received(self, data: bytes) -> None:
        if self._closing or self._taken_over or self._deferred is not None:
            return
        if self._first_read:
            self._first_read = False
            if data.startswith(H2_PREFACE):  # h2c with prior knowledge (RFC 9113 §3.3)
                self._to_http2(data)
                return
        if self._upgraded:
            self._upgrade_tail += data
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgrade_tail = data[exc.args[0]:] if exc.args else b""
            self._maybe_start()
        except httptools.HttpParserCallbackError:
            self._reject(self._fail or refusal(400, "malformed HTTP request"))
        except httptools.HttpParserError as exc:
            self._reject(parser_refusal(exc))

    # -- httptools callbacks -------------------------------------------------------------------

    def _reset_message(self) -> None:
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._fail = None
        self._request = None
        self._upgrade_tail = b""

    def _refuse(self, response: Response) -> NoReturn:
        """Stop parsing from inside a callback; ``data_received`` answers ``response``."""
        self._fail = response
        raise _Refused

    def on_message_begin(self) -> None:
        self._reset_message()
        if self._timer is None or self._queue:
            return
        self._arm_timer(self._limits.head_timeout)

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.max_url:
            self._refuse(refusal(414, f"URL longer than {self._limits.max_url} bytes",
                                 code=ErrorCode.LIMIT_EXCEEDED))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self._limits.max_head:
            self._refuse(refusal(431, f"request head larger than {self._limits.max_head} "
                                 "bytes", code=ErrorCode.LIMIT_EXCEEDED))
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._refusal is not None:
            self._refuse(self._refusal)
        parser = self._parser
        try:
            self._request = request = parse_head(
                parser.get_method(), self._url, self._headers, parser.get_http_version(),
                max_body=self._limits.max_body, client=self._client,
                keep_alive=parser.should_keep_alive(), upgrade=parser.should_upgrade())
            if self._lease is not None and self._lease.proxied:
                request.client = self._lease.forwarded(request.headers) or self._client
            if wants_continue(request):
                self._expect(request)
        except Refused as exc:
            self._refuse(exc.response)

    def _expect(self, request: Request) -> None:
        """``Expect: 100-continue`` (RFC 9110 §10.1.1): judge the head, then ask for the
        body."""
        if self._precheck is not None:
            try:
                self._precheck(request)
            except LivehubError as exc:
                raise Refused(error_response(exc)) from None
        if self._busy or self._queue:
            self._continue_for = request  # after the answers to the requests before it
        elif self.transport is not None:
            self.transport.write(CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._limits.max_body:
            self._refuse(refusal(413, f"body larger than {self._limits.max_body} bytes",
                                 code=ErrorCode.LIMIT_EXCEEDED))
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = self._request
        if request is None:  # no head callback: cannot happen with llhttp
            self._refuse(refusal(400, "malformed HTTP request"))
        self._request = None
        if self._body:
            request.body = b"".join(self._body)
        self._queue.append(request)
        if request.upgrade:
            # stop reading until the handler takes over (or answers and closes): what
            # arrives meanwhile is held for the new protocol, one read at most
            self._upgraded = True
            if self.transport is not None:
                self.transport.pause_reading()
            return
        if len(self._queue) > self._limits.max_pipelined and self.transport is not None:
            self.transport.pause_reading()
        self._maybe_start()

    # -- dispatch ---------------------------------------------------------------------------

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or self._closing:
            return
        if (self._write_paused or self._upgraded or self._deferred is not None
                or len(self._queue) > self._limits.max_pipelined):
            transport.pause_reading()
        else:
            transport.resume_reading()

    def _maybe_start(self) -> None:
        if self._busy or not self._queue or self._closing:
            return
        self._busy = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        asyncio.get_running_loop().create_task(self._serve_queue())

    async def _serve_queue(self) -> None:
        """Answer queued requests in order, in one task: pipelined requests whose handlers
        do not suspend (a publish on the in-memory broker) are all served in the same loop
        iteration, so their fan-out shares one write per subscriber.  While the peer does
        not read (writes paused) no request is answered; ``resume_writing`` restarts."""
        while self._queue and not self._closing:
            if self._write_paused:
                self._busy = False
                # a peer that never reads again is dropped (``_on_timeout``)
                self._arm_timer(self._limits.keepalive_timeout)
                return
            request = self._queue.popleft()
            if request is self._continue_for:
                self._continue_for = None  # its body is in: the 100 is not owed any more
            if not await self._handle(request):
                return  # taken over
        self._busy = False
        if self._closing or self.transport is None:
            return
        if self._deferred is not None:
            self._close_with(self._deferred)
            return
        if self._continue_for is not None:
            self._continue_for = None
            self.transport.write(CONTINUE)
        self._update_reading()
        self._arm_timer(self._limits.keepalive_timeout)

    async def _handle(self, request: Request) -> bool:
        """Answer one request; False if its handler took the connection over."""
        self._current = request
        self._started = time.monotonic()
        try:
            handler = self._router(request)
            response = await handler(request, self)
        except LivehubError as exc:
            if self._taken_over:
                rlog.warning("taken-over", "%s %s failed after take-over: %s", request.method,
                             request.path, exc.message)
                return self._owner_failed(exc)
            response = error_response(exc)
        except Exception as exc:  # noqa: BLE001 - logged with its traceback (rate-limited)
            rlog.exception("http-handler", "handler failed for %s %s", request.method,
                           request.path)
            if self._taken_over:
                return self._owner_failed(exc)
            response = Response.json({"error": {"code": 100, "message": "internal error"}}, 500)
        self._current = None
        if response is None:
            return False
        self._on_lost = None
        if request.upgrade and response.status < 300:
            # an upgrade request answered with a plain response: nothing more to read safely
            request.keep_alive = False
        self.send_response(request, response)
        self._update_reading()
        return True

    def _owner_failed(self, exc: Exception) -> bool:
        """The handler failed after the socket was taken over: its owner ends it."""
        self._current = None
        owned, self._owner = self._owner, None
        if owned is not None:
            protocol, transport = owned
            if isinstance(protocol, Outgoing):
                protocol.fail(exc)
            else:  # a protocol that cannot say why on its wire
                transport.abort()
        return False

    def send_response(self, request: Request, response: Response) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        keep_alive = (request.keep_alive and not request.upgrade and response.status < 500
                      and not self._stopping)
        headers = [("content-type", response.content_type)]
        if not response.streamed:
            headers.append(("content-length", str(len(response.body))))
        if self._extra_headers is not None:
            headers.extend(self._extra_headers(request))
        headers.extend(response.headers)
        if not keep_alive:
            headers.append(("connection", "close"))
        body = b"" if request.method == "HEAD" else response.body
        transport.write(head_bytes(response.status, headers) + body)
        if self._on_answer is not None:
            self._on_answer(request, response, request.client or self._client, self._started)
        if not keep_alive:
            self._closing = True
            transport.close()

    def _reject(self, response: Response) -> None:
        """Refuse what the parser stopped at, after the answers owed to earlier requests."""
        if self._busy or self._queue:
            self._deferred = response
            if self.transport is not None:
                self.transport.pause_reading()
            return
        self._close_with(response)

    def _close_with(self, response: Response) -> None:
        """Answer ``response`` with ``connection: close``, then close."""
        self._closing = True
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        headers = [("content-type", response.content_type),
                   ("content-length", str(len(response.body))), *response.headers,
                   ("connection", "close")]
        transport.write(head_bytes(response.status, headers) + response.body)
        if self._on_answer is not None:
            self._on_answer(self._request, response, self._client, None)
        # Half-close and drain: closing with unread input would reset the connection and the
        # client would never see the answer.  Whatever else arrives is discarded.
        if transport.can_write_eof():
            transport.write_eof()
        transport.resume_reading()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(LINGER, transport.close)

    def _arm_timer(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timeout)

    def _on_timeout(self) -> None:
        self._timer = None
        if self._closing or self._taken_over or self.transport is None:
            return
        if self._write_paused:
            # the peer has not read our answers for a whole keep-alive period
            self._closing = True
            self.transport.abort()
            return
        if self._busy:
            return
        if self._url or self._headers:
            self._reject(refusal(408, "request head not received in time"))
        else:
            self._closing = True
            self.transport.close()

    # -- server stop ------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Server stop: close now when idle; a request being answered gets its response with
        ``connection: close``, then the connection closes (a long-poll stops waiting and
        answers with what it has: its ``watch_lost`` callback is called)."""
        self._stopping = True
        if self._on_lost is not None and not self._taken_over:
            on_lost, self._on_lost = self._on_lost, None
            on_lost()
        if self._busy or self._taken_over or self._closing or self.transport is None:
            return
        self._closing = True
        self.transport.close()

    def abort(self) -> None:
        """Drop the connection at once (end of the server's drain time)."""
        if not self._taken_over and self.transport is not None:
            self._closing = True
            self.transport.abort()

    # -- takeover ---------------------------------------------------------------------------

    def take_over(self, factory: Callable[[asyncio.Transport], P]) -> tuple[P, bytes]:
        """Hand the socket to the protocol ``factory`` builds on it; return that protocol and
        the bytes already received after the request (the start of its stream: a WebSocket
        frame glued to the handshake), which the caller feeds once it has answered.

        A HEAD request is never taken over (it gets headers only, RFC 9110 §9.3.2): an
        endpoint that does not answer HEAD itself gets 405 here."""
        transport = self.transport
        assert transport is not None, "take_over after the connection was lost"
        current = self._current
        if current is not None and current.method == "HEAD":
            raise MethodNotAllowed(f"HEAD cannot open a stream on {current.path}: use GET",
                                   allow="GET")
        self._taken_over = True
        self._on_lost = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        protocol = factory(transport)
        self._owner = (protocol, transport)
        tail = self._upgrade_tail
        self._upgrade_tail = b""
        self.transport = None
        self._parser = None  # type: ignore[assignment]
        if self._closing and transport.is_closing():
            # the client left while the endpoint was deciding (connection_lost has run and
            # released the lease): the new owner learns it at once, so it releases what it
            # takes (a subscription) and nothing stays behind
            if isinstance(protocol, asyncio.Protocol):
                protocol.connection_lost(None)
            return protocol, tail
        transport.set_protocol(protocol)
        if self._lease is not None:
            self._lease.hand_over(transport)
        transport.resume_reading()
        self._done()
        return protocol, tail

    def _to_http2(self, data: bytes) -> None:
        """Hand the socket, its lease and ``data`` to an HTTP/2 connection."""
        transport = self.transport
        assert transport is not None and self._http2 is not None
        self._taken_over = True
        self._first_read = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lease, self._lease = self._lease, None
        self.transport = None
        self._parser = None  # type: ignore[assignment]
        self._done()
        self._http2(transport, lease, self._refusal, data)

    def watch_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` if the client goes away, or the server stops, while the current
        request is being answered (a long-poll then stops waiting); forgotten once the answer
        is sent."""
        self._on_lost = callback

    def extra_headers(self, request: Request) -> list[tuple[str, str]]:
        return [] if self._extra_headers is None else self._extra_headers(request)

    def stream_head(self, request: Request, status: int,
                    headers: list[tuple[str, str]]) -> bytes:
        """The head of a taken-over response, for its new owner to write first."""
        return head_bytes(status, headers)

    @property
    def closing(self) -> bool:
        return self._closing
