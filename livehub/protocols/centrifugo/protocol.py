"""Centrifugo client protocol v2, JSON format: parse commands, encode replies and pushes.

Pure functions from bytes to values and back, no sockets (tested in
``tests/centrifugo/test_protocol.py``).  The schema is ``client.proto`` of centrifugal/protocol
(``Command``, ``Reply``, ``Push`` and their messages); the framing is the Centrifugo "Client
protocol" chapter:

* a client frame holds one or more ``Command`` objects separated by ``\\n``; a server frame
  holds one or more ``Reply`` objects the same way ("top level batching");
* a command carries ``id`` (uint32, echoed in its reply) and exactly one request field
  (``connect``, ``subscribe``, ...); a reply carries the same id and the result under the same
  name, or ``error``; a push is a reply with id 0 and a ``push`` field;
* the server pings with an empty reply ``{}`` and the client answers with an empty command;
* ``bytes`` fields (``data``, ``info``) are embedded JSON in the JSON format.

Unidirectional transports send ``Push`` objects without the ``Reply`` wrapper ("Unidirectional
client protocol").
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from livehub.codes import ERROR_MESSAGES, Disconnect, ErrorCode, reconnects
from livehub.core.broker import Publication
from livehub.core.presence import ClientInfo
from livehub.errors import BadRequest, CommandError
from livehub.wire import validation
from livehub.wire.payload import PayloadKind

METHODS = ("connect", "subscribe", "unsubscribe", "publish", "presence", "presence_stats",
           "history", "ping", "send", "rpc", "refresh", "sub_refresh")
"""Request fields of ``Command`` (client.proto field order)."""

MAX_ID = 2**32 - 1
PING = b"{}"
"""A server ping: an empty ``Reply`` (bidirectional) or an empty ``Push`` (unidirectional)."""


class ProtocolViolation(BadRequest):
    """A frame that breaks the protocol itself: the connection is closed with 3501."""

    close_code = Disconnect.BAD_REQUEST.code


@dataclass(frozen=True, slots=True)
class Command:
    """One client command.  ``method`` is None for an empty command (the pong to a ping) and
    ``""`` for a command whose request field is unknown (answered with error 104)."""

    id: int
    method: str | None
    params: Mapping[str, Any]


def dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


# -- parsing ---------------------------------------------------------------------------------


def parse_commands(data: str | bytes, *, max_commands: int = 256,
                   max_depth: int = validation.MAX_DEPTH) -> list[Command]:
    """Commands of one client frame (newline-delimited strict JSON, ``wire.validation``);
    raise ``ProtocolViolation``."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    commands: list[Command] = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        if len(commands) >= max_commands:
            raise ProtocolViolation(f"more than {max_commands} commands in one frame")
        try:
            value = validation.loads(line, max_depth=max_depth, what="command")
        except BadRequest as exc:
            raise ProtocolViolation(exc.message) from None
        commands.append(parse_command(value))
    return commands


def parse_command(value: object) -> Command:
    """Validate one decoded command object."""
    if not isinstance(value, dict):
        raise ProtocolViolation("command must be a JSON object")
    raw_id = value.get("id", 0)
    if raw_id is None:
        raw_id = 0
    if not isinstance(raw_id, int) or isinstance(raw_id, bool) or not 0 <= raw_id <= MAX_ID:
        raise ProtocolViolation("command id must be an integer in 0..4294967295")
    for method in METHODS:
        params = value.get(method)
        if params is None:
            continue
        if not isinstance(params, dict):
            raise ProtocolViolation(f"{method} request must be a JSON object")
        if raw_id == 0 and method != "send":
            raise ProtocolViolation(f"{method} command without id")
        return Command(raw_id, method, params)
    if raw_id == 0:
        return Command(0, None, {})
    return Command(raw_id, "", {})


def parse_json(data: str | bytes, what: str) -> dict[str, Any]:
    """A JSON object from a query parameter or body (uni connect requests, emulation)."""
    value = validation.loads(data, what=what)
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object")
    return value


