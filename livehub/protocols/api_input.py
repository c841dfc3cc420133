"""Shared parts of the server HTTP API: the API key check and payload parsing.

The API itself (``POST /api/<method>``, Centrifugo-compatible, including ``publish``) is
``livehub.protocols.centrifugo.api``.  Authorised by the ``X-API-Key`` header (or
``Authorization: apikey <key>``, or the ``api_key`` query parameter), compared in constant
time.  ``insecure_api`` turns the check off for development only (on a loopback address, and
then only for requests addressed to a loopback host name, against DNS rebinding).

The API is never for browsers of other origins: a request with an ``Origin`` that is not this
server's own is refused with 403 before anything runs (a ``text/plain`` POST needs no preflight,
so the CORS headers alone would not stop it from running).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from urllib.parse import urlsplit

from livehub.errors import BadRequest, Forbidden, Unauthorized
from livehub.protocols.credentials import same_origin
from livehub.transports.context import ServerContext
from livehub.transports.http import Request
from livehub.wire import validation
from livehub.wire.payload import PayloadKind


def check_api_key(ctx: ServerContext, request: Request) -> None:
    if "origin" in request.headers and not same_origin(request):
        raise Forbidden("the server API does not accept cross-origin requests")
    if ctx.settings.insecure_api:
        host = urlsplit("//" + request.headers.get("host", "")).hostname or ""
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise Forbidden("insecure_api answers requests addressed to a loopback host only")
        return
    expected = ctx.settings.api_key
    given = request.headers.get("x-api-key")
    if given is None:
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "apikey":
            given = value.strip()
    if given is None:
        given = request.arg("api_key")
    if not given:
        ctx.stats.auth_refused["api_key_missing"] += 1
        raise Unauthorized("missing API key: send it in the X-API-Key header")
    if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
        ctx.stats.auth_refused["api_key_wrong"] += 1
        raise Unauthorized("wrong API key")


def parse_payload(body: dict[str, object]) -> tuple[bytes, PayloadKind]:
    """``data`` (any JSON; a string is sent as text) or ``b64data`` (binary)."""
    if "b64data" in body:
        raw = body["b64data"]
        if not isinstance(raw, str):
            raise BadRequest("b64data must be a base64 string")
        try:
            return base64.b64decode(raw, validate=True), PayloadKind.BINARY
        except binascii.Error:
            raise BadRequest("b64data is not valid base64") from None
    if "data" not in body:
        raise BadRequest("data is required")
    data = body["data"]
    try:
        if isinstance(data, str):
            return data.encode(), PayloadKind.TEXT
        return (json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode(),
                PayloadKind.JSON)
    except UnicodeEncodeError:
        raise BadRequest("data holds a lone UTF-16 surrogate (not Unicode text)") from None


def parse_event(body: dict[str, object]) -> str | None:
    event = body.get("event")
    if event is None:
        return None
    if not isinstance(event, str):
        raise BadRequest("event must be a string")
    validation.check_event(event)
    return event
