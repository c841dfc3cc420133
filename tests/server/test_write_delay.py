"""The batching window (``write_delay``, issue 15): publications to a subscriber within the
window share one write, in order, none lost; ``close`` does not wait for it; the slow-consumer
rule is the same.  Unit cases over a stand-in transport, then real sockets and clients."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct

import httpx
import pytest

from livehub.codes import Disconnect
from livehub.core.channels import public_options
from livehub.wire.payload import PayloadKind

from ..centrifugo.conftest import OPEN, make_cf_server, token
from ..centrifugo.wsclient import RawClient, connect
from ..conftest import TEST_NAMESPACES, LiveServer, ServerFactory
from .test_outgoing import MAX, Conn, HeldTransport
from .wsraw import handshake

WINDOW = 0.5
"""Long enough that a few loop turns of publishing always fall inside one window."""


class SignallingTransport(HeldTransport):
    """A transport that also wakes the test when something is written."""

    def __init__(self) -> None:
        super().__init__(reading=True)
        self.written = asyncio.Event()

    def write(self, data: bytes) -> None:
        super().write(data)
        self.written.set()


def windowed(transport: HeldTransport, delay: float | None = WINDOW) -> Conn:
    conn = Conn(transport)
    conn._flusher.write_delay = WINDOW
    conn.narrow_window(delay)
    return conn


async def test_writes_of_several_turns_within_the_window_share_one_write() -> None:
    t = SignallingTransport()
    conn = windowed(t)
    for part in (b"a", b"b", b"c"):
        conn.write(part)
        await asyncio.sleep(0)  # a new loop turn: without a window each would be written
    assert t.writes == []
    await asyncio.wait_for(t.written.wait(), 5)
    assert t.writes == [b"abc"]
    stats = conn._flusher.window_stats()
    assert stats["windows"] == 1 and stats["connections"] == 1
    assert 0 < stats["wait_mean_s"] <= stats["wait_max_s"]


async def test_a_window_of_zero_writes_at_the_end_of_the_turn() -> None:
    t = SignallingTransport()
    conn = windowed(t, 0.0)
    conn.write(b"a")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert t.writes == [b"a"]
    assert conn._flusher.window_stats()["windows"] == 0


async def test_close_writes_what_is_pending_without_waiting() -> None:
    t = SignallingTransport()
    conn = windowed(t)
    conn.write(b"last words")
    conn.close(Disconnect.SHUTDOWN)
    assert t.writes == [b"last words"] and conn.goodbyes == [Disconnect.SHUTDOWN]
    await asyncio.sleep(WINDOW + 0.05)  # the window closes on a closed connection: nothing
    assert t.writes == [b"last words"]


async def test_slow_consumer_rule_is_the_same_within_a_window() -> None:
    t = HeldTransport()
    conn = windowed(t)
    for _ in range(12):  # 1,200 bytes queued within the window, no message larger than 100
        conn.write(b"m" * 100)
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert conn.goodbyes == [Disconnect.SLOW] and t.writes == []


async def test_one_large_message_is_still_allowed_within_a_window() -> None:
    t = SignallingTransport()
    conn = windowed(t)
    conn.write(b"x" * 5 * MAX)
    await asyncio.wait_for(t.written.wait(), 5)
    assert conn.goodbyes == [] and t.writes == [b"x" * 5 * MAX]


async def test_the_first_subscription_sets_the_window_later_ones_shorten_it() -> None:
    conn = Conn(HeldTransport())
    conn._flusher.write_delay = 0.005
    assert conn._delay is None  # the server's window until a subscription names one
    conn.narrow_window(0.02)
    assert conn._delay == 0.02  # a namespace may ask for more than the server's window
    conn.narrow_window(None)
    assert conn._delay == 0.005  # a channel on the server's window shortens it
    conn.narrow_window(0.01)
    assert conn._delay == 0.005


# -- real sockets ----------------------------------------------------------------------------


def _frames(data: bytes) -> list[bytes]:
    out = []
    i = 0
    while i < len(data):
        n = data[i + 1] & 0x7F
        j = i + 2
        if n == 126:
            n = struct.unpack("!H", data[j:j + 2])[0]
            j += 2
        out.append(data[j:j + n])
        i = j + n
    return out


def _publish_in_turns(server: LiveServer, channel: str, count: int) -> None:
    """Publish ``count`` messages from the server's loop, each in its own loop turn."""
    assert server.app is not None
    node = server.app.ctx.node

    async def run() -> None:
        for i in range(count):
            await node.publish(channel, b"m%d" % i, PayloadKind.TEXT)
            await asyncio.sleep(0)

    server.call(run())


def _wait_subscribed(server: LiveServer, channel: str) -> None:
    assert server.app is not None
    hub = server.app.ctx.node.hub
    for _ in range(500):
        if server.call_soon(lambda: hub.subscriber_count(channel)) > 0:
            return
        server.call(asyncio.sleep(0.01))
    raise AssertionError(f"nobody subscribed to {channel}")


