"""Pure byte helpers of the load generator: WebSocket client frames, HTTP heads, bench payloads.

Nothing here touches a socket or an event loop, so every function is unit-tested on bytes.

The bench payload is ASCII ``#<seq>,<t_us>,words...`` padded with words to the requested size:
``seq`` counts publications from 1 and ``t_us`` is ``time.monotonic_ns() // 1000`` at the
publisher (CLOCK_MONOTONIC is one clock for every process of the machine). Whatever envelope a
server wraps it in (a WebSocket frame, an SSE ``data:`` line, a JSON string), the ``#`` marks
where a message starts, so a subscriber counts messages with one ``bytes.count`` per read and a
probe subscriber parses the few digits after it.
"""

from __future__ import annotations

import random

MARK = b"#"
RSV1 = 0x40
"""The bit of a frame's first byte that marks a compressed message (RFC 7692 §6)."""
_WORDS = (b"price quote order trade match score goal team user room chat message update event "
          b"status online offline typing read sent value level alpha beta gamma delta north "
          b"south east west open close high low volume change market stream channel ticker "
          b"player point round start stop time date name text body title item list count").split()
_RNG = random.Random(15)
_PAD = b" ".join(_RNG.choice(_WORDS) for _ in range(16384))[:65536]
"""Filler after a payload's mark: words, so permessage-deflate compresses it about as much as
chat or ticker text (about 3:1), never ``#``, ``,``, quotes or line breaks."""

# RFC 6455 §5.2 opcodes the generator cares about.
OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

# A fixed key is valid for the handshake (RFC 6455 §4.1 asks only for 16 random-looking bytes
# encoded in base64); we never check Sec-WebSocket-Accept, so the client does no hashing.
WS_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def make_payload(seq: int, t_us: int, size: int) -> bytes:
    """The bench payload for publication ``seq`` stamped ``t_us``, padded to ``size`` bytes."""
    head = b"#%d,%d," % (seq, t_us)
    if len(head) >= size:
        return head
    return head + _PAD[: size - len(head)]


def parse_marks(buf: bytes, start: int, end: int, out: list[tuple[int, int]]) -> int:
    """Append ``(seq, t_us)`` for every complete mark in ``buf[start:end]``.

    Returns the offset where an incomplete mark begins (the caller keeps ``buf[offset:end]``
    for the next read), or ``end`` when nothing is pending.
    """
    find = buf.find
    i = find(MARK, start, end)
    while i >= 0:
        c1 = find(b",", i + 1, end)
        if c1 < 0:
            return i
        c2 = find(b",", c1 + 1, end)
        if c2 < 0:
            return i
        out.append((int(buf[i + 1 : c1]), int(buf[c1 + 1 : c2])))
        i = find(MARK, c2, end)
    return end


def ws_client_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One final client frame (RFC 6455 §5.2), masked with the all-zero key.

    Clients must mask (§5.3) but the key may be any 32 bits; with zeros the masked payload is
    the payload itself, so the generator spends nothing on XOR.
    """
    n = len(payload)
    first = 0x80 | opcode
    if n < 126:
        head = bytes((first, 0x80 | n))
    elif n < 65536:
        head = bytes((first, 0xFE)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, 0xFF)) + n.to_bytes(8, "big")
    return head + b"\x00\x00\x00\x00" + payload


DEFLATE_OFFER = b"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"
"""The permessage-deflate offer of RFC 7692 §7 (the clients never compress what they send)."""


def ws_upgrade_request(path: str, port: int, *, deflate: bool = False) -> bytes:
    """The HTTP/1.1 upgrade request of RFC 6455 §4.1 for ``path`` (offering permessage-deflate
    with ``deflate``)."""
    return (
        b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
        % (path.encode(), port, WS_KEY, DEFLATE_OFFER if deflate else b"")
    )


def http_get_request(path: str, port: int, accept: str = "*/*") -> bytes:
    """A keep-alive HTTP/1.1 GET."""
    return b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: %s\r\n\r\n" % (
        path.encode(),
        port,
        accept.encode(),
    )


def http_post_request(path: str, port: int, body: bytes, headers: dict[str, str]) -> bytes:
    """A keep-alive HTTP/1.1 POST with a Content-Length body."""
    extra = b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers.items())
    return b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sContent-Length: %d\r\n\r\n%s" % (
        path.encode(),
        port,
        extra,
        len(body),
        body,
    )


class HttpHead:
    """A parsed response head: status code and lower-cased header names."""

    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None else None


def split_head(buf: bytes) -> tuple[HttpHead, int] | None:
    """Parse an HTTP/1.1 response head at the start of ``buf``.

    Returns the head and the offset of the first body byte, or None when the head is incomplete.
    Raises ValueError on a status line that is not HTTP.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"not an HTTP response: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return HttpHead(int(parts[1]), headers), end + 4


