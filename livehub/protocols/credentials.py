"""Credentials of a plain request (``/events``, ``/stream``, ``/poll``, ``/ws`` and any later
endpoint without a protocol of its own) and the permission check of the channels it asks for.

The connection token is the one the Centrifugo endpoints take (``livehub.core.auth``), found in
this order: the ``token`` query parameter (``EventSource`` and browser ``WebSocket`` cannot set
headers), ``Authorization: Bearer <token>``, then the cookie named ``token_cookie``.  A cookie
counts only when the request has no ``Origin`` or a same-origin one, or one listed in
``allowed_origins`` (never through ``*``): a page of another site cannot borrow a user's cookie
to read private channels (cross-site WebSocket hijacking).  Without a token the client is
anonymous (user ``""``).  Subscription tokens come as ``sub_token`` parameters, one per channel
(each names its channel in the ``channel`` claim).  Under the ASGI adapter, a user the host
app's ``authenticate`` hook names (``Request.user``) comes first.  Every channel is then checked by
``livehub.core.permissions``; a refusal is ``TokenExpired``/``InvalidToken`` (401) or
``PermissionDenied`` (403), which each endpoint answers in its own way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from livehub.codes import Disconnect, DisconnectInfo
from livehub.core.permissions import Principal, check_subscribe
from livehub.errors import InvalidToken, PermissionDenied
from livehub.transports.context import ServerContext
from livehub.transports.http import Request

MAX_SUB_TOKENS = 64


@dataclass(frozen=True, slots=True)
class Access:
    """What a request was allowed, and until when."""

    principal: Principal
    expire_at: float | None
    """Unix time the earliest credential of the request expires (None: never)."""
    expiry: DisconnectInfo = Disconnect.EXPIRED
    """What the client is told then: 3005 (connection token) or 3006 (subscription token)."""


def same_origin(request: Request) -> bool:
    """Whether the ``Origin`` of ``request`` names the host it was sent to (scheme aside: TLS
    may end at a proxy)."""
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    if not origin or not host or origin == "null":
        return False
    return urlsplit(origin).netloc.lower() == host.lower()


def cookie(request: Request, name: str) -> str | None:
    """The value of cookie ``name`` in ``request`` (None: absent or empty)."""
    for part in request.headers.get("cookie", "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"') or None
    return None


def cookies_count(request: Request, allowed_origins: Sequence[str]) -> bool:
    """Whether the cookies of ``request`` may stand for its user: no ``Origin``, a same-origin
    one, or one listed in ``allowed_origins`` (never through ``*``).  Every endpoint that reads
    a credential from a cookie asks this first."""
    origin = request.headers.get("origin")
    return origin is None or same_origin(request) or origin in allowed_origins


def request_token(ctx: ServerContext, request: Request) -> str | None:
    """The connection token of ``request`` (query, bearer header, cookie), or None."""
    token = request.arg("token")
    if token:
        return token
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    name = ctx.auth.token_cookie
    if not name or not cookies_count(request, ctx.settings.allowed_origins):
        return None
    return cookie(request, name)


async def authenticate(ctx: ServerContext, request: Request) -> Access:
    """The principal behind ``request``; raise ``InvalidToken``/``TokenExpired`` (401)."""
    insecure = ctx.auth.client_insecure
    if request.user is not None:  # vouched for by the host app (ASGI adapter)
        return Access(Principal.of(request.user, insecure=insecure), None)
    token = request_token(ctx, request)
    if token is None:
        return Access(Principal(insecure=insecure), None)
    if not ctx.verifier.configured:
        if insecure:
            return Access(Principal(insecure=True), None)
        raise InvalidToken("a token was sent but no token keys are configured")
    claims = await ctx.verifier.connection(token)
    return Access(Principal.of(claims.user, claims.channels, insecure=insecure),
                  claims.expire_at)


async def authorize(ctx: ServerContext, request: Request, channels: list[str]) -> Access:
    """Authenticate ``request`` and check that it may subscribe to every one of ``channels``
    (with its ``sub_token`` parameters); raise 401/403 errors otherwise."""
    access = await authenticate(ctx, request)
    who = access.principal
    expire_at, expiry = access.expire_at, access.expiry
    raw = request.args("sub_token")
    if len(raw) > MAX_SUB_TOKENS:
        raise PermissionDenied(f"at most {MAX_SUB_TOKENS} subscription tokens per request")
    granted: dict[str, str] = {}
    for token in raw:
        claims = await ctx.verifier.subscription(token)
        if claims.user != who.user:
            raise PermissionDenied(f"the subscription token for {claims.channel!r} is for "
                                   "another user")
        if claims.channel not in channels:
            raise PermissionDenied(f"the subscription token is for channel {claims.channel!r}"
                                   ", which this request does not ask for")
        granted[claims.channel] = claims.channel
        if claims.expire_at is not None and (expire_at is None or claims.expire_at < expire_at):
            expire_at, expiry = claims.expire_at, Disconnect.SUBSCRIPTION_EXPIRED
    for name in channels:
        check_subscribe(who, name, ctx.node.options(name),
                        token_channel=granted.get(name))
    return Access(who, expire_at, expiry)
