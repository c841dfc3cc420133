"""WebSocket budgets against hostile clients (issue 10): fragment floods and compression
amplification, against a server process of its own so its memory can be read from /proc."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import threading
import zlib

import pytest
import websockets

from ..centrifugo.conftest import make_cf_server
from ..conftest import LiveServer
from ..serve_process import ServeFactory, serve  # noqa: F401 - fixture
from .wsraw import frame, handshake, read_frames

MiB = 1024 * 1024

DEFLATE = "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"


def close_of(frames: list[tuple[int, bytes]]) -> tuple[int, str]:
    opcode, body = frames[-1]
    assert opcode == 8, frames[-3:]
    return struct.unpack("!H", body[:2])[0], body[2:].decode()


def send_until_refused(sock: socket.socket, chunk: bytes, times: int) -> None:
    """Send ``chunk`` ``times`` times; stop quietly when the server has hung up."""
    try:
        for _ in range(times):
            sock.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass


def deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


@pytest.mark.parametrize("piece", [b"cd", b""], ids=["2-byte", "empty"])
def test_fragment_floods_get_1009_and_memory_stays_bounded(
        serve: ServeFactory, piece: bytes) -> None:  # noqa: F811
    # FIN=0, then continuation frames of 2 (or 0) bytes: 4 MB on the wire per connection.
    # Before the bound each 2-byte part cost ~40 bytes of Python objects (~28 MB per 1 MB).
    flood = frame(0, piece, fin=False) * 1000
    srv = serve()
    before = srv.rss()
    socks = [handshake(srv.port, "/echo", timeout=20) for _ in range(8)]
    try:
        for sock in socks:
            sock.sendall(frame(1, b"ab", fin=False))
            send_until_refused(sock, flood, 500)
        grown = srv.rss() - before
        for sock in socks:
            code, reason = close_of(read_frames(sock))
            assert code == 1009 and "fragments" in reason
    finally:
        for sock in socks:
            sock.close()
    assert grown < 64 * MiB, f"server RSS grew by {grown / MiB:.0f} MiB"


def test_compression_amplification_is_refused_and_others_keep_their_answers(
        serve: ServeFactory) -> None:  # noqa: F811
    # Each frame is ~1 KB on the wire, 1 MB inflated, and its echo 1 MB to compress again.
    bomb = frame(1, deflate_raw(b"\0" * 1_000_000), rsv=4)
    srv = serve()
    hostile = handshake(srv.port, "/echo", DEFLATE, timeout=30)
    sender = threading.Thread(target=send_until_refused, args=(hostile, bomb * 100, 42))

    async def neighbour() -> list[str]:
        got = []
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/echo",
                                      open_timeout=30) as ws:
            for i in range(20):
                await ws.send(f"hello {i} " * 20)
                got.append(await asyncio.wait_for(ws.recv(), 30))  # generous bound
        return got

    sender.start()
    try:
        answers = asyncio.run(neighbour())
        sender.join(60)
        code, reason = close_of(read_frames(hostile))
    finally:
        hostile.close()
    assert answers == [f"Echo: {f'hello {i} ' * 20}" for i in range(20)]
    assert code == 3013 and "compression budget" in reason


def test_global_compression_budget_answers_1013(make_server) -> None:  # type: ignore[no-untyped-def]
    srv: LiveServer = make_server(ws_compress_global_rate=1000)
    bomb = frame(1, deflate_raw(b"x" * 200_000), rsv=4)
    first = handshake(srv.port, "/echo", DEFLATE)
    second = handshake(srv.port, "/echo", DEFLATE)
    try:
        first.sendall(bomb)  # allowed (the bucket may go into debt by one message)...
        first.sendall(frame(8, struct.pack("!H", 1000)))
        frames = read_frames(first)
        assert frames[0][0] == 1 and close_of(frames)[0] == 1000
        second.sendall(bomb)  # ...and the process is now over its budget for a long while
        code, reason = close_of(read_frames(second))
        assert code == 1013 and "try again later" in reason
    finally:
        first.close()
        second.close()


def test_incompressible_echo_goes_out_uncompressed(server: LiveServer) -> None:
    sock = handshake(server.port, "/echo", DEFLATE)
    try:
        noise = os.urandom(100_000)
        sock.sendall(frame(2, noise) + frame(8, struct.pack("!H", 1000)))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        assert data[0] == 0x82  # FIN + binary, RSV1 clear: not compressed (RFC 7692 §6)
        assert data[10:10 + len(noise)] == noise
    finally:
        sock.close()


def test_compressible_echo_is_still_compressed(server: LiveServer) -> None:
    sock = handshake(server.port, "/echo", DEFLATE)
    try:
        sock.sendall(frame(1, b"compress me " * 10_000) + frame(8, struct.pack("!H", 1000)))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        assert data[0] == 0xC1  # FIN + RSV1 + text
        assert len(data) < 10_000
    finally:
        sock.close()


@pytest.mark.parametrize(("path", "message"), [
    ("/echo", b"\0" * 1_000_000),
    ("/ws?channel=chat:bombs", b"\0" * 1_000_000),
    ("/connection/websocket", b"{}" + b" " * 999_998),  # a Centrifugo pong, padded
])
def test_compression_budget_holds_on_every_websocket(path: str, message: bytes) -> None:
    srv = make_cf_server(ws_compress_rate=1_000_000)
    try:
        sock = handshake(srv.port, path, DEFLATE)
        try:
            send_until_refused(sock, frame(1, deflate_raw(message), rsv=4), 4)
            code, reason = close_of(read_frames(sock))
            assert code == 3013 and "compression budget" in reason
        finally:
            sock.close()
    finally:
        srv.stop()
