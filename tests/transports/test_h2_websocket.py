"""WebSocket over HTTP/2 (RFC 8441): an extended CONNECT opens it as a stream of the
connection, whose DATA are the WebSocket frames; the same endpoints and checks as HTTP/1.1."""

from __future__ import annotations

import os
from collections.abc import Iterator

import h2.settings
import pytest

from ..conftest import LiveServer, ServerFactory
from .h2client import H2Client, close_all


@pytest.fixture(autouse=True)
def _close_h2_clients() -> Iterator[None]:
    yield
    close_all()


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One masked client frame (RFC 6455 §5.2), payload under 64 KiB."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    size = len(payload)
    length = bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + size.to_bytes(2)
    return bytes([0x80 | opcode]) + length + mask + masked


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The (opcode, payload) of unmasked server frames with payloads under 64 KiB."""
    frames = []
    while data:
        opcode, size, start = data[0] & 0x0F, data[1] & 0x7F, 2
        assert size < 127 and not data[1] & 0x80
        if size == 126:
            size, start = int.from_bytes(data[2:4]), 4
        frames.append((opcode, data[start:start + size]))
        data = data[start + size:]
    return frames


def open_websocket(client: H2Client, path: str, *extra: tuple[str, str]) -> int:
    client.until(lambda _: client.conn.remote_settings.get(
        h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL) == 1)
    stream_id = client.conn.get_next_available_stream_id()
    client.conn.send_headers(stream_id, [
        (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
        (":path", path), (":authority", "127.0.0.1"), ("sec-websocket-version", "13"),
        *extra], end_stream=False)
    client.flush()
    client.until(lambda _: client.status(stream_id) is not None)
    return stream_id


def test_echo_over_an_extended_connect(server: LiveServer) -> None:
    client = H2Client(server.port)
    stream_id = open_websocket(client, "/echo")
    assert client.status(stream_id) == 200  # RFC 8441 §5: 200, not 101
    client.conn.send_data(stream_id, client_frame(b"over h2"))
    client.flush()
    client.until(lambda _: client.body(stream_id))
    assert server_frames(client.body(stream_id)) == [(0x1, b"Echo: over h2")]
    # the other streams of the connection go on meanwhile
    health = client.request("/health")
    client.until(lambda _: client.ended(health))
    assert client.status(health) == 200
    # a clean close: the Close is echoed, then the stream ends
    client.conn.send_data(stream_id, client_frame(b"\x03\xe8", opcode=0x8))
    client.flush()
    client.until(lambda _: client.ended(stream_id))
    assert server_frames(client.body(stream_id))[-1] == (0x8, b"\x03\xe8")
    client.close()


def test_the_websocket_checks_are_the_http11_ones(make_server: ServerFactory) -> None:
    srv = make_server(allowed_origins=("https://app.example",))
    client = H2Client(srv.port)
    bad_version = open_websocket(client, "/echo", ("sec-websocket-version", "8"))
    assert client.status(bad_version) == 426
    foreign = open_websocket(client, "/echo", ("origin", "https://evil.example"))
    assert client.status(foreign) == 403
    no_channel = open_websocket(client, "/ws")
    assert client.status(no_channel) == 400
    client.until(lambda _: all(client.ended(s) for s in (bad_version, foreign, no_channel)))
    # a CONNECT for anything but a WebSocket
    stream_id = client.conn.get_next_available_stream_id()
    client.conn.send_headers(stream_id, [(":method", "CONNECT"),
                                         (":authority", "example.com:443")])
    client.flush()
    client.until(lambda _: client.ended(stream_id))
    assert client.status(stream_id) == 405
    client.close()



def test_centrifugo_over_an_http2_websocket() -> None:
    import json

    from ..centrifugo.conftest import make_cf_server, token

    srv = make_cf_server()
    try:
        client = H2Client(srv.port)
        stream_id = open_websocket(client, "/connection/websocket")
        assert client.status(stream_id) == 200
        connect = {"id": 1, "connect": {"token": token("h2user"), "name": "h2"}}
        client.conn.send_data(stream_id, client_frame(json.dumps(connect).encode()))
        client.flush()
        client.until(lambda _: client.body(stream_id))
        [(opcode, payload)] = server_frames(client.body(stream_id))[:1]
        reply = json.loads(payload.split(b"\n")[0])
        assert opcode == 0x1 and reply["id"] == 1 and "client" in reply["connect"]
        client.close()
    finally:
        srv.stop()
