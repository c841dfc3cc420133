"""Sans-I/O WebSocket opening handshake, server side (RFC 6455 §4.2; RFC 8441 over HTTP/2)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from livehub.errors import BadRequest, Forbidden
from livehub.wire.deflate import DeflateParams, negotiate

__all__ = [
    "GUID",
    "Handshake",
    "HandshakeError",
    "accept_key",
    "check_extended_connect",
    "check_request",
    "response_bytes",
]

GUID: Final = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
VERSION: Final = "13"  # RFC 6455 §4.1, §11.6


class HandshakeError(BadRequest):
    """A refused opening handshake; ``headers`` must be added to the error response.

    The 426 for an unsupported version carries ``Sec-WebSocket-Version: 13`` (RFC 6455
    §4.2.2, §4.4); the 405 for a method other than GET carries ``Allow: GET``.
    """

    def __init__(self, message: str, *, http_status: int = 400,
                 headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        super().__init__(message, http_status=http_status)
        self.headers: list[tuple[bytes, bytes]] = list(headers)


@dataclass(frozen=True, slots=True)
class Handshake:
    """An accepted opening handshake and the headers of its 101 response (RFC 6455 §4.2.2)."""

    key: str
    subprotocol: str | None
    deflate: DeflateParams | None
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    http2: bool = False
    """Opened by an HTTP/2 extended CONNECT (RFC 8441): answered 200, not 101."""


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2 step 5.4)."""
    digest = hashlib.sha1((key + GUID).encode("ascii"), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


def _tokens(value: str | None) -> list[str]:
    """A comma-separated header value as lower-case tokens (RFC 7230 §7)."""
    if not value:
        return []
    return [t for t in (part.strip().lower() for part in value.split(",")) if t]


def check_request(method: str, headers: Mapping[str, str], *,
                  subprotocols: Sequence[str] = (),
                  allowed_origins: Sequence[str] | None = None,
                  deflate: bool = True) -> Handshake:
    """Validate a client's opening handshake (RFC 6455 §4.2.1) and prepare the answer.

    ``headers`` has lower-case names, repeated fields joined with ", ".  Raises
    ``HandshakeError`` (400; 405 for a method other than GET; 426 plus
    ``Sec-WebSocket-Version: 13`` for another version) or ``Forbidden`` (403) when the
    Origin is not in ``allowed_origins``.  ``allowed_origins=None`` skips the check,
    ``"*"`` allows every origin, and a request without Origin is allowed: only browsers
    send it (§10.2), and it protects browsers only.

    The subprotocol is the first one of the client's ``Sec-WebSocket-Protocol`` list, in
    the client's order of preference, that is in ``subprotocols`` (§4.2.2 step 5.5); none
    in common means no subprotocol header (the client then decides whether to go on).
    """
    if method != "GET":
        raise HandshakeError("WebSocket handshake must use GET (RFC 6455 §4.2.1)",
                             http_status=405, headers=[(b"Allow", b"GET")])
    if not headers.get("host"):
        raise HandshakeError("missing Host header (RFC 6455 §4.2.1)")
    if "websocket" not in _tokens(headers.get("upgrade")):
        raise HandshakeError("Upgrade header must contain 'websocket' (RFC 6455 §4.2.1)")
    if "upgrade" not in _tokens(headers.get("connection")):
        raise HandshakeError("Connection header must contain 'Upgrade' (RFC 6455 §4.2.1)")
    if (headers.get("sec-websocket-version") or "").strip() != VERSION:
        raise HandshakeError("unsupported Sec-WebSocket-Version, expected 13 (RFC 6455 §4.4)",
                             http_status=426,
                             headers=[(b"Sec-WebSocket-Version", VERSION.encode())])
    key = (headers.get("sec-websocket-key") or "").strip()
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16 or len(key) != 24:
        raise HandshakeError("Sec-WebSocket-Key must be base64 of 16 bytes (RFC 6455 §4.2.1)")
    response: list[tuple[bytes, bytes]] = [
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Accept", accept_key(key).encode("ascii")),
    ]
    return _accept(headers, key, response, subprotocols=subprotocols,
                   allowed_origins=allowed_origins, deflate=deflate)


def check_extended_connect(headers: Mapping[str, str], *, subprotocols: Sequence[str] = (),
                           allowed_origins: Sequence[str] | None = None,
                           deflate: bool = True) -> Handshake:
    """Validate a WebSocket opened by an HTTP/2 extended CONNECT (RFC 8441 §5: ``:protocol``
    ``websocket``, checked by the caller); no key, no Upgrade: the answer is a 200 whose
    headers are the subprotocol and the extensions.  Same Origin, version, subprotocol and
    extension rules as ``check_request``."""
    if (headers.get("sec-websocket-version") or "").strip() != VERSION:
        raise HandshakeError("unsupported Sec-WebSocket-Version, expected 13 (RFC 6455 §4.4)",
                             http_status=426,
                             headers=[(b"Sec-WebSocket-Version", VERSION.encode())])
    return _accept(headers, "", [], subprotocols=subprotocols,
                   allowed_origins=allowed_origins, deflate=deflate, http2=True)


def _accept(headers: Mapping[str, str], key: str, response: list[tuple[bytes, bytes]], *,
            subprotocols: Sequence[str], allowed_origins: Sequence[str] | None,
            deflate: bool, http2: bool = False) -> Handshake:
    """The Origin check, the subprotocol and the extensions, for both ways of opening."""
    if allowed_origins is not None and "*" not in allowed_origins:
        origin = headers.get("origin")
        if origin is not None:
            allowed = {o.lower().rstrip("/") for o in allowed_origins}
            if origin.strip().lower().rstrip("/") not in allowed:
                raise Forbidden(f"origin {origin!r} is not allowed (RFC 6455 §4.2.2, §10.2)")

    subprotocol = None
    if subprotocols:
        offered = [p.strip() for p in (headers.get("sec-websocket-protocol") or "").split(",")]
        subprotocol = next((p for p in offered if p and p in subprotocols), None)
        if subprotocol is not None:
            response.append((b"Sec-WebSocket-Protocol", subprotocol.encode("ascii")))
    params = None
    negotiated = negotiate(headers.get("sec-websocket-extensions"), enabled=deflate)
    if negotiated is not None:
        value, params = negotiated
        response.append((b"Sec-WebSocket-Extensions", value.encode("ascii")))
    return Handshake(key=key, subprotocol=subprotocol, deflate=params,
                     response_headers=response, http2=http2)


def response_bytes(h: Handshake) -> bytes:
    """The complete ``101 Switching Protocols`` response (RFC 6455 §4.2.2 step 5)."""
    lines = [b"HTTP/1.1 101 Switching Protocols"]
    lines.extend(name + b": " + value for name, value in h.response_headers)
    lines.append(b"\r\n")
    return b"\r\n".join(lines)
