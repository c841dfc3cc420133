"""Stream positions and the resume cursor that names a position in every channel of a stream.

A position is ``(epoch, offset)``: ``offset`` counts the publications of one channel stream
(the first is 1), ``epoch`` names that stream's incarnation and changes when the store lost it.

Theory of operation: a cursor is what a client hands back to resume (SSE ``id:`` and
``Last-Event-ID``, ``since=``, ``cursor=``).  A stream may cover several channels, and the
browser keeps only the last ``id:``, so one cursor carries the position of *every* channel of
the stream.  Its text form, safe in an SSE ``id:`` line and in a URL query, is::

    <check>.<offset>~<epoch>.<offset>~<epoch>...

with one ``offset~epoch`` entry per channel in sorted channel order, and ``check`` a short
checksum of the sorted channel names, so a cursor is refused (not silently misapplied) when it
is used for a different set of channels.  Names are not repeated in every event.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from livehub.errors import BadCursor

EPOCH_RE = re.compile(r"[A-Za-z0-9]{1,32}")
_ENTRY_RE = re.compile(r"(0|[1-9][0-9]{0,18})~([A-Za-z0-9]{1,32})")
MAX_CURSOR_LENGTH = 8192


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """A position in one channel stream: the last publication seen is ``offset`` of ``epoch``."""

    epoch: str
    offset: int


def channel_set_check(channels: Iterable[str]) -> str:
    """Checksum of a set of channel names (order does not matter), base-36."""
    digest = zlib.crc32("\n".join(sorted(channels)).encode())
    return _base36(digest)


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


class CursorCodec:
    """Encodes and decodes cursors for one sorted set of channels.

    Build one per channel set and reuse it: ``encode`` is on the fan-out path.
    """

    __slots__ = ("_prefix", "channels")

    def __init__(self, channels: Iterable[str]) -> None:
        self.channels: tuple[str, ...] = tuple(sorted(set(channels)))
        self._prefix = channel_set_check(self.channels)

    def encode(self, positions: Mapping[str, StreamPosition]) -> str:
        parts = [self._prefix]
        for name in self.channels:
            pos = positions[name]
            parts.append(f"{pos.offset}~{pos.epoch}")
        return ".".join(parts)

    def decode(self, text: str) -> dict[str, StreamPosition]:
        """Parse a cursor of this channel set; raise ``BadCursor`` with the reason otherwise."""
        if len(text) > MAX_CURSOR_LENGTH:
            raise BadCursor("cursor too long")
        parts = text.strip().split(".")
        if parts[0] != self._prefix:
            raise BadCursor("cursor does not belong to this set of channels")
        entries = parts[1:]
        if len(entries) != len(self.channels):
            raise BadCursor("cursor has the wrong number of positions")
        out: dict[str, StreamPosition] = {}
        for name, entry in zip(self.channels, entries, strict=True):
            m = _ENTRY_RE.fullmatch(entry)
            if m is None:
                raise BadCursor(f"malformed cursor position {entry[:40]!r}")
            out[name] = StreamPosition(m.group(2), int(m.group(1)))
        return out


def encode_cursor(positions: Mapping[str, StreamPosition]) -> str:
    """Cursor for the channels of ``positions``."""
    return CursorCodec(positions).encode(positions)


def decode_cursor(text: str, channels: Sequence[str]) -> dict[str, StreamPosition]:
    """Positions of ``channels`` in ``text``; raise ``BadCursor`` if it does not fit them."""
    return CursorCodec(channels).decode(text)
