"""WebSocket endpoints with the ``websockets`` client, and raw sockets for bad frames."""

from __future__ import annotations

import asyncio
import json
import socket
import struct

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ..conftest import LiveServer
from .wsraw import frame as _frame
from .wsraw import handshake as _handshake
from .wsraw import read_close as _read_close


async def test_echo_textbook(server: LiveServer) -> None:
    async with websockets.connect(server.ws_url + "/echo") as ws:
        await ws.send("Hello Server!")
        assert await ws.recv() == "Echo: Hello Server!"
        await ws.send(b"\x00\x01")
        assert await ws.recv() == b"\x00\x01"
        big = "x" * 200_000
        await ws.send(big)
        assert await ws.recv() == "Echo: " + big


async def test_echo_with_and_without_deflate(server: LiveServer) -> None:
    for compression in ("deflate", None):
        async with websockets.connect(server.ws_url + "/echo", compression=compression) as ws:
            negotiated = ws.response.headers.get("Sec-WebSocket-Extensions")
            assert (negotiated is not None) == (compression is not None)
            msg = "compress me " * 100
            await ws.send(msg)
            assert await ws.recv() == "Echo: " + msg


async def test_channel_fanout_and_client_publish(server: LiveServer) -> None:
    url = server.ws_url + "/ws?channel=chat:room"
    async with websockets.connect(url) as a, websockets.connect(url, compression=None) as b:
        await a.send("hello")
        await b.send(b"\x01\x02")
        for ws in (a, b):
            assert await ws.recv() == "hello"
            assert await ws.recv() == b"\x01\x02"
        await asyncio.to_thread(server.publish, "chat:room", {"json": True})
        assert json.loads(await a.recv()) == {"json": True}


async def test_publish_refused_where_not_allowed(server: LiveServer) -> None:
    async with websockets.connect(server.ws_url + "/ws?channel=ro:x") as ws:
        await ws.send("nope")
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 3507  # permission denied (livehub.core.permissions)
    assert "not allowed" in info.value.rcvd.reason


async def test_json_format_and_resume_with_since(server: LiveServer) -> None:
    url = server.ws_url + "/ws?channel=chat:r&format=json"
    async with websockets.connect(url) as ws:
        start = json.loads(await ws.recv())
        assert start["type"] == "cursor"
        await ws.send("one")
        first = json.loads(await ws.recv())
        assert first["type"] == "pub" and first["data"] == "one"
    for word in ("two", "three"):
        await asyncio.to_thread(server.publish, "chat:r", word)
    async with websockets.connect(url + "&since=" + first["cursor"]) as ws:
        got = [json.loads(await ws.recv()) for _ in range(3)]
    assert [m.get("data") for m in got] == ["two", "three", None]
    assert got[2]["type"] == "cursor" and got[2]["cursor"] == got[1]["cursor"]


async def test_raw_resume_impossible_closes_with_3010(server: LiveServer) -> None:
    first = await asyncio.to_thread(server.publish, "small:w", "a")
    for i in range(5):
        await asyncio.to_thread(server.publish, "small:w", str(i))
    async with websockets.connect(
            server.ws_url + "/ws?channel=small:w&since=" + first["cursor"]) as ws:
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 3010


@pytest.mark.parametrize(("path", "status"), [
    ("/ws", 400), ("/ws?channel=bad%20name", 400), ("/ws?channel=nope:x", 404),
    ("/ws?channel=a&since=junk", 400), ("/ws?channel=a&format=xml", 400),
])
async def test_bad_upgrade_requests(server: LiveServer, path: str, status: int) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with websockets.connect(server.ws_url + path):
            pass
    assert info.value.response.status_code == status


