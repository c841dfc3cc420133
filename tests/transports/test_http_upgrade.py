"""Upgrade requests: bytes after the handshake belong to the WebSocket, never to HTTP."""

from __future__ import annotations

import httpx

from ..conftest import LiveServer
from .rawhttp import (
    connect,
    masked_text,
    read_head,
    read_response,
    read_text_frame,
    upgrade_request,
)


def test_frame_glued_to_the_handshake_goes_to_the_websocket(server: LiveServer) -> None:
    with connect(server.port) as sock:
        sock.sendall(upgrade_request("/echo") + masked_text(b"hello"))
        head, rest = read_head(sock)
        assert head.startswith(b"HTTP/1.1 101"), head
        payload, _ = read_text_frame(sock, rest)
        assert payload == b"Echo: hello"


def test_frame_arriving_before_the_take_over_goes_to_the_websocket(
        server: LiveServer) -> None:
    """The upgrade request waits behind a long-poll; its first frame arrives while it waits,
    so the HTTP connection still owns the socket: the frame must not be parsed as HTTP."""
    cursor = httpx.get(server.url + "/poll", params={"channel": "race"}).json()["cursor"]
    poll = (f"GET /poll?channel=race&cursor={cursor}&timeout=0.5 HTTP/1.1\r\n"
            "Host: x\r\n\r\n").encode()
    with connect(server.port) as sock:
        sock.sendall(poll + upgrade_request("/echo"))
        sock.sendall(masked_text(b"early"))
        head, _, rest = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200"), head
        head, rest = read_head(sock, rest)
        assert head.startswith(b"HTTP/1.1 101"), head
        payload, _ = read_text_frame(sock, rest)
        assert payload == b"Echo: early"
