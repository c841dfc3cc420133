"""The proxy configurations of ``deploy/`` in front of two hubs sharing Redis: SSE and HTTP
streaming pass unbuffered, WebSocket upgrades work, the client address reaches the hubs through
``X-Forwarded-For`` (``trusted_proxies``), heartbeats pass and the proxy's timeouts are above
them, and the same-origin checks see the browser's host (``Host`` with its port)."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import pytest
import websockets

from livehub.protocols.centrifugo import CentrifugoSettings
from livehub.transports.context import ServerSettings

from ..serve_process import API_KEY
from .conftest import ADMIN_PASSWORD, DEPLOY, HEARTBEAT, Deployment

pytestmark = pytest.mark.redis


def publish(base: str, channel: str, data: object) -> str:
    """Publish through the server API at ``base``; the publication's cursor (a stream opened
    from it gets everything after it: no race with the stream's subscription)."""
    r = httpx.post(base + "/api/publish", json={"channel": channel, "data": data},
                   headers={"X-API-Key": API_KEY}, timeout=5)
    assert r.status_code == 200, r.text
    cursor: str = r.json()["result"]["cursor"]
    return cursor


def client(address: str = "127.0.0.1") -> httpx.Client:
    """An HTTP client whose connections come from ``address`` (any of 127.0.0.0/8)."""
    return httpx.Client(timeout=5, transport=httpx.HTTPTransport(local_address=address))


def test_sse_is_not_buffered(deployment: Deployment) -> None:
    """An event arrives while its stream is open (a buffering proxy would hold it until the
    stream ends), published on either hub through the proxy."""
    url = deployment.proxy.url
    cursor = publish(url, "chat:sse", "before")
    with client() as http, http.stream("GET", url + "/events", params={"channel": "chat:sse"},
                                       headers={"Last-Event-ID": cursor}) as events:
        assert events.status_code == 200
        assert events.headers["content-type"].startswith("text/event-stream")
        received = b""
        stream = events.iter_bytes()
        for n in range(2):  # two publications: they go to both hubs in turn
            publish(url, "chat:sse", f"event {n}")
            while f"data: event {n}".encode() not in received:
                received += next(stream)
        heartbeats = received.count(b": heartbeat")
        while received.count(b": heartbeat") < heartbeats + 2:  # idle: heartbeats pass too
            received += next(stream)


def test_http_streaming_is_not_buffered(deployment: Deployment) -> None:
    url = deployment.proxy.url
    cursor = publish(url, "chat:ndjson", "before")
    with client() as http, http.stream("GET", url + "/stream", params={
            "channel": "chat:ndjson", "cursor": cursor}) as lines:
        assert lines.status_code == 200
        reader = lines.iter_lines()
        publish(url, "chat:ndjson", {"n": 1})
        for line in reader:
            message = json.loads(line)
            if message["type"] == "pub":
                assert message["data"] == {"n": 1}
                break


def test_websocket_upgrade(deployment: Deployment) -> None:
    ws_url = deployment.proxy.ws_url

    async def run() -> None:
        async with websockets.connect(ws_url + "/echo") as echo:
            await echo.send("through the proxy")
            assert await asyncio.wait_for(echo.recv(), 5) == "Echo: through the proxy"
        cursor = await asyncio.to_thread(publish, deployment.proxy.url, "chat:ws", "before")
        async with websockets.connect(f"{ws_url}/ws?channel=chat:ws&since={cursor}") as ws:
            await asyncio.to_thread(publish, deployment.proxy.url, "chat:ws", "to the socket")
            assert await asyncio.wait_for(ws.recv(), 5) == "to the socket"

    asyncio.run(run())


def test_client_address_reaches_the_hubs(deployment: Deployment) -> None:
    """Each hub admits one connection per client address (``--max-connections-per-ip 1``):
    the client named by ``X-Forwarded-For``, not the proxy.  Three streams from 127.0.0.2 over
    two hubs: exactly one is refused (429) whichever hubs the proxy picks; 127.0.0.3 still gets
    in."""
    url = deployment.proxy.url
    statuses: list[int] = []
    with client("127.0.0.2") as http:
        opened = []
        try:
            for _ in range(3):
                stream = http.stream("GET", url + "/events", params={"channel": "chat:ip"})
                response = stream.__enter__()
                opened.append(stream)
                statuses.append(response.status_code)
            assert sorted(statuses) == [200, 200, 429]
            with client("127.0.0.3") as other, other.stream(
                    "GET", url + "/events", params={"channel": "chat:ip"}) as third:
                assert third.status_code == 200
        finally:
            for stream in opened:
                stream.__exit__(None, None, None)


def test_same_origin_checks_see_the_browser_host(deployment: Deployment) -> None:
    """The admin login compares ``Origin`` with ``Host``: the proxy must pass the host the
    browser used, port included."""
    url = deployment.proxy.url
    with client() as http:
        r = http.post(url + "/admin/login", data={"password": ADMIN_PASSWORD},
                      headers={"Origin": url})
        assert r.status_code == 303, r.text
        foreign = http.post(url + "/api/publish", json={"channel": "chat:x", "data": 1},
                            headers={"X-API-Key": API_KEY, "Origin": "https://evil.example"})
        assert foreign.status_code == 403


def test_admin_lists_both_nodes_through_the_proxy(deployment: Deployment) -> None:
    """Logged in through the proxy, the dashboard's data names both hubs (the nodes hear
    each other's heartbeats through Redis), whichever hub answers: the session cookie is
    valid on every node with the same secret."""
    url = deployment.proxy.url
    with client() as http:
        login = http.post(url + "/admin/login", data={"password": ADMIN_PASSWORD},
                          headers={"Origin": url})
        assert login.status_code == 303
        deadline = time.monotonic() + 15
        names: set[str] = set()
        answered: set[str] = set()
        while (names != {"hub1", "hub2"} or answered != {"hub1", "hub2"}) \
                and time.monotonic() < deadline:
            stats = http.get(url + "/admin/api/stats")
            assert stats.status_code == 200, stats.text
            names = {node["name"] for node in stats.json()["nodes"]}
            answered.add(stats.json()["node"])
            time.sleep(0.1)
        assert names == {"hub1", "hub2"}
        assert answered == {"hub1", "hub2"}


def seconds(value: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "": 1}
    number, unit = re.fullmatch(r"(\d+)([smh]?)", value).groups()  # type: ignore[union-attr]
    return int(number) * units[unit]


def test_nginx_timeouts_above_heartbeats_and_polls() -> None:
    """nginx closes a proxied connection idle for ``proxy_read_timeout``: it must be longer
    than every silence of a live connection (heartbeats, pings, the longest long-poll)."""
    text = (DEPLOY / "nginx" / "livehub.conf").read_text()
    server, cf = ServerSettings(), CentrifugoSettings()
    longest_silence = max(server.heartbeat_interval, server.max_poll_timeout,
                          cf.client_ping_interval, HEARTBEAT)
    for name in ("proxy_read_timeout", "proxy_send_timeout"):
        found = re.search(rf"^\s*{name} (\w+);", text, re.M)
        assert found, name
        assert seconds(found.group(1)) >= 10 * longest_silence
    assert re.search(r"^\s*proxy_buffering off;", text, re.M)
    assert re.search(r"^\s*proxy_set_header Host \$http_host;", text, re.M)