@pytest.mark.parametrize(("frames", "code"), [
    ([_frame(1, b"hi", masked=False)], 1002),                     # §5.1 unmasked client frame
    ([_frame(1, b"hi", rsv=2)], 1002),                            # §5.2 reserved bit
    ([_frame(3, b"")], 1002),                                     # reserved opcode
    ([_frame(9, b"x" * 126)], 1002),                              # §5.5 control frame too long
    ([_frame(9, b"", fin=False)], 1002),                          # fragmented control frame
    ([_frame(0, b"x")], 1002),                                    # continuation with no start
    ([_frame(1, b"a", fin=False), _frame(1, b"b")], 1002),        # new message mid-fragment
    ([_frame(1, b"\xff\xfe")], 1007),                             # invalid UTF-8
    ([_frame(1, b"ok\xf0", fin=False), _frame(0, b"\x28")], 1007),  # invalid across fragments
    ([_frame(2, b"x" * (1024 * 1024 + 1))], 1009),                # message too big
    ([_frame(8, b"\x03\xe8\xff")], 1007),                         # close reason not UTF-8
    ([_frame(8, b"\x00\x10")], 1002),                             # close code 16 invalid
])
def test_protocol_violations_close_with_the_right_code(server: LiveServer,
                                                       frames: list[bytes], code: int) -> None:
    sock = _handshake(server.port)
    try:
        for f in frames:
            sock.sendall(f)
        assert _read_close(sock)[0] == code
    finally:
        sock.close()


def test_fragmented_message_with_interleaved_ping(server: LiveServer) -> None:
    sock = _handshake(server.port)
    try:
        sock.sendall(_frame(1, b"Hel", fin=False) + _frame(9, b"p1")
                     + _frame(0, b"lo", fin=False) + _frame(0, b"!"))
        sock.sendall(_frame(8, struct.pack("!H", 1000)))
        data = b""
        while (chunk := sock.recv(4096)):
            data += chunk
        assert data.startswith(b"\x8a\x02p1")                   # pong echoes the ping payload
        assert b"\x81\x09Echo: Hel" in data + b"" or b"Echo: Hello!" in data
        assert data.endswith(b"\x88\x02\x03\xe8")                # close 1000 echoed
    finally:
        sock.close()


def test_violation_does_not_disturb_others(server: LiveServer) -> None:
    async def scenario() -> None:
        async with websockets.connect(server.ws_url + "/ws?channel=chat:calm") as good:
            bad = await asyncio.to_thread(_handshake, server.port, "/ws?channel=chat:calm")
            bad.sendall(_frame(1, b"\xff"))
            assert (await asyncio.to_thread(_read_close, bad))[0] == 1007
            bad.close()
            await good.send("still here")
            assert await good.recv() == "still here"

    asyncio.run(scenario())


def test_handshake_errors(server: LiveServer) -> None:
    def raw(request: str) -> bytes:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(request.encode())
            out = b""
            while (chunk := s.recv(4096)):
                out += chunk
            return out

    base = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    resp = raw(base + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 8\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 426") and b"sec-websocket-version: 13" in resp.lower()
    resp = raw(base + "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 400")


def test_origin_allow_list(make_server) -> None:  # type: ignore[no-untyped-def]
    srv = make_server(allowed_origins=("http://good.test",))

    async def scenario() -> None:
        async with websockets.connect(srv.ws_url + "/echo", origin="http://good.test") as ws:
            await ws.send("x")
            assert await ws.recv() == "Echo: x"
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(srv.ws_url + "/echo", origin="http://evil.test"):
                pass
        assert info.value.response.status_code == 403

    asyncio.run(scenario())


async def test_server_pings_and_closes_silent_peers(make_server) -> None:  # type: ignore[no-untyped-def]
    srv = make_server(heartbeat_interval=0.05)
    # websockets answers pings automatically: the connection survives many ticks
    async with websockets.connect(srv.ws_url + "/echo", ping_interval=None) as ws:
        await asyncio.sleep(0.4)
        await ws.send("alive")
        assert await ws.recv() == "Echo: alive"
    # a raw socket that never answers is closed with 3012
    sock = await asyncio.to_thread(_handshake, srv.port)
    code, _ = await asyncio.to_thread(_read_close, sock)
    sock.close()
    assert code == 3012
