"""Sans-I/O WebSocket server codec: parse client frames into events, encode server frames."""

from __future__ import annotations

import codecs
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Final, TypeAlias

from livehub.codes import CloseCode
from livehub.errors import LivehubError, PayloadTooLarge, WebSocketError

if TYPE_CHECKING:
    from livehub.wire.deflate import Deflater

__all__ = [
    "BinaryMessage",
    "CloseReceived",
    "Event",
    "FrameParser",
    "Opcode",
    "Ping",
    "Pong",
    "TextMessage",
    "encode_binary",
    "encode_close",
    "encode_frame",
    "encode_ping",
    "encode_pong",
    "encode_text",
    "is_valid_close_code",
]


class Opcode(IntEnum):
    """Frame opcodes (RFC 6455 §5.2, §11.8); every other value is reserved."""

    CONTINUATION = 0
    TEXT = 1
    BINARY = 2
    CLOSE = 8
    PING = 9
    PONG = 10


@dataclass(frozen=True, slots=True)
class TextMessage:
    """A complete text message (RFC 6455 §5.6), already UTF-8 decoded."""

    data: str


@dataclass(frozen=True, slots=True)
class BinaryMessage:
    """A complete binary message (RFC 6455 §5.6)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    """A Ping control frame (RFC 6455 §5.5.2); answer with a Pong carrying ``data``."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """A Pong control frame (RFC 6455 §5.5.3)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """A Close frame (RFC 6455 §5.5.1); ``code`` is 1005 when it had no body (§7.1.5)."""

    code: int
    reason: str


Event: TypeAlias = TextMessage | BinaryMessage | Ping | Pong | CloseReceived

_FIN: Final = 0x80
_RSV1: Final = 0x40
_RSV_ALL: Final = 0x70
_MASK_BIT: Final = 0x80
_MAX_CONTROL_PAYLOAD: Final = 125

#: Slack on the *wire* size of a compressed message over the decompressed limit: DEFLATE stored
#: blocks expand incompressible data by 5 bytes per 64 KiB, so this is generous and still bounds
#: what we buffer before the decompressed size is known.
_DEFLATE_SLACK_SHIFT: Final = 8
_DEFLATE_SLACK_BYTES: Final = 1024

#: A fragmented message may have ``max_message_size // FRAGMENT_BYTES`` frames, and at least
#: ``MIN_FRAGMENTS``: fragments average at least this many bytes, or the message is refused.
FRAGMENT_BYTES: Final = 64
MIN_FRAGMENTS: Final = 64

_utf8_decoder = codecs.getincrementaldecoder("utf-8")


def is_valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a Close frame on the wire (RFC 6455 §7.4.1, §7.4.2).

    1000-1003 and 1007-1014 are the defined and IANA-registered codes, 3000-4999 are for
    libraries and applications.  0-999, 1004-1006, 1015, 1016-2999 and >= 5000 are not.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _protocol_error(message: str) -> WebSocketError:
    return WebSocketError(message, close_code=CloseCode.PROTOCOL_ERROR)


def _invalid_data(message: str) -> WebSocketError:
    return WebSocketError(message, close_code=CloseCode.INVALID_DATA)


_from_bytes = int.from_bytes  # big-endian by default (3.11+)