class WsCounter:
    """Counts server-to-client data frames in a byte stream without copying payloads.

    Server frames are unmasked (RFC 6455 §5.1), so a frame is a 2, 4 or 10 byte header and a
    payload the counter skips. State between reads: bytes still to skip, or an incomplete
    header. Control frames are reported in ``controls`` as ``(opcode, payload or None)`` (None
    when the payload is split across reads), for the caller to answer pings and notice closes.

    ``count_marks`` (``CfCounter``) counts the bench payload marks inside data frames instead
    of the frames themselves; the frame walk is the same.
    """

    __slots__ = ("controls", "head", "pings", "skip")

    count_marks = False

    def __init__(self) -> None:
        self.skip = 0
        """Payload bytes of a frame still to come (to skip, or to scan for marks)."""
        self.head = b""
        self.pings = 0
        self.controls: list[tuple[int, bytes | None]] = []

    def feed(self, data: bytes) -> int:
        """Count the data frames that start in ``data`` (or the marks, with ``count_marks``)."""
        marks = self.count_marks
        count = 0
        if self.head:
            data = self.head + data
            self.head = b""
            i = 0
        else:
            i = self.skip
            if i and marks:
                count = data.count(MARK, 0, min(i, len(data)))
        n = len(data)
        while i < n:
            if n - i < 2:
                break
            b0 = data[i]
            ln = data[i + 1] & 0x7F
            if ln < 126:
                h = 2
            elif ln == 126:
                if n - i < 4:
                    break
                ln = (data[i + 2] << 8) | data[i + 3]
                h = 4
            else:
                if n - i < 10:
                    break
                ln = int.from_bytes(data[i + 2 : i + 10], "big")
                h = 10
            op = b0 & 0x0F
            start = i + h
            i = start + ln
            if marks:
                if OP_TEXT <= op <= OP_BINARY or op == OP_CONT:
                    if ln <= 2:
                        self.pings += 1
                    else:
                        count += data.count(MARK, start, i if i < n else n)
                    continue
            elif OP_TEXT <= op <= OP_BINARY:
                count += 1
                continue
            if op >= OP_CLOSE:
                self.controls.append((op, data[start:i] if i <= n else None))
        else:
            self.skip = i - n
            return count
        self.head = data[i:]
        self.skip = 0
        return count


class WsParser:
    """Reassembles complete server frames; used by probe subscribers and echo clients."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Return ``(opcode, payload)`` of every frame completed by ``data``; the opcode of a
        compressed frame (RSV1, RFC 7692) has ``RSV1`` (0x40) set."""
        buf = self.buf + data if self.buf else data
        n = len(buf)
        i = 0
        out: list[tuple[int, bytes]] = []
        while n - i >= 2:
            ln = buf[i + 1] & 0x7F
            if ln < 126:
                h = 2
            elif ln == 126:
                if n - i < 4:
                    break
                ln = (buf[i + 2] << 8) | buf[i + 3]
                h = 4
            else:
                if n - i < 10:
                    break
                ln = int.from_bytes(buf[i + 2 : i + 10], "big")
                h = 10
            if i + h + ln > n:
                break
            out.append((buf[i] & 0x4F, buf[i + h : i + h + ln]))
            i += h + ln
        self.buf = buf[i:]
        return out


class ChunkedReader:
    """Collects one HTTP/1.1 response body framed by Content-Length or chunked coding."""

    __slots__ = ("body", "buf", "done", "length")

    def __init__(self, head: HttpHead) -> None:
        self.length = head.content_length if not head.chunked else None
        if head.status in (204, 304):
            self.length = 0
        self.buf = b""
        self.body = b""
        self.done = self.length == 0

    def feed(self, data: bytes) -> bytes:
        """Consume ``data``; return what follows the end of this response (when done)."""
        self.buf += data
        if self.length is not None:
            if len(self.buf) >= self.length:
                self.body = self.buf[: self.length]
                rest = self.buf[self.length :]
                self.buf = b""
                self.done = True
                return rest
            return b""
        while True:
            eol = self.buf.find(b"\r\n")
            if eol < 0:
                return b""
            size = int(self.buf[:eol].split(b";", 1)[0], 16)
            if size == 0:
                if len(self.buf) < eol + 4:
                    return b""
                rest = self.buf[eol + 4 :]
                self.buf = b""
                self.done = True
                return rest
            if len(self.buf) < eol + 2 + size + 2:
                return b""
            self.body += self.buf[eol + 2 : eol + 2 + size]
            self.buf = self.buf[eol + 2 + size + 2 :]


class CfCounter(WsCounter):
    """Counts bench payloads in Centrifugo JSON pushes over WebSocket, without copying them.

    A ``pub`` push is ``{"push":{"channel":"...","pub":{"data":"#<seq>,...",...}}}``, and a
    frame may hold several, newline-separated. The counter walks the (unmasked) frame headers as
    ``WsCounter`` does and, in each data frame's payload, counts the ``#`` that starts a bench
    payload with one ``bytes.count`` over the part present in this read (the rest of a split
    payload is counted when it arrives; ``#`` is one byte, so nothing is missed at a split).
    Counting ``#`` only inside payloads matters: a frame header byte may be 0x23.

    A data frame of at most 2 bytes is a server ping (``{}``): ``pings`` counts them for the
    caller to answer with ``{}``. Control frames go to ``controls`` as in ``WsCounter``.
    """

    __slots__ = ()

    count_marks = True


def cf_commands(*commands: bytes) -> bytes:
    """Centrifugo commands, newline-separated in one client text frame."""
    return ws_client_frame(b"\n".join(commands))
