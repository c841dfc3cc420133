"""``/health``, ``/ready`` and the SIGTERM drain of a real ``livehub serve`` with real clients:
``/ready`` turns 503 first, new connections are refused after ``drain_delay``, open ones are told
to reconnect elsewhere (WebSocket 1001, Centrifugo 3001, SSE in-band ``disconnect``) spread over
``drain_window``, and the process exits 0; ``/ready`` is 503 while Redis is down."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
import websockets

from ..centrifugo.wsclient import RawClient
from ..redis_server import RedisServer
from ..serve_process import ServeFactory, ServeProcess, serve  # noqa: F401 - fixture
from ..sseclient import events

STREAMS = 12
WINDOW = 2.0


async def status(client: httpx.AsyncClient, url: str) -> int:
    return (await client.get(url)).status_code


async def until(check, what: str, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    """Poll ``check()`` (an awaitable factory) until it is true."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.02)


async def sse_goodbye(client: httpx.AsyncClient, srv: ServeProcess, opened: asyncio.Event,
                      count: list[int]) -> tuple[float, dict[str, object], str | None]:
    """Follow one SSE stream until its in-band ``disconnect``: when it came, what it said and
    the last event id (the cursor EventSource resumes from)."""
    async with client.stream("GET", srv.url + "/events", params={"channel": "news"}) as r:
        last_id = None
        count[0] += 1
        if count[0] == STREAMS:
            opened.set()
        async for event in events(r):
            last_id = event.id or last_id
            if event.event == "disconnect":
                return time.monotonic(), json.loads(event.data), last_id
    raise AssertionError("the stream ended without a disconnect event")


async def test_sigterm_drains_every_transport(serve: ServeFactory) -> None:  # noqa: F811
    srv = serve("--dev", "--drain-delay", "1", "--drain-window", str(WINDOW),
                "--drain-timeout", "30")
    assert srv.proc is not None
    async with httpx.AsyncClient(timeout=30) as client:
        assert await status(client, srv.url + "/ready") == 200
        opened, count = asyncio.Event(), [0]
        streams = [asyncio.create_task(sse_goodbye(client, srv, opened, count))
                   for _ in range(STREAMS)]
        async with websockets.connect(srv.ws_url + "/ws?channel=news") as raw, \
                websockets.connect(srv.ws_url + "/connection/websocket") as cf_ws:
            cf = RawClient(cf_ws)
            assert "connect" in await cf.call("connect", {})
            await asyncio.wait_for(opened.wait(), 15)
            cursor = (await client.get(srv.url + "/poll", params={"channel": "news"})
                      ).json()["cursor"]
            poll = asyncio.create_task(client.get(srv.url + "/poll", params={
                "channel": "news", "cursor": cursor, "timeout": "60"}))
            await until(lambda: _subscribed(client, srv, STREAMS + 2), "everyone subscribed")

            os.kill(srv.proc.pid, signal.SIGTERM)
            signalled = time.monotonic()
            # 1. not ready any more, still alive, still accepting (the delay)
            await until(lambda: _is(client, srv.url + "/ready", 503), "/ready 503")
            assert (await client.get(srv.url + "/ready")).json() == {"status": "draining"}
            assert await status(client, srv.url + "/health") == 200
            # 2. every client is told to go elsewhere, with the code of its wire
            raw_close = await _closed_with(raw)
            cf_close = await RawClient(cf_ws).closed_with()
            goodbyes = await asyncio.gather(*streams)
            polled = await poll
    # the waiting poll was answered at once (not after its 60 s), with its cursor
    assert polled.status_code == 200 and polled.headers["connection"] == "close"
    assert polled.json() == {"messages": [], "cursor": cursor}
    assert raw_close == 1001
    assert cf_close == 3001
    for _, body, last_id in goodbyes:
        assert body["code"] == 3001 and body["reconnect"] is True
        assert last_id  # EventSource reconnects with it (Last-Event-ID) to another node
    times = sorted(t for t, _, _ in goodbyes)
    assert times[0] - signalled >= 1.0  # nobody before the delay
    assert times[-1] - times[0] >= WINDOW / 3  # spread over the window, not all at once
    # 3. new connections are refused, and the process exits 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(srv.url + "/health", timeout=5)
    assert srv.proc.wait(30) == 0
    log = srv.log()
    assert "draining: telling 14 connections to reconnect elsewhere" in log
    assert "drained" in log


async def test_a_second_signal_hurries_the_drain(serve: ServeFactory) -> None:  # noqa: F811
    srv = serve("--drain-delay", "60", "--drain-window", "60", "--drain-timeout", "120")
    assert srv.proc is not None
    async with httpx.AsyncClient(timeout=30) as client:
        os.kill(srv.proc.pid, signal.SIGTERM)
        await until(lambda: _is(client, srv.url + "/ready", 503), "/ready 503")
    os.kill(srv.proc.pid, signal.SIGTERM)
    assert srv.proc.wait(30) == 0


async def test_ready_follows_the_broker(serve: ServeFactory, tmp_path: Path) -> None:  # noqa: F811
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        srv = serve("--broker", "redis", "--redis-url", redis.url)
        async with httpx.AsyncClient(timeout=30) as client:
            await until(lambda: _is(client, srv.url + "/ready", 200), "/ready 200")
            redis.stop()
            await until(lambda: _is(client, srv.url + "/ready", 503), "/ready 503, Redis down")
            assert (await client.get(srv.url + "/ready")).json() == {
                "status": "broker unavailable"}
            assert await status(client, srv.url + "/health") == 200  # alive all the same
            scrape = await client.get(srv.url + "/metrics")
            assert "livehub_broker_up 0.0" in scrape.text
            redis.start()
            await until(lambda: _is(client, srv.url + "/ready", 200), "/ready 200 again")
            scrape = await client.get(srv.url + "/metrics")
            assert "livehub_redis_reconnects_total 1.0" in scrape.text
            assert "livehub_broker_up 1.0" in scrape.text
    finally:
        redis.stop()


async def _is(client: httpx.AsyncClient, url: str, code: int) -> bool:
    return await status(client, url) == code


async def _subscribed(client: httpx.AsyncClient, srv: ServeProcess, n: int) -> bool:
    r = await client.get(srv.url + "/metrics")
    return f"livehub_subscriptions {float(n)}" in r.text


async def _closed_with(ws: websockets.ClientConnection) -> int:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 30)
    except websockets.ConnectionClosed as exc:
        assert exc.rcvd is not None
        return exc.rcvd.code
