"""Raw-socket helpers for the HTTP/1.1 tests: send bytes, read heads and whole answers."""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from livehub.app import App

    from ..conftest import LiveServer


def connect(port: int, timeout: float = 5) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_head(sock: socket.socket, pending: bytes = b"") -> tuple[bytes, bytes]:
    """Read up to the end of one response head (after ``pending``, bytes already read);
    the head and whatever followed it."""
    data = pending
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a complete head: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def read_all(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` and read until the server closes."""
    with connect(port) as sock:
        sock.sendall(raw)
        return read_all(sock)


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def upgrade_request(path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def masked_text(payload: bytes) -> bytes:
    """A client text frame (RFC 6455 §5.2), masked as clients must."""
    assert len(payload) < 126
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + body


def read_text_frame(sock: socket.socket, pending: bytes = b"") -> tuple[bytes, bytes]:
    """One unmasked short server frame's payload, and the bytes after it."""
    data = pending
    while len(data) < 2 or len(data) < 2 + (data[1] & 0x7F):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a frame: {data!r}")
        data += chunk
    assert data[0] == 0x81, data[:2]
    n = data[1] & 0x7F
    assert n < 126
    return data[2:2 + n], data[2 + n:]


def read_response(sock: socket.socket, pending: bytes = b"") -> tuple[bytes, bytes, bytes]:
    """One response with a content-length: head, body, and the bytes after it."""
    head, rest = read_head(sock, pending)
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed inside a body: {head!r}")
        rest += chunk
    return head, rest[:length], rest[length:]


def wait_until(server: LiveServer, condition: Callable[[App], bool], timeout: float = 10) -> None:
    """Poll ``condition(app)`` on the server's loop until it holds (state the server reaches
    on its own, e.g. a subscription registered); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not server.call_soon(lambda: condition(server.app)):  # type: ignore[arg-type]
        assert time.monotonic() < deadline, "the server never reached the expected state"
        time.sleep(0.01)


def subscribers(channel: str) -> Callable[[App], int]:
    return lambda app: app.ctx.hub.subscriber_count(channel)


