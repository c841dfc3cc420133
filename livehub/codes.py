"""The catalogue of every code livehub answers with: close, disconnect and error codes.

Three families, each in one place so that clients, docs and tests agree:

* ``CloseCode``: WebSocket close codes of RFC 6455 §7.4.1 that livehub sends.
* ``Disconnect``: livehub's own disconnect codes, shared by every transport and compatible with
  the Centrifugo client protocol.  The range says what a client should do next:

  - 3000-3499: the client SHOULD reconnect (with backoff) and resume from its cursor;
  - 3500-3999: the client MUST NOT reconnect without changing something (token, request);
  - 4000-4499 and 4500-4999: the same two meanings, for codes chosen by applications (server
    API ``disconnect``).

  ``reconnects(code)`` is that rule, the one every transport and protocol applies (the
  ``reconnect`` field of SSE/streaming ``disconnect`` events and of Centrifugo ``disconnect``
  pushes); it is the rule of the Centrifugo SDKs, which also reconnect after transport closes
  (codes below 3000) and codes from 5000 up.

  On WebSocket they are the close code; on SSE and HTTP streaming they are sent in-band as a
  ``disconnect`` event/line just before the stream ends.
* ``ErrorCode``: errors of a single request or command (Centrifugo client protocol error
  codes 100-112), carried in replies, never closing the connection by themselves.
* ``Unsubscribe``: codes of a server-side ``unsubscribe`` push (2000-2499: stay unsubscribed,
  2500-2999: resubscribe).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class CloseCode(IntEnum):
    """RFC 6455 §7.4.1 close codes."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # never sent on the wire (RFC 6455 §7.4.1)
    ABNORMAL = 1006  # never sent on the wire
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013


def reconnects(code: int) -> bool:
    """Whether a client should reconnect after disconnect ``code``: yes below 3500, in
    4000-4499 and from 5000 up; no in 3500-3999 and 4500-4999 (Centrifugo's "Client protocol
    codes", as its SDKs apply them)."""
    return code < 3500 or 4000 <= code < 4500 or code >= 5000


@dataclass(frozen=True, slots=True)
class DisconnectInfo:
    code: int
    reason: str

    @property
    def reconnect(self) -> bool:
        """Whether a client should reconnect after this disconnect (``reconnects``)."""
        return reconnects(self.code)


class Disconnect:
    """Disconnect codes (3000-3499 reconnect, 3500-3999 do not), as in the Centrifugo docs
    ("Error and disconnect codes").  4000-4499 (reconnect) and 4500-4999 (do not) are left to
    applications; ``reconnects`` is the rule."""

    CONNECTION_CLOSED = DisconnectInfo(3000, "connection closed")
    SHUTDOWN = DisconnectInfo(3001, "shutdown")
    SERVER_ERROR = DisconnectInfo(3004, "internal server error")
    EXPIRED = DisconnectInfo(3005, "connection expired")
    SUBSCRIPTION_EXPIRED = DisconnectInfo(3006, "subscription expired")
    SLOW = DisconnectInfo(3008, "slow consumer: outgoing buffer full, resume from history")
    WRITE_ERROR = DisconnectInfo(3009, "write error")
    INSUFFICIENT_STATE = DisconnectInfo(3010, "insufficient state")
    FORCE_RECONNECT = DisconnectInfo(3011, "force reconnect")
    NO_PONG = DisconnectInfo(3012, "no pong")
    TOO_MANY_REQUESTS = DisconnectInfo(3013, "too many requests")
    INVALID_TOKEN = DisconnectInfo(3500, "invalid token")
    BAD_REQUEST = DisconnectInfo(3501, "bad request")
    STALE = DisconnectInfo(3502, "stale")
    FORCE_NO_RECONNECT = DisconnectInfo(3503, "force disconnect")
    CONNECTION_LIMIT = DisconnectInfo(3504, "connection limit")
    CHANNEL_LIMIT = DisconnectInfo(3505, "channel limit")
    INAPPROPRIATE_PROTOCOL = DisconnectInfo(3506, "inappropriate protocol")
    PERMISSION_DENIED = DisconnectInfo(3507, "permission denied")
    NOT_AVAILABLE = DisconnectInfo(3508, "not available")
    TOO_MANY_ERRORS = DisconnectInfo(3509, "too many errors")


class Unsubscribe:
    """Codes of a server-side ``unsubscribe`` push (Centrifugo client protocol): 2000-2499 the
    client should not resubscribe by itself, 2500-2999 it should resubscribe."""

    SERVER = DisconnectInfo(2000, "server unsubscribe")
    INSUFFICIENT_STATE = DisconnectInfo(2500, "insufficient state")
    EXPIRED = DisconnectInfo(2501, "subscription expired")


class ErrorCode(IntEnum):
    """Errors of one request or command (Centrifugo client protocol error codes).

    100 (internal) and 111 (too many requests) are *temporary*: a client may retry.  109 (token
    expired) makes the SDKs fetch a new token and retry; the rest are permanent.
    """

    INTERNAL = 100
    UNAUTHORIZED = 101
    UNKNOWN_CHANNEL = 102
    PERMISSION_DENIED = 103
    METHOD_NOT_FOUND = 104
    ALREADY_SUBSCRIBED = 105
    LIMIT_EXCEEDED = 106
    BAD_REQUEST = 107
    NOT_AVAILABLE = 108
    TOKEN_EXPIRED = 109
    EXPIRED = 110
    TOO_MANY_REQUESTS = 111
    UNRECOVERABLE_POSITION = 112

    @property
    def temporary(self) -> bool:
        return self in (ErrorCode.INTERNAL, ErrorCode.TOO_MANY_REQUESTS)


ERROR_MESSAGES: dict[int, str] = {
    ErrorCode.INTERNAL: "internal server error",
    ErrorCode.UNAUTHORIZED: "unauthorized",
    ErrorCode.UNKNOWN_CHANNEL: "unknown channel",
    ErrorCode.PERMISSION_DENIED: "permission denied",
    ErrorCode.METHOD_NOT_FOUND: "method not found",
    ErrorCode.ALREADY_SUBSCRIBED: "already subscribed",
    ErrorCode.LIMIT_EXCEEDED: "limit exceeded",
    ErrorCode.BAD_REQUEST: "bad request",
    ErrorCode.NOT_AVAILABLE: "not available",
    ErrorCode.TOKEN_EXPIRED: "token expired",
    ErrorCode.EXPIRED: "expired",
    ErrorCode.TOO_MANY_REQUESTS: "too many requests",
    ErrorCode.UNRECOVERABLE_POSITION: "unrecoverable position",
}
"""The documented message of each error code."""
