"""Journals: one ordered log channel that holds a copy of every publication of some namespaces.

Theory of operation
-------------------
A reader that follows *patterns* of channels (a Mercure URI template, ``*``) cannot subscribe
to every channel it might match, and its resume point must be one position, not one per
channel.  A journal gives it both: the ``Node`` appends an entry to the journal channel for
every publication to a channel of a journaled namespace (whichever protocol published it), so
the journal is one stream with one position per entry; readers subscribe to it like any
channel and resume from one ``StreamPosition`` through the usual catch-up.

* The entry is appended right after the publication itself is stored; the journal's order is
  the order of those appends (per channel, it is the channel's order: a caller's publications
  are appended in the order they were stored).
* A protocol that stores several channels' copies of one message (a Mercure update with several
  topics) publishes them with ``journal=False`` and appends one entry of its own (``meta``), so a
  journal reader sees the message once.
* The journal channel is never journaled into itself.  Name it with ``$`` (private), so only
  clients granted it can read it directly on the plain transports.

An entry is a compact JSON object (``PayloadKind.TEXT``)::

    {"id": "<protocol id>" | null, "channel": "...", "kind": 1|2|3, "event": "..." | null,
     "data": "<text, or base64 for BINARY>", "meta": {...}}

``id`` comes first, so ``has_id`` can find an entry by its protocol id without parsing it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from livehub.core.channels import NAMESPACE_SEPARATOR, check_channel
from livehub.errors import ConfigError
from livehub.wire.payload import PayloadKind


@dataclass(frozen=True, slots=True)
class Journal:
    """The journal ``channel`` of the channels of ``namespaces`` (``""``: channels without a
    namespace)."""

    channel: str
    namespaces: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        try:
            check_channel(self.channel)
        except Exception as exc:
            raise ConfigError(f"journal channel {self.channel!r} is not a valid channel name"
                              ) from exc

    def covers(self, channel: str) -> bool:
        """Whether a publication to ``channel`` gets a journal entry."""
        if channel == self.channel:
            return False
        ns, sep, _ = channel.partition(NAMESPACE_SEPARATOR)
        return (ns if sep else "") in self.namespaces


@dataclass(frozen=True, slots=True)
class Entry:
    """One decoded journal entry."""

    channel: str
    data: bytes
    kind: PayloadKind
    event: str | None = None
    entry_id: str | None = None
    meta: Mapping[str, object] = field(default_factory=dict)


def encode_entry(channel: str, data: bytes, kind: PayloadKind, *, event: str | None = None,
                 entry_id: str | None = None,
                 meta: Mapping[str, object] | None = None) -> bytes:
    """The bytes of a journal entry (see the module docstring)."""
    text = base64.b64encode(data).decode() if kind is PayloadKind.BINARY else data.decode()
    value: dict[str, object] = {"id": entry_id, "channel": channel, "kind": int(kind),
                                "event": event, "data": text}
    if meta:
        value["meta"] = dict(meta)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class BadEntry(ValueError):
    """Journal data that is not an entry (someone published garbage to the journal)."""


def decode_entry(raw: bytes) -> Entry:
    """Parse a journal entry; ``BadEntry`` if it is not one."""
    try:
        value = json.loads(raw)
        channel, kind, text = value["channel"], PayloadKind(value["kind"]), value["data"]
        event, entry_id, meta = value.get("event"), value.get("id"), value.get("meta") or {}
    except (ValueError, KeyError, TypeError) as exc:
        raise BadEntry(str(exc)) from None
    if not (isinstance(channel, str) and isinstance(text, str) and isinstance(meta, dict)
            and (event is None or isinstance(event, str))
            and (entry_id is None or isinstance(entry_id, str))):
        raise BadEntry("malformed journal entry")
    data = base64.b64decode(text) if kind is PayloadKind.BINARY else text.encode()
    return Entry(channel, data, kind, event, entry_id, meta)


def id_prefix(entry_id: str) -> bytes:
    """The bytes an entry with ``entry_id`` starts with."""
    return b'{"id":' + json.dumps(entry_id, ensure_ascii=False).encode() + b","


def has_id(raw: bytes, prefix: bytes) -> bool:
    """Whether the entry ``raw`` carries the id whose ``id_prefix`` is ``prefix``."""
    return raw.startswith(prefix)

