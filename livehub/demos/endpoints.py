"""The few HTTP endpoints the demo pages need besides the plain ones: a demo login that makes
JWTs for a handful of demo users, sending a notification, dropping the comparison page's
connections on purpose, and the size of a request head as the server received it.

The login only works with the secret demo mode generated for this process
(``with_demo_secret``): on a server with token keys of its own it answers 403, so a demo can
never mint tokens that the operator's keys would accept.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import replace

import jwt

from livehub.codes import Disconnect, DisconnectInfo
from livehub.core.auth import AuthSettings
from livehub.errors import BadRequest, Forbidden, InvalidToken
from livehub.transports import websocket
from livehub.transports.context import ServerContext
from livehub.transports.http import Request, Response
from livehub.transports.routing import Endpoint, Exchange
from livehub.transports.websocket import WebSocketConnection
from livehub.wire.payload import PayloadKind

DEMO_USERS = ("alice", "bob", "carol")
TOKEN_SECONDS = 3600
INBOX = "notify:inbox#{user}"
"""The user-limited channel of a demo user's notifications."""
DROPPABLE_NAMESPACE = "vs"
"""Only the comparison page's channels can be dropped on request."""


def with_demo_secret(auth: AuthSettings, secret: str | None = None
                     ) -> tuple[AuthSettings, str | None]:
    """``auth`` with ``secret`` (random if None: shared by the workers when the config made
    it) as the HMAC key of the demo login when it has no token keys, and that secret;
    unchanged, and no secret, when the operator configured keys of its own."""
    if auth.has_keys:
        return auth, None
    secret = secret or secrets.token_urlsafe(32)
    return replace(auth, token_hmac_secret=secret), secret


def _body(request: Request) -> dict[str, object]:
    value = request.json()
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


def _user(value: object) -> str:
    if value not in DEMO_USERS:
        raise BadRequest(f"user must be one of {', '.join(DEMO_USERS)}")
    assert isinstance(value, str)
    return value


def login_endpoint(secret: str | None) -> Endpoint:
    """``POST /demo/login {"user": "alice"}``: a connection token for a demo user."""

    async def login(ctx: ServerContext, request: Request, http: Exchange) -> Response:
        user = _user(_body(request).get("user"))
        if secret is None:
            raise Forbidden("the demo login is off: this server has token keys of its own")
        token = jwt.encode({"sub": user, "exp": int(time.time()) + TOKEN_SECONDS}, secret,
                           algorithm="HS256")
        return Response.json({"user": user, "token": token, "channel": INBOX.format(user=user),
                              "users": list(DEMO_USERS)})

    return login


async def notify_endpoint(ctx: ServerContext, request: Request,
                          http: Exchange) -> Response:
    """``POST /demo/notify {"to": "bob", "text": "..."}`` with ``Authorization: Bearer``: a
    demo user sends another one a notification (published on the recipient's channel)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("log in first: Authorization: Bearer <token of /demo/login>")
    sender = (await ctx.verifier.connection(token.strip())).user
    body = _body(request)
    to = _user(body.get("to"))
    text = body.get("text")
    if not isinstance(text, str) or not 0 < len(text) <= 200:
        raise BadRequest("text must be 1 to 200 characters")
    data = json.dumps({"from": sender, "text": text, "time": time.time()}).encode()
    position = await ctx.node.publish(INBOX.format(user=to), data, PayloadKind.JSON)
    return Response.json({"offset": position.offset})


def _subscribed(conn: object, channel: str) -> bool:
    subscription = getattr(conn, "subscription", None)
    return subscription is not None and channel in getattr(subscription, "channels", ())


async def drop_endpoint(ctx: ServerContext, request: Request,
                        http: Exchange) -> Response:
    """``POST /demo/drop?channel=vs:...``: close every connection of this node subscribed to
    the channel with 3011 (reconnect), as a network failure would end them."""
    channel = request.arg("channel") or ""
    if not channel.startswith(DROPPABLE_NAMESPACE + ":"):
        raise Forbidden(f"only channels of the {DROPPABLE_NAMESPACE!r} namespace can be dropped")
    ctx.node.options(channel)
    dropped = [conn for conn in list(ctx.connections) if _subscribed(conn, channel)]
    for conn in dropped:
        conn.close(Disconnect.FORCE_RECONNECT)
    return Response.json({"dropped": len(dropped)})


def head_size(request: Request) -> int:
    """Bytes of the request head as received (request line, fields, the empty line)."""
    query = "&".join(f"{k}={v}" for k, values in request.query.items() for v in values)
    target = request.path + ("?" + query if query else "")
    line = len(f"{request.method} {target} HTTP/{request.version}\r\n")
    return line + sum(len(k) + len(v) + 4 for k, v in request.headers.items()) + 2


class _HeadSize(WebSocketConnection):
    """Answers a WebSocket handshake with the sizes of its two heads, then closes."""

    __slots__ = ()


async def headers_endpoint(ctx: ServerContext, request: Request,
                           http: Exchange) -> Response | None:
    """``GET /demo/headers``: the size of this request's head, as the server received it; as
    a WebSocket, one message ``{"request", "response"}`` with the sizes of the handshake's
    request head and of the ``101`` the server answered, then a normal close."""
    if not request.upgrade:
        return Response.json({"request": head_size(request)})
    handshake = websocket.handshake(ctx, request)
    conn, tail = http.take_over(lambda transport: _HeadSize(ctx, transport, handshake))
    head = websocket.accept(http, request, handshake)  # b"" on HTTP/2: a HEADERS frame
    conn.start(head, tail)
    sizes = {"request": head_size(request), "response": len(head)}
    conn.write(conn.frame_text(json.dumps(sizes).encode()))
    conn.close(DisconnectInfo(1000, "measured"))
    return None


def routes(secret: str | None) -> Iterable[tuple[str, frozenset[str], Endpoint]]:
    post = frozenset({"POST"})
    get = frozenset({"GET"})
    endpoints: list[tuple[str, frozenset[str], Endpoint]] = [
        ("/demo/login", post, login_endpoint(secret)),
        ("/demo/notify", post, notify_endpoint),
        ("/demo/drop", post, drop_endpoint),
        ("/demo/headers", get, headers_endpoint),
    ]
    return endpoints

