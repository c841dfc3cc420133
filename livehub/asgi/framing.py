"""Pure: what livehub's connections write, read back as ASGI messages (and client frames).

The protocols' connections (``transports.stream``, ``transports.websocket``) write HTTP/1.1
bytes: a response head, then a body that may be chunked (RFC 9112 §7.1), or WebSocket server
frames (RFC 6455 §5.2).  Under ASGI the server owns that framing, so the adapter reads the
bytes back into what ASGI sends: ``Head`` (status and headers), body bytes without the chunk
framing, and the opcode and payload of each frame.  Only livehub's own output is read here
(well-formed by construction: unmasked, never fragmented, no extension bits since the adapter
never negotiates permessage-deflate); anything else is a bug and raises ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from livehub.wire.websocket import Opcode

HOP_BY_HOP = frozenset({"connection", "transfer-encoding", "keep-alive", "upgrade",
                        "content-length", "sec-websocket-accept", "sec-websocket-extensions"})
"""Head fields the ASGI server writes itself (or that only mean something on HTTP/1.1)."""


@dataclass(frozen=True, slots=True)
class Head:
    status: int
    headers: list[tuple[bytes, bytes]]
    """The fields the ASGI server should send (``HOP_BY_HOP`` removed), lower-case names."""
    chunked: bool
    """The body that follows is chunk-framed (``Transfer-Encoding: chunked``)."""
    subprotocol: str | None = None
    """``Sec-WebSocket-Protocol`` of a 101 answer."""


def read_head(buf: bytes) -> tuple[Head, int] | None:
    """The HTTP/1.1 response head at the start of ``buf`` and where it ends, or None while
    it is incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError("not an HTTP/1.1 response head")
    headers: list[tuple[bytes, bytes]] = []
    chunked = False
    subprotocol = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip()
        if name == b"transfer-encoding" and value.lower() == b"chunked":
            chunked = True
        elif name == b"sec-websocket-protocol":
            subprotocol = value.decode("latin-1")
        elif name.decode("latin-1") not in HOP_BY_HOP:
            headers.append((name, value))
    return Head(int(parts[1]), headers, chunked, subprotocol), end + 4


class Dechunker:
    """Reads a chunked body (RFC 9112 §7.1) back into its data; ``done`` after the last
    chunk."""

    __slots__ = ("_buf", "done")

    def __init__(self) -> None:
        self._buf = b""
        self.done = False

    def feed(self, data: bytes) -> bytes:
        buf = self._buf + data if self._buf else data
        out: list[bytes] = []
        pos = 0
        while not self.done:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                break
            size = int(buf[pos:line_end], 16)
            start = line_end + 2
            if size == 0:
                if len(buf) < start + 2:
                    break
                self.done = True
                pos = start + 2
                break
            if len(buf) < start + size + 2:
                break
            out.append(buf[start:start + size])
            pos = start + size + 2
        self._buf = buf[pos:]
        return out[0] if len(out) == 1 else b"".join(out)


def split_frames(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The complete server frames at the start of ``buf`` as (opcode, payload), and the rest."""
    frames: list[tuple[int, bytes]] = []
    pos = 0
    n = len(buf)
    while pos + 2 <= n:
        b0, b1 = buf[pos], buf[pos + 1]
        if b0 & 0x70 or not b0 & 0x80 or b1 & 0x80:
            raise ValueError("not an unfragmented, uncompressed, unmasked server frame")
        length = b1 & 0x7F
        start = pos + 2
        if length == 126:
            if start + 2 > n:
                break
            length = int.from_bytes(buf[start:start + 2])
            start += 2
        elif length == 127:
            if start + 8 > n:
                break
            length = int.from_bytes(buf[start:start + 8])
            start += 8
        if start + length > n:
            break
        frames.append((b0 & 0x0F, buf[start:start + length]))
        pos = start + length
    return frames, buf[pos:]


def close_payload(payload: bytes) -> tuple[int, str]:
    """The code and reason of a Close frame's payload (RFC 6455 §5.5.1)."""
    if len(payload) < 2:
        return 1000, ""
    return int.from_bytes(payload[:2]), payload[2:].decode("utf-8", "replace")


_ZERO_MASK = b"\x00\x00\x00\x00"


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame carrying ``payload`` (RFC 6455 §5.2; the all-zero masking key
    leaves the payload as is), for the WebSocket connection's own parser."""
    n = len(payload)
    b0 = bytes((0x80 | opcode,))
    if n < 126:
        head = b0 + bytes((0x80 | n,))
    elif n < 0x10000:
        head = b0 + bytes((0x80 | 126,)) + n.to_bytes(2)
    else:
        head = b0 + bytes((0x80 | 127,)) + n.to_bytes(8)
    return head + _ZERO_MASK + payload


PONG = client_frame(Opcode.PONG, b"")