def get_str(params: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = params.get(name)
    if value is None:
        if required:
            raise CommandError(ErrorCode.BAD_REQUEST, f"{name} is required")
        return ""
    if not isinstance(value, str):
        raise CommandError(ErrorCode.BAD_REQUEST, f"{name} must be a string")
    if required and not value:
        raise CommandError(ErrorCode.BAD_REQUEST, f"{name} is required")
    return value


INT64 = range(-(2**63), 2**64)
"""What an int64 or uint64 field of the protocol can hold."""


def get_int(params: Mapping[str, Any], name: str, default: int = 0, *,
            minimum: int | None = None) -> int:
    """An integer field (int64/uint64; uint64 may come as a string), at least ``minimum``."""
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, str) and value.isdigit() and len(value) <= 20:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in INT64:
        raise CommandError(ErrorCode.BAD_REQUEST, f"{name} must be a 64-bit integer")
    if minimum is not None and value < minimum:
        raise CommandError(ErrorCode.BAD_REQUEST, f"{name} must be at least {minimum}")
    return value


def get_bool(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise CommandError(ErrorCode.BAD_REQUEST, f"{name} must be a boolean")
    return value


def payload_from_json(value: object) -> tuple[bytes, PayloadKind]:
    """A payload from the embedded JSON ``data`` of a command or API call: a JSON string is
    stored as text (what plain SSE and raw WebSocket subscribers then get), anything else as
    its compact JSON."""
    if isinstance(value, str):
        return value.encode(), PayloadKind.TEXT
    return dumps(value), PayloadKind.JSON


def info_bytes(value: object) -> bytes | None:
    """Embedded JSON ``info`` as stored in ``ClientInfo`` (None when absent)."""
    return None if value is None else dumps(value)


# -- encoding --------------------------------------------------------------------------------


def data_json(data: bytes, kind: PayloadKind) -> bytes:
    """A payload as the embedded JSON of ``data``: JSON as is, text as a JSON string, binary
    as a base64 string (the JSON format cannot carry bytes)."""
    if kind is PayloadKind.JSON:
        return data
    if kind is PayloadKind.TEXT:
        return dumps(data.decode("utf-8", "replace"))
    return b'"' + base64.b64encode(data) + b'"'


def client_info(info: ClientInfo) -> bytes:
    """``ClientInfo`` message."""
    out = b'{"user":' + dumps(info.user) + b',"client":' + dumps(info.client)
    if info.conn_info is not None:
        out += b',"conn_info":' + info.conn_info
    if info.chan_info is not None:
        out += b',"chan_info":' + info.chan_info
    return out + b"}"


def client_info_value(info: ClientInfo) -> dict[str, object]:
    """``ClientInfo`` as a JSON value (presence replies)."""
    value: dict[str, object] = json.loads(client_info(info))
    return value


def publication(pub: Publication) -> bytes:
    """``Publication`` message: data, offset, info of the publishing client, and the livehub
    event name as the ``event`` tag."""
    out = b'{"data":' + data_json(pub.data, pub.kind)
    if pub.position.offset:
        out += b',"offset":%d' % pub.position.offset
    if pub.info is not None:
        out += b',"info":' + client_info(pub.info)
    if pub.event is not None:
        out += b',"tags":{"event":' + dumps(pub.event) + b"}"
    return out + b"}"


def push(kind: str, body: bytes, channel: str | None = None, *, uni: bool = False) -> bytes:
    """A ``Push`` with one field ``kind`` (pub, join, leave, unsubscribe, subscribe, message,
    connect, disconnect, refresh), wrapped in a ``Reply`` unless ``uni``."""
    inner = b"{"
    if channel is not None:
        inner += b'"channel":' + dumps(channel) + b","
    inner += b'"' + kind.encode() + b'":' + body + b"}"
    return inner if uni else b'{"push":' + inner + b"}"


def reply(command_id: int, method: str, result: Mapping[str, object] | None = None) -> bytes:
    """A successful ``Reply`` to a command."""
    return (b'{"id":%d,"' % command_id + method.encode() + b'":'
            + (dumps(result) if result else b"{}") + b"}")


def error_reply(command_id: int, code: int, message: str | None = None) -> bytes:
    """A ``Reply`` carrying ``Error`` (temporary for internal and rate-limit errors)."""
    error: dict[str, object] = {"code": code,
                                "message": message or ERROR_MESSAGES.get(code, "error")}
    if code in (ErrorCode.INTERNAL, ErrorCode.TOO_MANY_REQUESTS):
        error["temporary"] = True
    return dumps({"id": command_id, "error": error})


def disconnect_body(code: int, reason: str) -> bytes:
    """``Disconnect`` message."""
    return dumps({"code": code, "reason": reason, "reconnect": reconnects(code)})
