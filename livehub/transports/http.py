"""HTTP/1.1 server connection on httptools: parsing, limits, keep-alive, routing, takeover.

One ``HttpConnection`` per accepted socket.  Requests are parsed by httptools (llhttp) and
answered in order (pipelined requests wait their turn).  A handler returns a ``Response``, or
``None`` after it *took over* the connection (WebSocket upgrade, SSE, HTTP streaming), in which
case the socket now belongs to another protocol object and this one is dropped, so an idle
long-lived connection does not keep a parser, a task or request buffers.

Limits (each answered with a status and the connection closed): request line and headers over
``max_head`` bytes (431), URL over ``max_url`` (414), body over ``max_body`` (413), a head not
complete within ``head_timeout`` seconds (408), malformed HTTP (400).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TypeVar
from urllib.parse import parse_qs, unquote

import httptools

from livehub.errors import LivehubError
from livehub.ratelog import RateLimitedLog
from livehub.wire import validation

log = logging.getLogger(__name__)
rlog = RateLimitedLog(log)

P = TypeVar("P", bound=asyncio.BaseProtocol)

LINGER = 2.0
"""Seconds a rejected connection is drained before it is closed."""


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    keep_alive: bool = True
    upgrade: bool = False
    client: str = ""

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def json(self, *, max_depth: int = validation.MAX_DEPTH) -> object:
        """The body as strict JSON (``livehub.wire.validation``); ``BadRequest`` if not."""
        return validation.loads(self.body, max_depth=max_depth)


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, value: object, status: int = 200) -> Response:
        return cls(status, json.dumps(value, separators=(",", ":")).encode(), "application/json")


def error_response(exc: LivehubError) -> Response:
    resp = Response.json({"error": {"code": exc.error_code, "message": exc.message}},
                         exc.http_status)
    for name, value in getattr(exc, "headers", ()):
        resp.headers.append((name.decode("latin-1") if isinstance(name, bytes) else name,
                             value.decode("latin-1") if isinstance(value, bytes) else value))
    return resp


Handler = Callable[[Request, "HttpConnection"], Awaitable[Response | None]]
Router = Callable[[Request], Handler]
"""Finds the handler of a request (raising ``LivehubError`` for 404/405)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpLimits:
    max_head: int = 64 * 1024
    max_url: int = 8 * 1024
    max_body: int = 1024 * 1024
    head_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    max_pipelined: int = 32


