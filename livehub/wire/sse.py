"""Server-Sent Events encoding (WHATWG HTML, "Server-sent events", §9.2.5-9.2.6).

Pure functions from fields to the bytes of one event block.  A block is a run of
``field: value`` lines ended by an empty line; the browser joins multiple ``data:`` lines with
``\\n``, so a payload containing CR, LF or CRLF is split into one ``data:`` line per line
(a CRLF in the payload therefore arrives as LF: the format cannot carry it).
"""

from __future__ import annotations

import re

_NEWLINES = re.compile(rb"\r\n|\r|\n")
_BAD_FIELD = re.compile(r"[\r\n\x00]")


def valid_field(value: str) -> bool:
    """Whether ``value`` can be an ``id:`` or ``event:`` value (no CR, LF or NUL)."""
    return _BAD_FIELD.search(value) is None


def data_lines(data: bytes) -> bytes:
    """``data:`` lines for a payload, each ended by LF (no final blank line)."""
    if b"\n" not in data and b"\r" not in data:
        return b"data: " + data + b"\n"
    return b"".join(b"data: " + line + b"\n" for line in _NEWLINES.split(data))


def event_block(data_part: bytes, *, event: str | None = None,
                event_id: str | None = None) -> bytes:
    """A whole event: optional ``id:`` and ``event:`` then pre-built ``data_part`` and a blank line.

    ``data_part`` is the output of :func:`data_lines`; build it once per publication and reuse
    it for every cursor variant.
    """
    head = b""
    if event_id is not None:
        head = b"id: " + event_id.encode() + b"\n"
    if event is not None:
        head += b"event: " + event.encode() + b"\n"
    return head + data_part + b"\n"


def id_only(event_id: str) -> bytes:
    """A block that sets the client's last event ID without dispatching an event (§9.2.6)."""
    return b"id: " + event_id.encode() + b"\n\n"


def retry(ms: int) -> bytes:
    """A block setting the reconnection time."""
    return b"retry: " + str(int(ms)).encode() + b"\n\n"


def comment(text: str = "") -> bytes:
    """A comment line block, used as heartbeat; ignored by clients."""
    return b":" + (b" " + text.encode() if text else b"") + b"\n\n"
