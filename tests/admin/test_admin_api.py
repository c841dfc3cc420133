"""What the dashboard reads and does, over HTTP: connections by transport, channels, the server
API methods (publish, history, presence, disconnect), the live tail of any channel."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import jwt
import websockets

from tests.centrifugo.wsclient import RawClient

from ..conftest import LiveServer
from .conftest import SECRET, AdminClient


def wait_for(admin: AdminClient, check: object, timeout: float = 5.0) -> dict[str, object]:
    """Stats once ``check(stats)`` holds (the dashboard polls the same way)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = admin.stats()
        if check(stats) or time.monotonic() > deadline:  # type: ignore[operator]
            return stats
        time.sleep(0.05)


def by_transport(stats: dict[str, object]) -> dict[str, int]:
    conns = stats["connections"]
    assert isinstance(conns, dict)
    found: dict[str, int] = conns["by_transport"]
    return found


def test_connections_by_transport(admin: AdminClient) -> None:
    server = admin.server
    stats = admin.stats()
    assert by_transport(stats) == {"http_stream": 0, "sse": 0, "websocket": 0}

    async def clients() -> None:
        async with httpx.AsyncClient(timeout=5) as client, client.stream(
                "GET", server.url + "/events", params={"channel": "chat:a"}) as sse, \
                websockets.connect(server.ws_url + "/ws?channel=chat:a"):
            assert sse.status_code == 200
            stats = await asyncio.to_thread(
                wait_for, admin, lambda s: by_transport(s)["websocket"] == 1)
            assert by_transport(stats) == {"http_stream": 0, "sse": 1, "websocket": 1}
            assert stats["connections"] == {"total": 2, "by_protocol": {"plain": 2},
                                            "by_transport": by_transport(stats)}
            assert stats["channels"] == [{"channel": "chat:a", "subscribers": 2,
                                          "offset": 0, "epoch": stats["channels"][0]["epoch"]}]

    asyncio.run(clients())
    stats = wait_for(admin, lambda s: s["connections"]["total"] == 0)  # type: ignore[index]
    assert by_transport(stats) == {"http_stream": 0, "sse": 0, "websocket": 0}


def test_publish_history_and_channel_positions(admin: AdminClient) -> None:
    for n in range(3):
        r = admin.call("publish", {"channel": "chat:h", "data": {"n": n}})
        assert r.json()["result"]["offset"] == n + 1
    history = admin.call("history", {"channel": "chat:h", "limit": 2, "reverse": True})
    assert [p["data"] for p in history.json()["result"]["publications"]] == [{"n": 2}, {"n": 1}]
    unknown = admin.call("no_such_method", {})
    assert unknown.status_code == 404  # only the server API's methods are routed
    bad = admin.http.post("/admin/api/publish", content=b"[1]",
                          headers={"X-CSRF-Token": admin.csrf, "Origin": admin.server.url})
    assert bad.status_code == 400


def test_live_tail_of_a_private_channel(admin: AdminClient) -> None:
    """The admin sees any channel, also one no anonymous client may read."""
    server = admin.server
    assert httpx.get(server.url + "/events", params={"channel": "$secret"}).status_code == 403
    with admin.http.stream("GET", "/admin/tail", params={"channel": "$secret"}) as tail:
        assert tail.status_code == 200
        assert tail.headers["content-type"] == "application/x-ndjson"
        assert admin.call("publish", {"channel": "$secret", "data": "psst"}).status_code == 200
        for line in tail.iter_lines():
            message = json.loads(line)
            if message["type"] == "pub":
                assert message["channel"] == "$secret"
                assert message["data"] == "psst"
                break
    bad = admin.http.get("/admin/tail", params={"channel": "no spaces allowed"})
    assert bad.status_code == 400


def test_disconnect_a_user(admin: AdminClient, admin_server: LiveServer) -> None:
    token = jwt.encode({"sub": "mallory", "exp": int(time.time()) + 600}, SECRET)

    async def run() -> int:
        url = admin_server.ws_url + "/connection/websocket"
        async with websockets.connect(url) as ws:
            client = RawClient(ws)
            reply = await client.call("connect", {"token": token})
            assert reply["connect"]["client"]
            answer = await asyncio.to_thread(admin.call, "disconnect", {"user": "mallory"})
            assert answer.json() == {"result": {}}
            return await client.closed_with()

    assert asyncio.run(run()) == 3503  # forced, do not reconnect


def test_disconnect_reaches_the_users_plain_connections(admin: AdminClient,
                                                        admin_server: LiveServer) -> None:
    """Disconnecting a user closes its SSE streams and raw WebSockets too (3503), not only its
    Centrifugo sessions; another user's and anonymous connections stay."""
    def token(user: str) -> str:
        return jwt.encode({"sub": user, "exp": int(time.time()) + 600}, SECRET)

    server = admin_server

    async def run() -> None:
        async with httpx.AsyncClient(timeout=5) as http, http.stream(
                "GET", server.url + "/events",
                params={"channel": "chat:d", "token": token("mallory")}) as sse, http.stream(
                "GET", server.url + "/events",
                params={"channel": "chat:d", "token": token("alice")}) as other, \
                websockets.connect(f"{server.ws_url}/ws?channel=chat:d&token="
                                   f"{token('mallory')}") as ws, \
                websockets.connect(f"{server.ws_url}/ws?channel=chat:d") as anonymous:
            assert sse.status_code == other.status_code == 200
            await asyncio.to_thread(wait_for, admin, lambda s: s["connections"]["total"] == 4)
            answer = await asyncio.to_thread(admin.call, "disconnect", {"user": "mallory"})
            assert answer.json() == {"result": {}}
            text = b""
            async for chunk in sse.aiter_bytes():
                text += chunk
            assert b"event: disconnect" in text
            assert b'"code": 3503' in text or b'"code":3503' in text
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except websockets.ConnectionClosed as exc:
                assert exc.rcvd is not None and exc.rcvd.code == 3503
            await asyncio.to_thread(admin.call, "publish", {"channel": "chat:d", "data": "on"})
            assert await asyncio.wait_for(anonymous.recv(), 5) == "on"
            async for chunk in other.aiter_bytes():
                if b"data: on" in chunk:
                    break

    asyncio.run(run())