def _recv_frames(sock: socket.socket, count: int) -> list[list[bytes]]:
    """Frames of each recv until ``count`` frames came (a recv per server write here)."""
    reads: list[list[bytes]] = []
    while sum(map(len, reads)) < count:
        reads.append(_frames(sock.recv(65536)))
    return reads


@pytest.mark.parametrize("where", ["server", "namespace"])
def test_websocket_publications_within_the_window_arrive_in_one_write(
        make_server: ServerFactory, where: str) -> None:
    if where == "server":
        srv = make_server(write_delay=WINDOW)
    else:
        namespaces = {**TEST_NAMESPACES, "batched": public_options(write_delay=WINDOW)}
        srv = make_server(namespaces=namespaces)
    channel = "batched:a" if where == "namespace" else "chat:a"
    sock = handshake(srv.port, f"/ws?channel={channel}")
    try:
        _wait_subscribed(srv, channel)
        _publish_in_turns(srv, channel, 5)
        reads = _recv_frames(sock, 5)
    finally:
        sock.close()
    assert reads == [[b"m0", b"m1", b"m2", b"m3", b"m4"]]  # one write, in order, none lost
    assert srv.app is not None
    assert srv.app.ctx.flusher.window_stats()["connections"] >= 1


def test_without_a_window_each_turn_is_its_own_write(make_server: ServerFactory) -> None:
    srv = make_server()
    sock = handshake(srv.port, "/ws?channel=chat:a")
    try:
        _wait_subscribed(srv, "chat:a")
        _publish_in_turns(srv, "chat:a", 5)
        reads = _recv_frames(sock, 5)
    finally:
        sock.close()
    assert [f for r in reads for f in r] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert srv.app is not None and srv.app.ctx.flusher.window_stats()["windows"] == 0


def test_a_namespace_without_a_window_is_not_held_by_the_servers(
        make_server: ServerFactory) -> None:
    namespaces = {**TEST_NAMESPACES, "live": public_options(write_delay=0.0)}
    srv = make_server(write_delay=WINDOW, namespaces=namespaces)
    sock = handshake(srv.port, "/ws?channel=live:a")
    try:
        _wait_subscribed(srv, "live:a")
        _publish_in_turns(srv, "live:a", 3)
        reads = _recv_frames(sock, 3)
    finally:
        sock.close()
    assert [f for r in reads for f in r] == [b"m0", b"m1", b"m2"]
    assert srv.app is not None and srv.app.ctx.flusher.window_stats()["windows"] == 0


async def test_sse_subscribers_get_every_publication_in_order_through_a_window(
        make_server: ServerFactory) -> None:
    srv = make_server(write_delay=0.02)
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", srv.url + "/events", params={"channel": "chat:s"}) as r:
        await asyncio.to_thread(_wait_subscribed, srv, "chat:s")
        await asyncio.to_thread(_publish_in_turns, srv, "chat:s", 20)
        text = ""
        async for chunk in r.aiter_text():
            text += chunk
            if text.count("data: m") == 20:
                break
    data = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert data == [f"m{i}" for i in range(20)]


async def test_centrifugo_subscriptions_take_their_namespaces_window() -> None:
    namespaces = {"batched": dataclasses.replace(OPEN, write_delay=0.2)}
    srv = await asyncio.to_thread(make_cf_server, namespaces=namespaces)
    try:
        async with connect(srv.cf_ws, compression=None) as ws:
            client = RawClient(ws)
            await client.call("connect", {"token": token("u1")})
            reply = await client.call("subscribe", {"channel": "batched:a"})
            assert "error" not in reply
            await asyncio.to_thread(_publish_in_turns, srv, "batched:a", 5)
            pubs: list[object] = []
            while len(pubs) < 5:
                push = await client.push()
                if "pub" in push:  # join pushes are skipped
                    pubs.append(push["pub"]["data"])
        assert pubs == [f"m{i}" for i in range(5)]
        assert srv.app is not None
        assert srv.app.ctx.flusher.window_stats()["connections"] >= 1
    finally:
        await asyncio.to_thread(srv.stop)


def test_heartbeats_still_go_out_through_a_window(make_server: ServerFactory) -> None:
    srv = make_server(write_delay=WINDOW, heartbeat_interval=0.1)
    sock = handshake(srv.port, "/ws?channel=chat:h")
    try:
        data = b""
        while len(data) < 2:  # the first frame the server sends (nothing is published)
            chunk = sock.recv(65536)
            assert chunk, "closed before a ping"
            data += chunk
    finally:
        sock.close()
    assert data[0] == 0x89  # a ping (RFC 6455 §5.5.2), one window late at most
