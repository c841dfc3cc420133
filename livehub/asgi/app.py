"""``AsgiApp``: the hub's endpoints as an ASGI 3.0 application (the second front end).

It is not a second implementation: each request is turned into the same ``Request`` the fast
server parses, routed by the same router to the same endpoint of the same protocol plug-in,
and answered through an ``AsgiExchange`` (``asgi.exchange``) instead of an ``HttpConnection``.
Cursors, resume, reset, the slow-consumer rule, credentials and permissions, heartbeats and
encode-once fan-out are therefore the fast server's own.  What the host's ASGI server does
instead of livehub: HTTP parsing and framing, the WebSocket handshake's bytes, frames and
pings, and compression (none: permessage-deflate is not offered under ASGI, since one
compressed frame could not be shared between connections the ASGI server frames itself).

Mounted under a prefix (``app.mount("/live", hub.asgi())``), the route is the path below the
mount (``root_path``, as Starlette and Django set it); ``prefix`` strips one more.  Paths that
are not the hub's go to ``fallback`` when given (a Django app), else get the hub's 404.

``authenticate(scope)``, when given, names the user of a request from the host app's own
session (Starlette's ``scope["session"]``, Django's session cookie): every endpoint then treats
the request as that user's (``Request.user``: the plain endpoints' credentials check, a
Centrifugo connect without a token); ``None`` falls back to tokens, then anonymous.  The hook
is asked only for requests without an ``Origin``, from the same origin, or from one listed in
``allowed_origins`` (``session_allowed``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from livehub.asgi.exchange import AsgiExchange
from livehub.asgi.types import ASGIApp, Receive, Scope, Send
from livehub.errors import LivehubError
from livehub.ratelog import RateLimitedLog
from livehub.transports.context import ServerContext
from livehub.transports.messages import Request, Response, error_response, refusal
from livehub.transports.outgoing import Outgoing
from livehub.transports.routing import Handler

log = logging.getLogger(__name__)
rlog = RateLimitedLog(log)

Authenticate = Callable[[Scope], "str | Awaitable[str | None] | None"]
"""The host app's hook: the user id of an ASGI request (its session), or None."""


class Site(Protocol):
    """What the adapter needs from the composition root (``livehub.app.App`` is one)."""

    @property
    def ctx(self) -> ServerContext: ...

    def find(self, request: Request) -> Handler: ...

    def cors_headers(self, request: Request) -> list[tuple[str, str]]: ...


_WS_HEADERS = {"upgrade": "websocket", "connection": "Upgrade", "sec-websocket-version": "13"}
"""What the handshake check needs and an ASGI server already checked (and may not pass on)."""
_WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
"""Any valid key (RFC 6455 §1.3's example): the ASGI server answers the real one."""


