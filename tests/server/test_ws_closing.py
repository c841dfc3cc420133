"""Failing and closing a WebSocket (RFC 6455 §7.1.1, §7.1.7, §8.1) over raw sockets, on the
echo and on the raw channel WebSocket with client publishing (what Autobahn|Testsuite checks)."""

from __future__ import annotations

import struct

import pytest

from livehub.transports import websocket as ws_transport

from ..conftest import LiveServer
from .wsraw import frame, handshake, read_frames

ENDPOINTS = [("/echo", b"Echo: "), ("/ws?channel=chat:closing", b"")]


def close_code(frames: list[tuple[int, bytes]]) -> int:
    opcode, body = frames[-1]
    assert opcode == 8, frames
    code: int = struct.unpack("!H", body[:2])[0]
    return code


@pytest.mark.parametrize(("path", "prefix"), ENDPOINTS)
def test_server_closes_tcp_first_after_failing(server: LiveServer, path: str, prefix: bytes,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # The fallback timer must not be what ends the connection: it is pushed far away.
    monkeypatch.setattr(ws_transport, "CLOSE_TIMEOUT", 120.0)
    sock = handshake(server.port, path, timeout=10)
    try:
        sock.sendall(frame(1, b"\xff"))
        frames = read_frames(sock, until_eof=True)  # ends with the server's FIN (§7.1.1)
        assert close_code(frames) == 1007
        sock.sendall(frame(8, struct.pack("!H", 1007)))  # the peer may still answer
    finally:
        sock.close()


@pytest.mark.parametrize(("path", "prefix"), ENDPOINTS)
@pytest.mark.parametrize("violation", [
    frame(1, b"again", rsv=2),                   # Autobahn 3.2: reserved bit
    frame(5, b""),                               # 4.1.3: reserved opcode
    frame(0, b"orphan"),                         # 5.15: continuation without a message
], ids=["rsv", "opcode", "continuation"])
def test_messages_before_a_violation_are_answered_first(server: LiveServer, path: str,
                                                        prefix: bytes, violation: bytes) -> None:
    sock = handshake(server.port, path)
    try:
        sock.sendall(frame(1, b"one") + frame(1, b"tw", fin=False) + frame(0, b"o")
                     + violation + frame(1, b"never"))
        frames = read_frames(sock)
        assert frames[:2] == [(1, prefix + b"one"), (1, prefix + b"two")]
        assert len(frames) == 3 and close_code(frames) == 1002
    finally:
        sock.close()


def _cut_before_end(wire: bytes, unsent: int) -> bytes:
    return wire[:len(wire) - unsent]


@pytest.mark.parametrize("wire", [
    # Autobahn 6.4.3: the frame is not complete (and will never be), its start is invalid.
    _cut_before_end(frame(1, "κόσμε".encode() + b"\xf4\x90\x80\x80" + b"x" * 40), 40),
    _cut_before_end(frame(1, "κόσμε".encode() + b"\xf4\x90\x80\x80" + b"x" * 400), 400),
    # the incomplete frame continues a fragmented message whose last sequence it breaks
    frame(1, b"ok\xe2\x82", fin=False) + _cut_before_end(frame(0, b"(" + b"x" * 300), 300),
], ids=["short-frame", "long-frame", "continuation"])
def test_invalid_utf8_fails_inside_an_incomplete_frame(server: LiveServer, wire: bytes) -> None:
    sock = handshake(server.port, "/ws?channel=chat:utf8")
    try:
        sock.sendall(wire)
        assert close_code(read_frames(sock)) == 1007
    finally:
        sock.close()


def test_message_glued_to_the_handshake_comes_back(server: LiveServer) -> None:
    # Sent in the same packet as the upgrade request: it must still reach the sender's own
    # subscription, which is made before the message is read.
    sock = handshake(server.port, "/ws?channel=chat:glued", glued=frame(1, b"first"))
    try:
        sock.sendall(frame(8, struct.pack("!H", 1000)))
        frames = read_frames(sock)
        assert frames[0] == (1, b"first")
        assert close_code(frames) == 1000
    finally:
        sock.close()
