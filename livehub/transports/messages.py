"""HTTP/1.1 request and response values, the fixed refusals, and response heads (RFC 9112)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, unquote

import httptools

from livehub.codes import ErrorCode
from livehub.errors import LivehubError
from livehub.wire import validation


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Lower-case names; repeated fields joined with ``", "``."""
    body: bytes = b""
    keep_alive: bool = True
    upgrade: bool = False
    client: str = ""
    """``ip:port`` of the peer, or the client address a trusted proxy forwarded."""
    version: str = "1.1"
    """``"1.1"``, ``"1.0"`` or ``"2"`` (HTTP/2, ``transports.h2``); other versions are refused
    before a handler sees them."""
    user: str | None = None
    """The user the host application vouches for (the ASGI adapter's ``authenticate`` hook,
    from its own session); None: the request's credentials decide.  Never set from anything
    the client sends."""

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
    streamed: bool = False
    """The head of an open-ended stream, answered to HEAD: no ``content-length`` (RFC 9110
    §8.6: it would have to be the length of the GET body, which has none)."""

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


def refusal(status: int, message: str, *, code: int = ErrorCode.BAD_REQUEST,
            retry_after: int | None = None) -> Response:
    """The answer to a request refused by the HTTP layer itself (malformed, over a limit);
    ``message`` is a fixed text, never the parser's internals."""
    resp = Response.json({"error": {"code": int(code), "message": message}}, status)
    if retry_after is not None:
        resp.headers.append(("retry-after", str(retry_after)))
    return resp


class Refused(Exception):
    """A request refused from its head; ``response`` is the answer."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def parse_head(method: bytes, target: bytes, raw_headers: Sequence[tuple[bytes, bytes]],
               version: str, *, max_body: int, client: str = "", keep_alive: bool = True,
               upgrade: bool = False) -> Request:
    """The ``Request`` of a parsed head (llhttp did the syntax), or ``Refused`` by the rules
    of RFC 9112: versions 1.0 and 1.1 only (§2.3; "2" for the heads of HTTP/2 streams, which
    need a ``Host`` or ``:authority``, RFC 9113 §8.3.1), exactly one ``Host`` in HTTP/1.1 (§3.2),
    no ``Transfer-Encoding`` in HTTP/1.0 (§6.1), a declared body within ``max_body``."""
    if version not in {"1.1", "1.0", "2"}:
        if version.startswith("0."):
            raise Refused(refusal(400, "HTTP/0.9 request lines are not supported: send "
                                  "HTTP/1.1 (RFC 9112 §3)"))
        raise Refused(refusal(505, f"HTTP/{version} is not supported here: use HTTP/1.1"))
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw_headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name in headers:
            if name == "host":
                raise Refused(refusal(400, "more than one Host header (RFC 9112 §3.2)"))
            headers[name] = f"{headers[name]}, {value}"
        else:
            headers[name] = value
    if version == "1.1":
        if "host" not in headers:
            raise Refused(refusal(400, "HTTP/1.1 request without a Host header "
                                  "(RFC 9112 §3.2)"))
    elif version == "2":
        if "host" not in headers:
            raise Refused(refusal(400, "HTTP/2 request without :authority or Host "
                                  "(RFC 9113 §8.3.1)"))
    elif "transfer-encoding" in headers:
        raise Refused(refusal(400, "Transfer-Encoding in an HTTP/1.0 request is refused "
                              "(RFC 9112 §6.1)"))
    length = headers.get("content-length")
    if length is not None and int(length) > max_body:
        raise Refused(refusal(413, f"body larger than {max_body} bytes",
                              code=ErrorCode.LIMIT_EXCEEDED))
    try:
        url = httptools.parse_url(target)
    except httptools.HttpParserInvalidURLError:
        raise Refused(refusal(400, "malformed request target")) from None
    path = unquote(url.path.decode("latin-1")) if url.path else "/"
    query = parse_qs(url.query.decode("latin-1"), keep_blank_values=True) if url.query else {}
    return Request(method=method.decode(), path=path, query=query, headers=headers,
                   keep_alive=keep_alive, upgrade=upgrade, client=client, version=version)


def wants_continue(request: Request) -> bool:
    """Whether the client waits for ``100 Continue`` before sending its body (RFC 9110
    §10.1.1: ``Expect: 100-continue`` on an HTTP/1.1 request with a body; ignored in
    HTTP/1.0); ``Refused`` (417) for any other expectation."""
    expect = request.headers.get("expect")
    if expect is None or request.version != "1.1":
        return False
    if expect.strip().lower() != "100-continue":
        raise Refused(refusal(417, "only Expect: 100-continue is supported"))
    length = request.headers.get("content-length")
    return length != "0" if length is not None else "transfer-encoding" in request.headers


def head_bytes(status: int, headers: list[tuple[str, str]]) -> bytes:
    """Status line and headers of an HTTP/1.1 response, ending with the empty line."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines.extend(f"{k}: {v}" for k, v in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
"""The interim answer to ``Expect: 100-continue`` (RFC 9110 §10.1.1)."""

# Fixed answers for what the parser refuses (RFC 9112); the parser's own text is logged at
# debug level at most, never sent.
MALFORMED = "malformed HTTP request"
PARSER_MESSAGES: dict[str, tuple[int, str]] = {
    "HttpParserInvalidMethodError": (400, "invalid request method"),
    "HttpParserInvalidURLError": (400, "malformed request target"),
}
PARSER_REASONS: tuple[tuple[str, int, str], ...] = (
    ("Invalid HTTP version", 505, "HTTP version not supported: use HTTP/1.1"),
    ("Pause on PRI/Upgrade", 505, "HTTP/2 starts a connection (its preface first, RFC 9113 "
     "§3.3) or is chosen by TLS ALPN: not after HTTP/1.1 requests"),
    ("can't be present with", 400,
     "Content-Length with Transfer-Encoding is refused (RFC 9112 §6.1)"),
    ("Transfer-Encoding", 400, "unsupported Transfer-Encoding (RFC 9112 §6.1)"),
    ("Content-Length", 400, "invalid Content-Length (RFC 9112 §6.2)"),
    ("chunk", 400, "malformed chunked body (RFC 9112 §7.1)"),
    ("header", 400, "malformed header field (RFC 9112 §5)"),
    ("Expected HTTP/", 400, "malformed request line (RFC 9112 §3)"),
    ("after version", 400, "malformed request line (RFC 9112 §3)"),
    ("after start line", 400, "malformed request line (RFC 9112 §3)"),
)


def parser_refusal(exc: Exception) -> Response:
    """A fixed answer for an exception of the httptools parser."""
    known = PARSER_MESSAGES.get(type(exc).__name__)
    if known is not None:
        return refusal(*known)
    reason = str(exc)
    for text, status, message in PARSER_REASONS:
        if text in reason:
            return refusal(status, message)
    return refusal(400, MALFORMED)