def _unmask(data: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask`` (RFC 6455 §5.3) as one big-int XOR."""
    n = len(data)
    words = (n + 3) >> 2
    key = mask * words
    if words << 2 != n:
        key = key[:n]
    return (_from_bytes(data) ^ _from_bytes(key)).to_bytes(n)


class FrameParser:
    """Incremental parser of client-to-server frames (RFC 6455 §5) for one connection.

    ``feed`` takes bytes in any chunking and returns the complete events they finish.  A
    violation raises ``WebSocketError`` (``close_code`` 1002 protocol error or 1007 invalid
    data) or ``PayloadTooLarge`` (1009); the parser is then dead and every later ``feed``
    raises the same error again.  Events that preceded the violation are still delivered
    (the peer sent them before it broke the protocol): when a chunk holds both, ``feed``
    returns those events, sets ``error``, and the next ``feed`` raises.  After a Close frame
    the parser ignores whatever follows (§5.5.1: the peer must not send data after Close).

    Limits (§10.4): a message may carry at most ``max_message_size`` bytes, counted across
    its fragments and after inflation (RFC 7692), in at most
    ``max(MIN_FRAGMENTS, max_message_size // FRAGMENT_BYTES)`` frames, so tiny or empty
    continuation frames cannot keep a message open forever; the parts of a fragmented message
    are gathered in one buffer, so what a connection holds is bounded by the limit itself.
    Invalid UTF-8 fails the connection as soon as it arrives (§8.1), inside a frame too.
    """

    __slots__ = (
        "_buf",
        "_closed",
        "_decoder",
        "_deflate",
        "_error",
        "_max",
        "_max_fragments",
        "_msg",
        "_msg_compressed",
        "_msg_fragments",
        "_msg_opcode",
        "_msg_size",
        "_msg_wire",
        "_peek",
        "_peek_at",
        "_peeked",
    )

    def __init__(self, *, max_message_size: int = 1 << 20,
                 deflate: Deflater | None = None) -> None:
        if max_message_size < 0:
            raise ValueError("max_message_size must be >= 0")
        self._max = max_message_size
        self._max_fragments = max(MIN_FRAGMENTS, max_message_size // FRAGMENT_BYTES)
        self._deflate = deflate
        self._buf = bytearray()
        self._error: LivehubError | None = None
        self._closed = False
        # State of a fragmented (or compressed) message in progress (§5.4).
        self._msg_opcode = 0
        self._msg_compressed = False
        self._msg = bytearray()
        self._msg_size = 0
        self._msg_wire = 0
        self._msg_fragments = 0
        self._decoder: codecs.IncrementalDecoder | None = None
        # UTF-8 check of the part received so far of an incomplete text frame (§8.1).
        self._peek: codecs.IncrementalDecoder | None = None
        self._peeked = 0
        self._peek_at = 0

    @property
    def closed(self) -> bool:
        """Whether a Close frame was received (later bytes are ignored)."""
        return self._closed

    @property
    def error(self) -> LivehubError | None:
        """The violation that killed the parser (the next ``feed`` raises it), or None."""
        return self._error

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray) -> list[Event]:
        """Consume ``data``; return the events it completes (RFC 6455 §5, §6.2)."""
        if self._error is not None or self._closed:
            return self._after_end()
        buf: bytes | bytearray
        if self._buf:
            self._buf += data
            buf = self._buf
        else:
            buf = data
        events: list[Event] = []
        end = len(buf)
        pos = 0
        try:
            while end - pos >= 2:
                b0 = buf[pos]
                length = buf[pos + 1] - _MASK_BIT
                if (0x81 <= b0 <= 0x82 and 0 <= length < 126
                        and not self._msg_opcode and length <= self._max):
                    # Hot path: a whole, small, uncompressed message in one masked frame.
                    stop = pos + 6 + length
                    if stop > end:
                        if b0 == 0x81 and end - pos > 6:
                            self._peek_text(buf, pos, pos + 6, end, continuation=False)
                        break
                    if length:
                        words = (length + 3) >> 2
                        key = buf[pos + 2:pos + 6] * words
                        if words << 2 != length:
                            key = key[:length]
                        payload = (_from_bytes(buf[pos + 6:stop])
                                   ^ _from_bytes(key)).to_bytes(length)
                    else:
                        payload = b""
                    pos = stop
                    if b0 == 0x82:
                        events.append(BinaryMessage(payload))
                        continue
                    try:
                        text = payload.decode("utf-8")
                    except UnicodeDecodeError:
                        raise _invalid_data("invalid UTF-8 in text message "
                                            "(RFC 6455 §8.1)") from None
                    events.append(TextMessage(text))
                    continue
                stop = self._frame(buf, pos, end, events)
                if stop < 0:
                    break
                pos = stop
        except LivehubError as exc:
            self._error = exc
            self._buf = bytearray()
            self._msg = bytearray()
            self._peek = self._decoder = None
            if not events:
                raise
            return events  # delivered first; the next feed raises (see class docstring)
        if self._peeked:
            if self._peek_at != pos:
                self._peeked = 0  # the frame looked into is complete; the one kept is another
            else:
                self._peek_at = 0  # the frame kept heads the buffer of the next feed
        if buf is self._buf:
            if pos:
                del self._buf[:pos]
        elif pos < end:
            self._buf = bytearray(buf[pos:])
        return events

    def _after_end(self) -> list[Event]:
        """A dead parser raises its error again; a closed one ignores input (§5.5.1)."""
        err = self._error
        if err is not None:
            raise type(err)(err.message, close_code=err.close_code)
        return []

    def _frame(self, buf: bytes | bytearray, pos: int, end: int, events: list[Event]) -> int:
        """Parse the frame at ``pos``: return where it ends, or -1 if it is incomplete."""
        avail = end - pos
        b0 = buf[pos]
        b1 = buf[pos + 1]
        opcode = b0 & 0x0F
        # §5.2 RSV bits, opcodes and §5.4 fragmentation rules, checked on the first bytes.
        if b0 & _RSV_ALL:
            self._check_rsv(b0, opcode)
        if opcode > 2:
            if opcode < 8 or opcode > 10:
                raise _protocol_error(f"reserved opcode {opcode:#x} (RFC 6455 §5.2)")
            if not b0 & _FIN:
                raise _protocol_error("fragmented control frame (RFC 6455 §5.5)")
        elif opcode:
            if self._msg_opcode:
                raise _protocol_error("new data frame while a fragmented message is in "
                                      "progress (RFC 6455 §5.4)")
        elif not self._msg_opcode:
            raise _protocol_error("continuation frame without a message (RFC 6455 §5.4)")
        if not b1 & _MASK_BIT:
            raise _protocol_error("client frame is not masked (RFC 6455 §5.1, §5.3)")
        length = b1 & 0x7F
        if length < 126:
            hdr = 6
        elif length == 126:
            hdr = 8
            if avail < 4:
                return -1
            length = (buf[pos + 2] << 8) | buf[pos + 3]
            if length < 126:
                raise _protocol_error("non-minimal payload length (RFC 6455 §5.2)")
        else:
            hdr = 14
            if avail < 10:
                return -1
            length = _from_bytes(buf[pos + 2:pos + 10])
            if length >> 63:
                raise _protocol_error("64-bit payload length has its high bit set "
                                      "(RFC 6455 §5.2)")
            if length < 0x10000:
                raise _protocol_error("non-minimal payload length (RFC 6455 §5.2)")
        if opcode > 2:
            if length > _MAX_CONTROL_PAYLOAD:
                raise _protocol_error("control frame payload over 125 bytes (RFC 6455 §5.5)")
        else:
            if length > self._max - self._msg_size:
                self._check_size(opcode, b0, length)
            if not (opcode and b0 & _FIN) and self._msg_fragments >= self._max_fragments:
                raise PayloadTooLarge(
                    f"message in more than {self._max_fragments} fragments (RFC 6455 §10.4)",
                    close_code=CloseCode.MESSAGE_TOO_BIG)
        start = pos + hdr
        stop = start + length
        if avail < hdr + length:
            if (end > start and opcode < 3 and not b0 & _RSV1 and not self._msg_compressed
                    and (opcode or self._msg_opcode) == Opcode.TEXT):
                self._peek_text(buf, pos, start, end, continuation=not opcode)
            return -1
        payload = _unmask(buf[start:stop], buf[start - 4:start]) if length else b""
        if opcode > 2:
            events.append(self._control(opcode, payload))
            return end if opcode == Opcode.CLOSE else stop  # discard what follows a Close
        event = self._data(opcode, b0, payload)
        if event is not None:
            events.append(event)
        return stop

    def _peek_text(self, buf: bytes | bytearray, pos: int, start: int, end: int, *,
                   continuation: bool) -> None:
        """Fail fast (§8.1) on invalid UTF-8 in the part of a text frame received so far.

        The frame starts at ``pos``, its payload at ``start``.  Only the bytes new since the
        last look are unmasked and checked, by a decoder that continues the message's own (the
        frame may continue a fragmented message).  ``_peeked`` counts the bytes checked of the
        frame kept at the head of ``_buf`` between two feeds (``feed`` forgets it otherwise).
        """
        self._peek_at = pos
        done = self._peeked if pos == 0 else 0
        if end - start <= done:
            return
        peek = self._peek
        if not done or peek is None:
            peek = self._peek = _utf8_decoder()
            if continuation and self._decoder is not None:
                peek.setstate(self._decoder.getstate())
        mask = buf[start - 4:start]
        shift = done & 3
        if shift:
            mask = mask[shift:] + mask[:shift]
        try:
            peek.decode(_unmask(buf[start + done:end], mask))
        except UnicodeDecodeError:
            raise _invalid_data("invalid UTF-8 in text message (RFC 6455 §8.1)") from None
        self._peeked = end - start

    def _check_rsv(self, b0: int, opcode: int) -> None:
        """RSV2/RSV3 are never negotiated; RSV1 only starts a compressed message (RFC 7692 §6)."""
        if (b0 & _RSV_ALL) != _RSV1 or self._deflate is None:
            raise _protocol_error("reserved bits set without a negotiated extension "
                                  "(RFC 6455 §5.2)")
        if opcode not in (1, 2):
            raise _protocol_error("RSV1 set on a control or continuation frame "
                                  "(RFC 7692 §6.1)")

    def _check_size(self, opcode: int, b0: int, length: int) -> None:
        """Called when ``length`` would exceed the plain-size budget; raise unless compressed."""
        compressed = bool(b0 & _RSV1) if opcode else self._msg_compressed
        if compressed:
            # The decompressed size is checked by the Deflater; bound the buffered wire bytes.
            wire = 0 if opcode else self._msg_wire
            limit = self._max + (self._max >> _DEFLATE_SLACK_SHIFT) + _DEFLATE_SLACK_BYTES
            if wire + length <= limit:
                return
        raise PayloadTooLarge(f"message over {self._max} bytes (RFC 6455 §10.4)",
                              close_code=CloseCode.MESSAGE_TOO_BIG)

    def _control(self, opcode: int, payload: bytes) -> Event:
        """Decode a Ping, Pong or Close frame (RFC 6455 §5.5)."""
        if opcode == Opcode.PING:
            return Ping(payload)
        if opcode == Opcode.PONG:
            return Pong(payload)
        self._closed = True
        n = len(payload)
        if n == 0:
            return CloseReceived(CloseCode.NO_STATUS, "")
        if n == 1:
            raise _protocol_error("close frame with a 1-byte body (RFC 6455 §5.5.1)")
        code = (payload[0] << 8) | payload[1]
        if not is_valid_close_code(code):
            raise _protocol_error(f"invalid close code {code} (RFC 6455 §7.4)")
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid_data("invalid UTF-8 in close reason (RFC 6455 §5.5.1)") from None
        return CloseReceived(code, reason)

    def _end_message(self) -> None:
        self._msg_opcode = 0
        self._msg_size = 0
        self._msg_wire = 0
        self._msg_fragments = 0
        self._peek = None

    def _data(self, opcode: int, b0: int, payload: bytes) -> Event | None:
        """A fragment or a compressed data frame (RFC 6455 §5.4, RFC 7692 §6.2)."""
        fin = bool(b0 & _FIN)
        if opcode:
            self._msg_opcode = opcode
            self._msg_compressed = bool(b0 & _RSV1)
        self._msg_wire += len(payload)
        if self._msg_compressed:
            assert self._deflate is not None  # RSV1 is refused without it
            payload = self._deflate.decompress_fragment(
                payload, max_size=self._max - self._msg_size, fin=fin)
        if fin and opcode:  # a whole message in one frame
            self._end_message()
            if opcode == Opcode.BINARY:
                return BinaryMessage(payload)
            try:
                return TextMessage(payload.decode("utf-8"))
            except UnicodeDecodeError:
                raise _invalid_data("invalid UTF-8 in text message "
                                    "(RFC 6455 §8.1)") from None
        self._msg_size += len(payload)
        self._msg_fragments += 1
        if self._msg_opcode == Opcode.TEXT:
            decoder = self._decoder
            if decoder is None:
                decoder = self._decoder = _utf8_decoder()
            elif opcode:
                decoder.reset()
            try:
                # Fail fast (§8.1): the decoder raises on the fragment that makes the
                # sequence certainly invalid; a valid but incomplete tail is carried over.
                decoder.decode(payload, fin)
            except UnicodeDecodeError:
                raise _invalid_data("invalid UTF-8 in text message (RFC 6455 §8.1)") from None
        msg = self._msg
        msg += payload
        if not fin:
            return None
        self._msg = bytearray()
        kind = self._msg_opcode
        self._end_message()
        if kind == Opcode.BINARY:
            return BinaryMessage(bytes(msg))
        return TextMessage(msg.decode("utf-8"))  # checked fragment by fragment above


# --- Encoders (RFC 6455 §5.2; server frames are never masked, §5.1) ---------------------------

_pack_short = struct.Struct("!BB").pack
_pack_medium = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack
# Ready-made 2-byte headers of short final text/binary frames: a tuple index beats struct.pack.
_TEXT_HEADERS: Final = tuple(bytes((0x81, n)) for n in range(126))
_BINARY_HEADERS: Final = tuple(bytes((0x82, n)) for n in range(126))


def encode_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """One unmasked server frame (RFC 6455 §5.2): header then ``payload``, one concatenation.

    Control frames (opcode >= 8) must be final and carry at most 125 bytes (§5.5); breaking
    that is a bug of the caller and raises ``ValueError``.
    """
    b0 = opcode | (_FIN if fin else 0) | (_RSV1 if rsv1 else 0)
    n = len(payload)
    if opcode >= 8 and (n > _MAX_CONTROL_PAYLOAD or not fin):
        raise ValueError("control frames must be final with at most 125 bytes (RFC 6455 §5.5)")
    if n < 126:
        return _pack_short(b0, n) + payload
    if n < 0x10000:
        return _pack_medium(b0, 126, n) + payload
    return _pack_long(b0, 127, n) + payload


def encode_text(data: str | bytes) -> bytes:
    """A single-frame text message; ``bytes`` must already be valid UTF-8 (RFC 6455 §5.6)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    n = len(data)
    if n < 126:
        return _TEXT_HEADERS[n] + data
    return encode_frame(Opcode.TEXT, data)


def encode_binary(data: bytes) -> bytes:
    """A single-frame binary message (RFC 6455 §5.6)."""
    n = len(data)
    if n < 126:
        return _BINARY_HEADERS[n] + data
    return encode_frame(Opcode.BINARY, data)


def encode_close(code: int = CloseCode.NORMAL, reason: str = "") -> bytes:
    """A Close frame (RFC 6455 §5.5.1) with ``code`` and ``reason`` cut to 123 UTF-8 bytes.

    The reason is truncated on a character boundary so the body stays valid UTF-8.  Code 1005
    ("no status", §7.4.1) is never sent on the wire: it yields a Close frame without a body.
    Other codes that may not be sent (§7.4) raise ``ValueError``.
    """
    if code == CloseCode.NO_STATUS:
        return encode_frame(Opcode.CLOSE, b"")
    if not is_valid_close_code(code):
        raise ValueError(f"close code {code} may not be sent (RFC 6455 §7.4)")
    raw = reason.encode("utf-8", "replace")
    if len(raw) > _MAX_CONTROL_PAYLOAD - 2:
        cut = _MAX_CONTROL_PAYLOAD - 2
        while raw[cut] & 0xC0 == 0x80:  # do not split a multi-byte sequence
            cut -= 1
        raw = raw[:cut]
    return encode_frame(Opcode.CLOSE, code.to_bytes(2, "big") + raw)


def encode_ping(data: bytes = b"") -> bytes:
    """A Ping frame (RFC 6455 §5.5.2), at most 125 bytes of application data."""
    return encode_frame(Opcode.PING, data)


def encode_pong(data: bytes = b"") -> bytes:
    """A Pong frame (RFC 6455 §5.5.3); echo the Ping's data when answering one."""
    return encode_frame(Opcode.PONG, data)
