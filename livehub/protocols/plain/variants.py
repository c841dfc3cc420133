"""Wire variants of the plain transports: how one publication becomes the bytes of SSE, JSON
lines (HTTP streaming, long-polling, WebSocket ``format=json``) and raw WebSocket messages.

Variants are interned per (kind, channel set, framing), so every subscriber sharing one gets the
same ``bytes`` object from the hub.  Channel sets only matter for variants that carry a cursor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

from livehub.core.broker import Publication
from livehub.transports.framing import intern
from livehub.wire import sse
from livehub.wire.cursor import CursorCodec, StreamPosition
from livehub.wire.payload import PayloadKind, as_text, json_fields


class _OnePubCache:
    """Remembers one derived value for the publication being fanned out right now."""

    __slots__ = ("_pub", "_value")

    def __init__(self) -> None:
        self._pub: Publication | None = None
        self._value = b""

    def get(self, pub: Publication, make: Callable[[Publication], bytes]) -> bytes:
        if pub is not self._pub:
            self._value = make(pub)
            self._pub = pub
        return self._value


def _sse_data(pub: Publication) -> bytes:
    return sse.data_lines(as_text(pub.data, pub.kind))


def _json_body(pub: Publication) -> bytes:
    event = "" if pub.event is None else ',"event":' + json.dumps(pub.event)
    return f'"channel":"{pub.channel}"{event},{json_fields(pub.data, pub.kind)}'.encode()


def _sse_envelope(pub: Publication) -> bytes:
    return sse.data_lines(b"{" + _json_cache.get(pub, _json_body) + b"}")


_sse_cache = _OnePubCache()
_json_cache = _OnePubCache()
_envelope_cache = _OnePubCache()


class SseVariant:
    """``text/event-stream`` events whose ``id:`` is the cursor of the whole channel set.

    With ``envelope`` (``?format=json``) each event is an unnamed ``message`` whose data is
    ``{"channel", "event"?, "data"|"data_b64"}``: ``onmessage`` sees every publication and
    knows its channel.  Reset and disconnect stay named events either way."""

    __slots__ = ("__weakref__", "codec", "envelope")

    def __init__(self, channels: Sequence[str], *, envelope: bool = False) -> None:
        self.codec = CursorCodec(channels)
        self.envelope = envelope

    def encode(self, pub: Publication, positions: Mapping[str, StreamPosition]) -> bytes:
        if self.envelope:
            return sse.event_block(_envelope_cache.get(pub, _sse_envelope),
                                   event_id=self.codec.encode(positions))
        return sse.event_block(_sse_cache.get(pub, _sse_data), event=pub.event,
                               event_id=self.codec.encode(positions))

    def encode_reset(self, channels: Sequence[str],
                     positions: Mapping[str, StreamPosition]) -> bytes:
        body = json.dumps({"channels": list(channels),
                           "reason": "history does not cover the gap; continuing live"})
        return sse.event_block(sse.data_lines(body.encode()), event="reset",
                               event_id=self.codec.encode(positions))

    def encode_checkpoint(self, positions: Mapping[str, StreamPosition]) -> bytes:
        return sse.id_only(self.codec.encode(positions))


class JsonLineVariant:
    """One JSON object per publication, newline-terminated; optionally framed as an HTTP chunk
    (HTTP streaming) or as a WebSocket text frame (``frame`` callable)."""

    __slots__ = ("__weakref__", "codec", "frame")

    def __init__(self, channels: Sequence[str], frame: Callable[[bytes], bytes]) -> None:
        self.codec = CursorCodec(channels)
        self.frame = frame

    def encode(self, pub: Publication, positions: Mapping[str, StreamPosition]) -> bytes:
        line = (b'{"type":"pub",' + _json_cache.get(pub, _json_body) + b',"cursor":"'
                + self.codec.encode(positions).encode() + b'"}\n')
        return self.frame(line)

    def encode_reset(self, channels: Sequence[str],
                     positions: Mapping[str, StreamPosition]) -> bytes:
        return self.frame(json_line({"type": "reset", "channels": list(channels),
                                     "cursor": self.codec.encode(positions)}))

    def encode_checkpoint(self, positions: Mapping[str, StreamPosition]) -> bytes:
        return self.frame(json_line({"type": "cursor", "cursor": self.codec.encode(positions)}))


class RawWsVariant:
    """The payload alone as one WebSocket message (text or binary as published)."""

    __slots__ = ("__weakref__", "frame_binary", "frame_text")

    def __init__(self, frame_text: Callable[[bytes], bytes],
                 frame_binary: Callable[[bytes], bytes]) -> None:
        self.frame_text = frame_text
        self.frame_binary = frame_binary

    def encode(self, pub: Publication, positions: Mapping[str, StreamPosition]) -> bytes:
        if pub.kind is PayloadKind.BINARY:
            return self.frame_binary(pub.data)
        return self.frame_text(pub.data)

    def encode_reset(self, channels: Sequence[str],
                     positions: Mapping[str, StreamPosition]) -> bytes:
        return b""  # raw messages cannot say it; the endpoint closes with 3010 instead

    def encode_checkpoint(self, positions: Mapping[str, StreamPosition]) -> bytes:
        return b""


def json_line(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


def sse_variant(channels: Sequence[str], *, envelope: bool = False) -> SseVariant:
    return intern(("sse-json" if envelope else "sse", *sorted(set(channels))), SseVariant,
                  lambda: SseVariant(channels, envelope=envelope))


def json_variant(channels: Sequence[str], frame: Callable[[bytes], bytes],
                 frame_key: object) -> JsonLineVariant:
    return intern(("json", frame_key, *sorted(set(channels))), JsonLineVariant,
                  lambda: JsonLineVariant(channels, frame))


def raw_ws_variant(key: object, frame_text: Callable[[bytes], bytes],
                   frame_binary: Callable[[bytes], bytes]) -> RawWsVariant:
    return intern(("raw", key), RawWsVariant, lambda: RawWsVariant(frame_text, frame_binary))