def head_bytes(status: int, headers: list[tuple[str, str]]) -> bytes:
    """Status line and headers of an HTTP/1.1 response, ending with the empty line."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines.extend(f"{k}: {v}" for k, v in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpConnection(asyncio.Protocol):
    """One HTTP/1.1 connection until it closes or is taken over."""

    def __init__(self, router: Router, *, limits: HttpLimits,
                 extra_headers: Callable[[Request], list[tuple[str, str]]] | None = None,
                 on_done: Callable[[HttpConnection], None] | None = None) -> None:
        self._router = router
        self._limits = limits
        self._extra_headers = extra_headers
        self._on_done = on_done
        """Called once when the connection is lost or taken over (the server's registry)."""
        self._stopping = False
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[Request] = deque()
        self._busy = False
        self._closing = False
        self._taken_over = False
        self._timer: asyncio.TimerHandle | None = None
        self._fail: tuple[int, str] | None = None
        self._upgrade_tail = b""
        self._upgraded = False
        """An upgrade request was parsed: later bytes belong to the protocol it asks for
        (``take_over`` hands them over), never to the HTTP parser."""
        self._reset_message()

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._arm_timer(self._limits.head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._done()

    def _done(self) -> None:
        if self._on_done is not None:
            on_done, self._on_done = self._on_done, None
            on_done(self)

    def data_received(self, data: bytes) -> None:
        if self._closing or self._taken_over:
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
            if self._fail is None:
                self._fail = (400, "bad request")
            self._reject(*self._fail)
        except httptools.HttpParserError as exc:
            self._reject(400, f"malformed HTTP request: {exc}")

    # -- httptools callbacks -------------------------------------------------------------------

    def _reset_message(self) -> None:
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._fail = None
        self._upgrade_tail = b""

    def on_message_begin(self) -> None:
        self._reset_message()
        if self._timer is None or self._queue:
            return
        self._arm_timer(self._limits.head_timeout)

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.max_url:
            self._fail = (414, "URL too long")
            raise ValueError("url too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self._limits.max_head:
            self._fail = (431, "request headers too large")
            raise ValueError("headers too large")
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        for name, value in self._headers:
            if name.lower() == b"content-length":
                try:
                    size = int(value)
                except ValueError:
                    size = 0
                if size > self._limits.max_body:
                    self._fail = (413, f"body larger than {self._limits.max_body} bytes")
                    raise ValueError("body too large")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._limits.max_body:
            self._fail = (413, f"body larger than {self._limits.max_body} bytes")
            raise ValueError("body too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        headers: dict[str, str] = {}
        for raw_name, raw_value in self._headers:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        try:
            url = httptools.parse_url(self._url)
        except httptools.HttpParserInvalidURLError:
            self._fail = (400, "malformed URL")
            raise ValueError("bad url") from None
        path = unquote(url.path.decode("latin-1")) if url.path else "/"
        query = parse_qs(url.query.decode("latin-1"), keep_blank_values=True) if url.query else {}
        peer = self.transport.get_extra_info("peername") if self.transport else None
        request = Request(
            method=parser.get_method().decode(), path=path, query=query, headers=headers,
            body=b"".join(self._body), keep_alive=parser.should_keep_alive(),
            upgrade=parser.should_upgrade(),
            client=f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "")
        self._queue.append(request)
        if request.upgrade:
            # stop reading until the handler takes over (or answers and closes): what
            # arrives meanwhile is held for the new protocol, one read at most
            self._upgraded = True
            if self.transport is not None:
                self.transport.pause_reading()
        elif len(self._queue) > self._limits.max_pipelined and self.transport is not None:
            self.transport.pause_reading()
        if not request.upgrade:
            self._maybe_start()

    # -- dispatch ---------------------------------------------------------------------------

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
        iteration, so their fan-out shares one write per subscriber."""
        while self._queue and not self._closing:
            request = self._queue.popleft()
            if not await self._handle(request):
                return  # taken over
        self._busy = False
        if self._closing:
            return
        if self.transport is not None:
            if not self._upgraded:
                self.transport.resume_reading()
            self._arm_timer(self._limits.keepalive_timeout)

    async def _handle(self, request: Request) -> bool:
        """Answer one request; False if its handler took the connection over."""
        try:
            handler = self._router(request)
            response = await handler(request, self)
        except LivehubError as exc:
            response = error_response(exc)
        except Exception:  # noqa: BLE001 - logged with its traceback (rate-limited)
            rlog.exception("http-handler", "handler failed for %s %s", request.method,
                           request.path)
            response = Response.json({"error": {"code": 100, "message": "internal error"}}, 500)
        if response is None:
            return False
        if request.upgrade and response.status < 300:
            # an upgrade request answered with a plain response: nothing more to read safely
            request.keep_alive = False
        self.send_response(request, response)
        if (not self._closing and not self._upgraded and self.transport is not None
                and len(self._queue) <= self._limits.max_pipelined):
            self.transport.resume_reading()
        return True

    def send_response(self, request: Request, response: Response) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        keep_alive = (request.keep_alive and not request.upgrade and response.status < 500
                      and not self._stopping)
        headers = [("content-type", response.content_type),
                   ("content-length", str(len(response.body)))]
        if self._extra_headers is not None:
            headers.extend(self._extra_headers(request))
        headers.extend(response.headers)
        if not keep_alive:
            headers.append(("connection", "close"))
        body = b"" if request.method == "HEAD" else response.body
        transport.write(head_bytes(response.status, headers) + body)
        if not keep_alive:
            self._closing = True
            transport.close()

    def _reject(self, status: int, message: str) -> None:
        """Answer a request we could not parse, then close."""
        self._closing = True
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        body = json.dumps({"error": {"code": 107, "message": message}}).encode()
        headers = [("content-type", "application/json"), ("content-length", str(len(body))),
                   ("connection", "close")]
        transport.write(head_bytes(status, headers) + body)
        # Half-close and drain: closing with unread input would reset the connection and the
        # client would never see the answer.  Whatever else arrives is discarded.
        if transport.can_write_eof():
            transport.write_eof()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(LINGER, transport.close)

    def _arm_timer(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timeout)

    def _on_timeout(self) -> None:
        self._timer = None
        if self._closing:
            return
        if self._busy or self._taken_over or self.transport is None:
            return
        if self._url or self._headers:
            self._reject(408, "request head not received in time")
        else:
            self._closing = True
            self.transport.close()

    # -- server stop ------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Server stop: close now when idle; a request being answered gets its response with
        ``connection: close``, then the connection closes."""
        self._stopping = True
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
        frame glued to the handshake), which the caller feeds once it has answered."""
        transport = self.transport
        assert transport is not None, "take_over after the connection was lost"
        self._taken_over = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        protocol = factory(transport)
        transport.set_protocol(protocol)
        tail = self._upgrade_tail
        self._upgrade_tail = b""
        self.transport = None
        self._parser = None  # type: ignore[assignment]
        transport.resume_reading()
        self._done()
        return protocol, tail

    def extra_headers(self, request: Request) -> list[tuple[str, str]]:
        return [] if self._extra_headers is None else self._extra_headers(request)

    @property
    def closing(self) -> bool:
        return self._closing
