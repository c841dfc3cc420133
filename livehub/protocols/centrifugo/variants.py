"""Wire variants of Centrifugo pushes: one publication becomes one ``pub`` push, encoded once
per (bidirectional or unidirectional, framing) and shared by every connection of that variant.

A push carries nothing per connection (no client ids, no subscription ids), so the hub hands
the same bytes to every Centrifugo subscriber of a variant.  Resets and checkpoints are empty:
recovery results travel in the subscribe (or connect) reply instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from livehub.core.broker import Publication
from livehub.protocols.centrifugo import protocol
from livehub.transports.framing import chunk, intern
from livehub.transports.websocket import framers
from livehub.wire.cursor import StreamPosition

Frame = Callable[[bytes], bytes]


class _PushCache:
    """The push body of the publication being fanned out right now (one per push flavour)."""

    __slots__ = ("_pub", "_uni", "_value")

    def __init__(self, uni: bool) -> None:
        self._pub: Publication | None = None
        self._uni = uni
        self._value = b""

    def get(self, pub: Publication) -> bytes:
        if pub is not self._pub:
            self._value = protocol.push("pub", protocol.publication(pub), pub.channel,
                                        uni=self._uni)
            self._pub = pub
        return self._value


_caches = {False: _PushCache(False), True: _PushCache(True)}


class PushVariant:
    """Centrifugo pushes with one framing."""

    __slots__ = ("__weakref__", "_cache", "frame", "uni")

    def __init__(self, frame: Frame, uni: bool) -> None:
        self.frame = frame
        self.uni = uni
        self._cache = _caches[uni]

    def encode(self, pub: Publication, positions: Mapping[str, StreamPosition]) -> bytes:
        return self.frame(self._cache.get(pub))

    def encode_reset(self, channels: Sequence[str],
                     positions: Mapping[str, StreamPosition]) -> bytes:
        return b""

    def encode_checkpoint(self, positions: Mapping[str, StreamPosition]) -> bytes:
        return b""

    def encode_push(self, kind: str, body: bytes, channel: str | None = None) -> bytes:
        """Any other push (join, leave, unsubscribe...) in this variant's framing."""
        return self.frame(protocol.push(kind, body, channel, uni=self.uni))


def sse_frame(payload: bytes) -> bytes:
    """One SSE event whose data is one JSON line (compact JSON has no raw line breaks)."""
    return b"data: " + payload + b"\n\n"


def line_chunk(payload: bytes) -> bytes:
    """One newline-terminated JSON line as an HTTP/1.1 chunk."""
    return chunk(payload + b"\n")


def json_line(payload: bytes) -> bytes:
    """One newline-terminated JSON line (HTTP/2: DATA frames need no chunks)."""
    return payload + b"\n"


def _intern(key: tuple[object, ...], frame: Frame, uni: bool) -> PushVariant:
    return intern(("cf", *key), PushVariant, lambda: PushVariant(frame, uni))


def websocket_variant(deflate_bits: int | None, *, uni: bool = False) -> PushVariant:
    """Text frames, compressed when the connection negotiated permessage-deflate."""
    return _intern(("ws", deflate_bits, uni), framers(deflate_bits)[0], uni)


def sse_variant(*, uni: bool = False) -> PushVariant:
    return _intern(("sse", uni), sse_frame, uni)


def http_stream_variant(*, uni: bool = False, chunked: bool = True) -> PushVariant:
    """JSON lines, as HTTP/1.1 chunks or as they are (HTTP/2 DATA frames)."""
    if chunked:
        return _intern(("http_stream", uni), line_chunk, uni)
    return _intern(("http_stream_lines", uni), json_line, uni)
