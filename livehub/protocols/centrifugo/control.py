"""Node-to-node control messages of the Centrifugo layer (pure encode/decode).

They travel through ``Broker.publish_control`` and reach every node's ``on_control``, so an
emulation request or a server API call lands on whichever node holds the session or the
user's connections, with the in-memory broker and with Redis alike.  Each message is one JSON
object tagged ``"cf"``; messages of other layers (not JSON, or without the tag) are ignored.

Kinds: ``emulation`` (node, session, data), ``disconnect`` (user, client, session, whitelist,
code, reason), ``subscribe`` (user, channel, client, session, info, data, recover_since),
``unsubscribe`` (user, channel, client, session), ``refresh`` (user, client, session, expired,
expire_at), ``node`` (a heartbeat: uid, name, version, num_clients, num_users, num_channels,
num_subs, uptime), ``survey`` (id, origin, op, pattern) and ``survey_reply`` (id, to, origin,
channels).
"""

from __future__ import annotations

import json
from typing import Any

TAG = "cf"


def encode(kind: str, **fields: object) -> bytes:
    body = {TAG: kind, **{k: v for k, v in fields.items() if v is not None}}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def decode(data: bytes) -> tuple[str, dict[str, Any]] | None:
    """``(kind, fields)`` of a Centrifugo control message, None for anything else."""
    if not data.startswith(b"{"):
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    kind = value.pop(TAG, None)
    if not isinstance(kind, str):
        return None
    return kind, value
