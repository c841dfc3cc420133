"""Payload kinds and how one payload is rendered for text-only and JSON wire formats.

A publication's payload is bytes plus a kind:

* ``TEXT``: UTF-8 text (a WebSocket text message, an API ``data`` that is a JSON string);
* ``JSON``: a JSON document, stored as its compact UTF-8 encoding (API ``data`` of any other
  JSON type, Centrifugo clients' publications);
* ``BINARY``: opaque bytes (a WebSocket binary message).

Text-only formats (SSE ``data:``) carry TEXT and JSON as their text and BINARY as base64.
JSON formats (HTTP-streaming lines, long-poll replies) embed JSON as is, TEXT as a JSON string
and BINARY as a base64 string under ``data_b64``.
"""

from __future__ import annotations

import base64
import json
from enum import IntEnum


class PayloadKind(IntEnum):
    TEXT = 1
    BINARY = 2
    JSON = 3


def as_text(data: bytes, kind: PayloadKind) -> bytes:
    """UTF-8 text form of a payload, for text-only formats (SSE)."""
    if kind is PayloadKind.BINARY:
        return base64.b64encode(data)
    return data


def json_fields(data: bytes, kind: PayloadKind) -> str:
    """The ``"data": ...`` (or ``"data_b64": ...``) member of a JSON envelope, as text."""
    if kind is PayloadKind.JSON:
        return '"data":' + data.decode()
    if kind is PayloadKind.TEXT:
        return '"data":' + json.dumps(data.decode(), ensure_ascii=False)
    return '"data_b64":"' + base64.b64encode(data).decode() + '"'
