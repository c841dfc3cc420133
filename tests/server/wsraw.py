"""Raw-socket WebSocket client pieces for tests that must break the rules (RFC 6455 §5)."""

from __future__ import annotations

import base64
import os
import socket
import struct


def handshake(port: int, path: str = "/echo", extra: str = "", *, glued: bytes = b"",
              timeout: float = 5) -> socket.socket:
    """Open a WebSocket by hand; ``glued`` frames go out in the same write as the request."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode() + glued)
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True,
           rsv: int = 0) -> bytes:
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", first, (0x80 if masked else 0) | n)
    elif n < 65536:
        header = struct.pack("!BBH", first, (0x80 if masked else 0) | 126, n)
    else:
        header = struct.pack("!BBQ", first, (0x80 if masked else 0) | 127, n)
    if not masked:
        return header + payload
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + body


def read_close(sock: socket.socket) -> tuple[int, str]:
    """Read server frames until the Close frame; return its code and reason."""
    data = b""
    i = 0
    while True:
        while len(data) - i >= 2:
            opcode = data[i] & 0x0F
            n = data[i + 1] & 0x7F
            j = i + 2
            if n == 126:
                n = struct.unpack("!H", data[j:j + 2])[0]
                j += 2
            elif n == 127:
                n = struct.unpack("!Q", data[j:j + 8])[0]
                j += 8
            if len(data) < j + n:
                break
            if opcode == 8:
                code = struct.unpack("!H", data[j:j + 2])[0]
                return code, data[j + 2:j + n].decode()
            i = j + n
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection ended without a close frame: {data!r}")
        data += chunk


def read_frames(sock: socket.socket, *, until_eof: bool = False) -> list[tuple[int, bytes]]:
    """Server frames as (opcode, payload) up to the Close frame (included), or, with
    ``until_eof``, every frame until the server closes its side of TCP."""
    data = b""
    frames: list[tuple[int, bytes]] = []
    eof = False
    while True:
        i = 0
        while len(data) - i >= 2:
            n = data[i + 1] & 0x7F
            j = i + 2
            if n == 126:
                if len(data) < j + 2:
                    break
                n = struct.unpack("!H", data[j:j + 2])[0]
                j += 2
            elif n == 127:
                if len(data) < j + 8:
                    break
                n = struct.unpack("!Q", data[j:j + 8])[0]
                j += 8
            if len(data) < j + n:
                break
            frames.append((data[i] & 0x0F, data[j:j + n]))
            i = j + n
            if frames[-1][0] == 8 and not until_eof:
                return frames
        data = data[i:]
        if eof:
            assert not data, f"truncated frame before EOF: {data!r}"
            return frames
        chunk = sock.recv(65536)
        if not chunk:
            if not until_eof:
                raise AssertionError(f"connection ended without a close frame: {frames!r}")
            eof = True
        data += chunk