class AsgiApp:
    """The ASGI application of a hub (``livehub.Hub.asgi``)."""

    def __init__(self, site: Callable[[], Awaitable[Site]], *, prefix: str = "",
                 authenticate: Authenticate | None = None, fallback: ASGIApp | None = None,
                 lifespan: tuple[Callable[[], Awaitable[None]],
                                 Callable[[], Awaitable[None]]] | None = None) -> None:
        self._site = site
        self._prefix = prefix.rstrip("/")
        self._authenticate = authenticate
        self._fallback = fallback
        self._lifespan = lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._run_lifespan(receive, send)
            return
        if kind not in ("http", "websocket"):
            return
        path = route_path(scope)
        if self._prefix:
            if path != self._prefix and not path.startswith(self._prefix + "/"):
                if self._fallback is not None:
                    await self._fallback(scope, receive, send)
                    return
            else:
                path = path[len(self._prefix):] or "/"
        site = await self._site()
        if self._fallback is not None and not self._ours(site, path):
            await self._fallback(scope, receive, send)
            return
        if kind == "websocket":
            await self._websocket(site, scope, path, receive, send)
        else:
            await self._http(site, scope, path, receive, send)

    @staticmethod
    def _ours(site: Site, path: str) -> bool:
        routes = getattr(site, "routes", None)
        return routes is None or path in routes

    # -- lifespan ----------------------------------------------------------------------------

    async def _run_lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self._lifespan is not None:
                        await self._lifespan[0]()
                except Exception as exc:  # noqa: BLE001 - reported to the ASGI server
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._lifespan is not None:
                    await self._lifespan[1]()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- http ----------------------------------------------------------------------------------

    async def _http(self, site: Site, scope: Scope, path: str, receive: Receive,
                    send: Send) -> None:
        request = make_request(scope, path)
        limit = site.ctx.settings.max_body
        body: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await send_response(send, request, refusal(413, f"body larger than {limit} "
                                                           "bytes"), [])
                return
            body.append(chunk)
            more = message.get("more_body", False)
        request.body = b"".join(body)
        exchange = AsgiExchange("http", receive, send, peer=peer(scope),
                                extra_headers=site.cors_headers)
        response = await self._answer(site, scope, request, exchange)
        if response is not None:
            await send_response(send, request, response, site.cors_headers(request))
        elif exchange.transport is not None:
            await exchange.run()

    async def _answer(self, site: Site, scope: Scope, request: Request,
                      exchange: AsgiExchange) -> Response | None:
        """Run the endpoint as ``HttpConnection._handle`` does: a ``LivehubError`` before a
        take-over is answered with its status; after it, the connection fails with its
        documented code."""
        exchange.current = request
        try:
            if self._authenticate is not None and session_allowed(
                    request, site.ctx.settings.allowed_origins):
                user = self._authenticate(scope)
                request.user = await user if inspect.isawaitable(user) else user
            return await site.find(request)(request, exchange)
        except LivehubError as exc:
            if exchange.protocol is None:
                return error_response(exc)
            rlog.warning("asgi-taken-over", "%s %s failed after take-over: %s",
                         request.method, request.path, exc.message)
            self._owner_failed(exchange, exc)
        except Exception as exc:  # noqa: BLE001 - logged with its traceback (rate-limited)
            rlog.exception("asgi-handler", "handler failed for %s %s", request.method,
                           request.path)
            if exchange.protocol is None:
                return Response.json({"error": {"code": 100, "message": "internal error"}},
                                     500)
            self._owner_failed(exchange, exc)
        finally:
            exchange.stop_watching()
            exchange.current = None
        return None

    @staticmethod
    def _owner_failed(exchange: AsgiExchange, exc: Exception) -> None:
        protocol: object = exchange.protocol
        if isinstance(protocol, Outgoing):
            protocol.fail(exc)
        elif exchange.transport is not None:
            exchange.transport.abort()

    # -- websocket -----------------------------------------------------------------------------

    async def _websocket(self, site: Site, scope: Scope, path: str, receive: Receive,
                         send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        request = make_request(scope, path)
        exchange = AsgiExchange("websocket", receive, send, peer=peer(scope),
                                extra_headers=site.cors_headers)
        response = await self._answer(site, scope, request, exchange)
        if response is not None:
            await refuse_websocket(scope, send, response)
        elif exchange.transport is not None:
            await exchange.run()


def session_allowed(request: Request, allowed_origins: Sequence[str]) -> bool:
    """Whether the host app's session may speak for ``request``: no ``Origin`` (not a
    browser), the same origin, or one listed in ``allowed_origins`` (never through ``*``).
    Another site's page would otherwise borrow the user's session cookie (cross-site
    WebSocket hijacking), as the token cookie rule of ``protocols.credentials`` says."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    if origin != "null" and urlsplit(origin).netloc.lower() == host.lower():
        return True
    return origin in allowed_origins and origin != "*"


def route_path(scope: Scope) -> str:
    """The path below the mount point (``root_path``), as Starlette's routing computes it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root):] or "/"
    return path


def peer(scope: Scope) -> tuple[str, int] | None:
    client = scope.get("client")
    return (str(client[0]), int(client[1])) if client else None


def make_request(scope: Scope, path: str) -> Request:
    """The ``Request`` the endpoints know, from an ASGI scope (lower-case names, repeated
    fields joined with ", ", as ``transports.messages.parse_head`` makes them)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    websocket = scope["type"] == "websocket"
    if websocket:
        headers.pop("sec-websocket-extensions", None)  # no permessage-deflate under ASGI
        headers.update(_WS_HEADERS)
        headers.setdefault("sec-websocket-key", _WS_KEY)
    raw_query = scope.get("query_string", b"").decode("latin-1")
    query = parse_qs(raw_query, keep_blank_values=True) if raw_query else {}
    client = peer(scope)
    version = scope.get("http_version", "1.1")
    return Request(method="GET" if websocket else scope.get("method", "GET"), path=path,
                   query=query, headers=headers, upgrade=websocket,
                   client=f"{client[0]}:{client[1]}" if client else "",
                   version=version if version in ("1.0", "2") else "1.1")


async def send_response(send: Send, request: Request, response: Response,
                        extra: list[tuple[str, str]]) -> None:
    headers = [("content-type", response.content_type)]
    if not response.streamed:
        headers.append(("content-length", str(len(response.body))))
    headers.extend(extra)
    headers.extend(response.headers)
    await send({"type": "http.response.start", "status": response.status,
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                            for k, v in headers]})
    await send({"type": "http.response.body",
                "body": b"" if request.method == "HEAD" else response.body})


async def refuse_websocket(scope: Scope, send: Send, response: Response) -> None:
    """Answer a refused WebSocket handshake with its HTTP status when the ASGI server can
    (the ``websocket.http.response`` extension), else close before accepting (403)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        headers = [("content-type", response.content_type),
                   ("content-length", str(len(response.body))), *response.headers]
        await send({"type": "websocket.http.response.start", "status": response.status,
                    "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                for k, v in headers]})
        await send({"type": "websocket.http.response.body", "body": response.body})
    else:
        await send({"type": "websocket.close", "code": 1008})
