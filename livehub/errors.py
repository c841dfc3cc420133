"""The one error tree of livehub; every error carries what to answer with.

::

    LivehubError                    base; .http_status, .close_code, .error_code, .message
    ├── PeerError                   the peer broke a protocol or sent something we refuse
    │   ├── BadRequest              malformed HTTP request, query, JSON, cursor (400 / 1008 / 107)
    │   │   ├── BadCursor           a resume cursor that cannot be parsed
    │   │   ├── BadChannel          a malformed channel name
    │   │   └── BadSelector         a malformed Mercure topic selector (URI template, URL Pattern)
    │   ├── PayloadTooLarge         body or message over a limit (413 / 1009 / 106)
    │   ├── OverBudget              a rate budget spent, e.g. compression (429 / 3013 / 111)
    │   ├── WebSocketError          RFC 6455 violation; close_code says which (1002, 1007, ...)
    │   ├── CommandError            a refused command or API call, answered in its own reply
    │   │                           with ``error_code`` (Centrifugo ``Reply.error``); 400
    │   ├── NotFound                no such endpoint (404)
    │   ├── MethodNotAllowed        endpoint exists, method does not (405, ``Allow`` header)
    │   ├── Unauthorized            missing or wrong credentials (401 / 3500 / 101)
    │   │   ├── LoginRequired       no admin session or token (401, ``WWW-Authenticate``)
    │   │   ├── InvalidToken        a token that cannot be trusted (401 / 3500 / 101)
    │   │   └── TokenExpired        a well-signed token past its expiry (401 / 3005 / 109)
    │   └── Forbidden               valid request, not allowed (403 / 1008 / 103)
    │       ├── PermissionDenied    the channel permission model says no (403 / 3507 / 103)
    │       └── UnknownNamespace    channel in a namespace that is not configured (404 / 102)
    ├── ConfigError                 we are misconfigured (raised at start-up, never to a client)
    ├── ServerError                 a fault on our side: the broker refused a command or returned
    │                               data that cannot be decoded (500 / 1011 / 100)
    └── Unavailable                 a dependency (broker) cannot serve now (503 / 1011 / 108)

Handlers catch ``LivehubError`` and answer with its fields; anything else is a bug, logged
with a traceback and answered with a generic 500 / 1011 / 100 that reveals nothing.
"""

from __future__ import annotations

from livehub.codes import ERROR_MESSAGES, CloseCode, Disconnect, ErrorCode


class LivehubError(Exception):
    """Base of every error livehub raises on purpose."""

    http_status: int = 500
    close_code: int = int(CloseCode.INTERNAL_ERROR)
    error_code: int = int(ErrorCode.INTERNAL)

    def __init__(self, message: str, *, http_status: int | None = None,
                 close_code: int | None = None, error_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if http_status is not None:
            self.http_status = http_status
        if close_code is not None:
            self.close_code = close_code
        if error_code is not None:
            self.error_code = error_code


class PeerError(LivehubError):
    """The peer sent something that breaks a protocol or that we refuse."""

    http_status = 400
    close_code = int(CloseCode.POLICY_VIOLATION)
    error_code = int(ErrorCode.BAD_REQUEST)


class BadRequest(PeerError):
    """A malformed request: HTTP, query string, JSON body, command."""


class BadCursor(BadRequest):
    """A resume cursor (SSE Last-Event-ID, ``since=``, ``cursor=``) that cannot be parsed."""


class BadChannel(BadRequest):
    """A malformed channel name."""


class BadSelector(BadRequest):
    """A Mercure topic selector that cannot be compiled (a malformed RFC 6570 URI template or
    WHATWG URL Pattern) or that is over a limit (length, count, complexity): 400."""


class PayloadTooLarge(PeerError):
    """A body, frame or message over its configured limit."""

    http_status = 413
    close_code = int(CloseCode.MESSAGE_TOO_BIG)
    error_code = int(ErrorCode.LIMIT_EXCEEDED)


class OverBudget(PeerError):
    """A per-second budget is spent (compression work...); retry later, with backoff."""

    http_status = 429
    close_code = Disconnect.TOO_MANY_REQUESTS.code
    error_code = int(ErrorCode.TOO_MANY_REQUESTS)


class WebSocketError(PeerError):
    """An RFC 6455 / RFC 7692 violation; ``close_code`` is the code to close with."""

    close_code = int(CloseCode.PROTOCOL_ERROR)


class CommandError(PeerError):
    """One command or server API call is refused; its reply carries ``error_code`` (a
    Centrifugo client protocol error code) and the connection stays."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or ERROR_MESSAGES.get(code, "error"), error_code=code)


class NotFound(PeerError):
    """No endpoint at this path."""

    http_status = 404
    error_code = int(ErrorCode.METHOD_NOT_FOUND)


class MethodNotAllowed(PeerError):
    """The endpoint exists but not for this method; ``headers`` carries ``Allow``."""

    http_status = 405
    error_code = int(ErrorCode.METHOD_NOT_FOUND)

    def __init__(self, message: str, *, allow: str) -> None:
        super().__init__(message)
        self.headers = [("allow", allow)]


class Unauthorized(PeerError):
    """Missing or wrong credentials (API key, token)."""

    http_status = 401
    close_code = 3500
    error_code = int(ErrorCode.UNAUTHORIZED)


class LoginRequired(Unauthorized):
    """The admin dashboard without a session or with a wrong admin token; ``headers`` carries
    the ``WWW-Authenticate`` challenge that a 401 needs (RFC 9110 §15.5.2)."""

    def __init__(self, message: str, *, realm: str) -> None:
        super().__init__(message)
        self.headers = [("www-authenticate", f'Bearer realm="{realm}"')]


class InvalidToken(Unauthorized):
    """A token that cannot be trusted (forged, malformed, wrong algorithm, audience or
    issuer): 401, or disconnect 3500 (do not reconnect with it)."""


class TokenExpired(Unauthorized):
    """A well-signed token whose ``exp``/``expire_at`` is past: 401 with error 109 (the
    Centrifugo SDKs fetch a new token and retry), or disconnect 3005 (reconnect with a fresh
    token)."""

    close_code = 3005
    error_code = int(ErrorCode.TOKEN_EXPIRED)


class Forbidden(PeerError):
    """A well-formed request that is not allowed (publish to a read-only namespace...)."""

    http_status = 403
    close_code = int(CloseCode.POLICY_VIOLATION)
    error_code = int(ErrorCode.PERMISSION_DENIED)


class PermissionDenied(Forbidden):
    """Refused by the channel permission model (``livehub.core.permissions``): 403, disconnect
    3507 on a connection that has no other way to say it, error 103 in a reply."""

    close_code = 3507


class UnknownNamespace(Forbidden):
    """A channel whose namespace is not configured."""

    http_status = 404
    error_code = int(ErrorCode.UNKNOWN_CHANNEL)


class ConfigError(LivehubError):
    """livehub is misconfigured; raised at start-up, never sent to a client."""


class ServerError(LivehubError):
    """A fault on our side that the client cannot fix: the broker refused a command (a Redis
    error reply) or returned data that cannot be decoded.  Logged; the client gets a generic
    answer (500 / 1011 / 100) that reveals nothing."""


class Unavailable(LivehubError):
    """A dependency (the broker) cannot serve right now; retry later."""

    http_status = 503
    close_code = int(CloseCode.TRY_AGAIN_LATER)
    error_code = int(ErrorCode.NOT_AVAILABLE)
