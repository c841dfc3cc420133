"""The Redis layout of livehub: key and topic names, and the bytes stored and published.

Pure functions, no I/O; the scripts in ``redis_scripts`` and the broker in ``redis_broker`` agree
through this module.

Key layout (``P`` is the configured prefix, ``C`` the channel name; the ``{C}`` hash tag keeps
every key and topic of one channel in one Redis Cluster slot)::

    P:{C}:meta    hash    e = epoch, s = offset of the newest publication (the stream top)
    P:{C}:hist    stream  one entry per retained publication, id "<offset>-0",
                          fields t = store time (ms, Redis clock), p = message (below)
    P:{C}:pres    hash    client id -> ClientInfo (presence)
    P:{C}:pexp    zset    client id -> expiry time (ms, Redis clock)

Pub/sub topics::

    P:{C}:pub     publications of C: the message, exactly the bytes kept in history
    P:{C}:jl      join/leave of C: b"j" or b"l" + ClientInfo
    P:ctl         node-to-node control messages, as given

A publication message is ``<offset>:<epoch>:<time_ms>:`` (ASCII, written by the publish script,
which is the only place that knows the position) followed by the body built here::

    body     := version:u8 (=1) kind:u8 flags:u8 [event] [info] data
    flags    := bit 0 event present, bit 1 info present
    event    := len:u16 utf-8
    info     := client user conn_info chan_info
    client, user := len:u16 utf-8
    conn_info, chan_info := len:u32 bytes  (len 0xFFFFFFFF: None)
    data     := the rest

All integers are big-endian.
"""

from __future__ import annotations

import re
import struct

from livehub.core.broker import Publication
from livehub.core.presence import ClientInfo
from livehub.errors import ConfigError
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind

PREFIX_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
BODY_VERSION = 1
_HAS_EVENT = 1
_HAS_INFO = 2
_NONE32 = 0xFFFFFFFF
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_HEAD = struct.Struct("!BBB")
JOIN = b"j"
LEAVE = b"l"


class CodecError(ValueError):
    """Bytes from Redis that livehub did not write (another version, or corruption)."""


class Keys:
    """Key and topic names under one prefix."""

    __slots__ = ("control", "prefix")

    def __init__(self, prefix: str = "livehub") -> None:
        if not PREFIX_RE.fullmatch(prefix):
            raise ConfigError(f"redis prefix must be 1-64 of A-Z a-z 0-9 _ . -, not {prefix!r}")
        self.prefix = prefix
        self.control = f"{prefix}:ctl".encode()

    def meta(self, channel: str) -> str:
        return f"{self.prefix}:{{{channel}}}:meta"

    def history(self, channel: str) -> str:
        return f"{self.prefix}:{{{channel}}}:hist"

    def presence(self, channel: str) -> str:
        return f"{self.prefix}:{{{channel}}}:pres"

    def presence_expiry(self, channel: str) -> str:
        return f"{self.prefix}:{{{channel}}}:pexp"

    def pub_topic(self, channel: str) -> bytes:
        return f"{self.prefix}:{{{channel}}}:pub".encode()

    def join_leave_topic(self, channel: str) -> bytes:
        return f"{self.prefix}:{{{channel}}}:jl".encode()


def _put_str(out: bytearray, text: str) -> None:
    raw = text.encode()
    if len(raw) > 0xFFFF:
        raise ValueError("string longer than 65535 bytes")
    out += _U16.pack(len(raw))
    out += raw


def _put_opt(out: bytearray, raw: bytes | None) -> None:
    if raw is None:
        out += _U32.pack(_NONE32)
    else:
        out += _U32.pack(len(raw))
        out += raw


def _encode_info_into(out: bytearray, info: ClientInfo) -> None:
    _put_str(out, info.client)
    _put_str(out, info.user)
    _put_opt(out, info.conn_info)
    _put_opt(out, info.chan_info)


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise CodecError("truncated message")
        chunk = self.buf[self.pos:end]
        self.pos = end
        return chunk

    def u16(self) -> int:
        value: int = _U16.unpack(self.take(2))[0]
        return value

    def u32(self) -> int:
        value: int = _U32.unpack(self.take(4))[0]
        return value

    def text(self) -> str:
        try:
            return self.take(self.u16()).decode()
        except UnicodeDecodeError:
            raise CodecError("invalid UTF-8 in message") from None

    def opt(self) -> bytes | None:
        n = self.u32()
        return None if n == _NONE32 else self.take(n)

    def info(self) -> ClientInfo:
        return ClientInfo(self.text(), self.text(), self.opt(), self.opt())


def encode_body(data: bytes, kind: PayloadKind, event: str | None,
                info: ClientInfo | None) -> bytes:
    """The part of a publication message that the publisher knows (everything but position
    and time)."""
    flags = (_HAS_EVENT if event is not None else 0) | (_HAS_INFO if info is not None else 0)
    out = bytearray(_HEAD.pack(BODY_VERSION, int(kind), flags))
    if event is not None:
        _put_str(out, event)
    if info is not None:
        _encode_info_into(out, info)
    out += data
    return bytes(out)


def decode_message(channel: str, message: bytes) -> Publication:
    """A publication from a message of the publish script (as published and as stored)."""
    parts = message.split(b":", 3)
    if len(parts) != 4:
        raise CodecError("publication message without a position header")
    offset_text, epoch, time_text, body = parts
    try:
        offset = int(offset_text)
        time_ms = int(time_text)
        epoch_text = epoch.decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise CodecError("malformed publication position header") from None
    if len(body) < _HEAD.size:
        raise CodecError("truncated publication body")
    version, kind_value, flags = _HEAD.unpack_from(body)
    if version != BODY_VERSION:
        raise CodecError(f"unknown publication body version {version}")
    try:
        kind = PayloadKind(kind_value)
    except ValueError:
        raise CodecError(f"unknown payload kind {kind_value}") from None
    reader = _Reader(body, _HEAD.size)
    event = reader.text() if flags & _HAS_EVENT else None
    info = reader.info() if flags & _HAS_INFO else None
    return Publication(channel, body[reader.pos:], kind, StreamPosition(epoch_text, offset),
                       event, time_ms / 1000.0, info)


def encode_info(info: ClientInfo) -> bytes:
    out = bytearray()
    _encode_info_into(out, info)
    return bytes(out)


def decode_info(raw: bytes) -> ClientInfo:
    reader = _Reader(raw)
    info = reader.info()
    if reader.pos != len(raw):
        raise CodecError("trailing bytes after client info")
    return info


def encode_join_leave(join: bool, info: ClientInfo) -> bytes:
    return (JOIN if join else LEAVE) + encode_info(info)


def decode_join_leave(message: bytes) -> tuple[bool, ClientInfo]:
    """``(is_join, info)`` of a join/leave message."""
    tag = message[:1]
    if tag not in (JOIN, LEAVE):
        raise CodecError("join/leave message with an unknown tag")
    return tag == JOIN, decode_info(message[1:])
