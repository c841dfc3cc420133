"""The ASGI adapter under real ASGI servers (uvicorn, hypercorn) with real clients (httpx,
websockets): the fast server's semantics through a mount, from the same endpoints."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

import livehub
from livehub.config import Config
from livehub.core.channels import ChannelOptions, Namespaces, public_options
from livehub.transports.context import ServerSettings

from ..sseclient import Interpreter, take
from .conftest import AsgiFactory, AsgiServer, GranianServer, load_example

SERVERS = ["uvicorn", "hypercorn"]
API_KEY = "asgi-key"


def hub_config(**server: Any) -> Config:
    settings = ServerSettings(api_key=API_KEY, clock=False, echo=False, **server)
    namespaces = Namespaces(public_options(), {
        "small": public_options(history_size=2),
        "chat": public_options(client_publish=True),
        "ro": public_options(),
        "user": ChannelOptions(allow_user_limited_channels=True),
    })
    return Config(settings, namespaces)


def fastapi_app(hub: livehub.Hub) -> FastAPI:
    app = FastAPI(lifespan=hub.lifespan)
    app.mount("/live", hub.asgi())
    return app


class SseReader:
    """SSE events (id-only checkpoints included) of one response, as dicts."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()
        self._interp = Interpreter(extras=True)

    async def next(self, n: int) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        while len(out) < n:
            event = self._interp.feed(await anext(self._lines))
            if event is not None and event.event != "comment":
                out.append({"event": event.event, "data": event.data, "id": event.id})
        return out


async def sse_lines(response: httpx.Response, n: int) -> list[dict[str, str]]:
    return await SseReader(response).next(n)


@pytest.mark.parametrize("kind", SERVERS)
async def test_example_app_sse_resume_and_reset(serve_asgi: AsgiFactory, kind: str) -> None:
    """The FastAPI example under uvicorn/hypercorn: SSE through the mount gets the route's
    publications with cursors, resumes with Last-Event-ID without loss or duplicates, and is
    told ``reset`` when history cannot cover the gap."""
    example = load_example("fastapi_app")
    server = await asyncio.to_thread(serve_asgi, example.app, kind)
    url = server.url
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("GET", f"{url}/live/events?channel=news") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache, no-transform"
            for title in ("one", "two"):
                assert (await http.post(f"{url}/news", params={"title": title})).is_success
            events = await sse_lines(response, 3)
        assert events[0]["event"] == "checkpoint"
        assert [json.loads(e["data"])["title"] for e in events[1:]] == ["one", "two"]
        last_id = events[1]["id"]
        await http.post(f"{url}/news", params={"title": "three"})
        async with http.stream("GET", f"{url}/live/events?channel=news",
                               headers={"Last-Event-ID": last_id}) as response:
            events = await sse_lines(response, 2)
        assert [json.loads(e["data"])["title"] for e in events] == ["two", "three"]
        stale = last_id.split("~")[0] + "~anotherepoch"
        async with http.stream("GET", f"{url}/live/events?channel=news",
                               headers={"Last-Event-ID": stale}) as response:
            events = await sse_lines(response, 1)
        assert events[0]["event"] == "reset"


@pytest.mark.parametrize("kind", SERVERS)
async def test_ws_poll_stream_and_refusals(serve_asgi: AsgiFactory, kind: str) -> None:
    hub = livehub.Hub(config=hub_config())
    server = await asyncio.to_thread(serve_asgi, fastapi_app(hub), kind)
    live = f"{server.url}/live"
    async with httpx.AsyncClient(timeout=10) as http:
        # the raw WebSocket: a client message is published through the node (chat allows it)
        async with websockets.connect(f"{server.ws_url}/live/ws?channel=chat:a") as ws:
            await ws.send("hi")
            assert await asyncio.wait_for(ws.recv(), 5) == "hi"
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
                hub.publish("chat:a", b"\x01\x02"), server.loop))
            assert await asyncio.wait_for(ws.recv(), 5) == b"\x01\x02"
        # where clients may not publish: 3507, the same close code as on the fast server
        async with websockets.connect(f"{server.ws_url}/live/ws?channel=ro:a") as ws:
            await ws.send("not allowed")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 3507
        # long-polling: the cursor from an empty poll, then the next publication
        first = (await http.get(f"{live}/poll", params={"channel": "small:p"})).json()
        waiting = asyncio.ensure_future(http.get(f"{live}/poll", params={
            "channel": "small:p", "cursor": first["cursor"], "timeout": 10}))
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
            hub.publish("small:p", {"n": 1}), server.loop))
        answer = (await waiting).json()
        assert [m["data"] for m in answer["messages"]] == [{"n": 1}]
        # history of 2 cannot cover 3 missed publications: /stream says reset
        for n in range(2, 5):
            server.call(hub.publish("small:p", {"n": n}))
        async with http.stream("GET", f"{live}/stream", params={
                "channel": "small:p", "cursor": answer["cursor"]}) as response:
            assert response.headers["content-type"] == "application/x-ndjson"
            lines = response.aiter_lines()
            kinds = [json.loads(await lines.__anext__())["type"] for _ in range(2)]
        assert kinds == ["reset", "cursor"]
        # refusals answer with the fast server's status and body
        bad = await http.get(f"{live}/events")
        assert bad.status_code == 400 and bad.json()["error"]["code"] == 107
        assert (await http.get(f"{live}/events?channel=nowhere:x")).status_code == 404
        assert (await http.get(f"{live}/nothing")).status_code == 404
        head = await http.head(f"{live}/events?channel=news")
        assert head.status_code == 200 and head.headers["content-type"].startswith(
            "text/event-stream")
        api = await http.post(f"{live}/api/publish", json={"channel": "news", "data": 1},
                              headers={"X-API-Key": "wrong"})
        assert api.status_code == 401
        assert (await http.post(f"{live}/api/publish", json={"channel": "news", "data": 1},
                                headers={"X-API-Key": API_KEY})).json()["result"]["offset"] == 1


async def test_slow_consumer_is_closed_and_the_publisher_never_waits(
        serve_asgi: AsgiFactory) -> None:
    """A subscriber that never reads fills what the ASGI server buffers, then its queue in the
    adapter beyond ``max_buffer``: it is disconnected as slow, as on the fast server, while
    every publication returns at once and a reading subscriber gets them all."""
    hub = livehub.Hub(config=hub_config(max_buffer=64 * 1024))
    server = await asyncio.to_thread(serve_asgi, fastapi_app(hub))
    stalled = socket.create_connection(("127.0.0.1", server.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /live/events?channel=flood HTTP/1.1\r\nHost: x\r\n\r\n")

    async def connections() -> int:
        app = await hub._started()
        return len(app.ctx.connections)

    async with httpx.AsyncClient(timeout=10) as http, http.stream(
            "GET", f"{server.url}/live/events?channel=flood") as reader:
        while server.call(connections()) < 2:
            await asyncio.sleep(0.01)
        payload = "x" * 16 * 1024
        got = 0
        lines = reader.aiter_lines()

        async def publish_until_one_left() -> int:
            n = 0
            app = await hub._started()
            while len(app.ctx.connections) > 1 and n < 20_000:
                await hub.publish("flood", payload)
                n += 1
                await asyncio.sleep(0)
            return n

        published = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
            publish_until_one_left(), server.loop))
        assert published < 20_000, "the stalled subscriber was never closed"
        while got < published:
            line = await lines.__anext__()
            if line.startswith("data: x"):
                got += 1
        assert got == published
    stalled.close()


async def test_session_user_through_the_authenticate_hook(serve_asgi: AsgiFactory) -> None:
    """Starlette's session names the user: ``user:#alice`` (limited to alice) is readable by
    her session and refused (403) to anonymous and other users; another site's page cannot
    borrow the session (its Origin is not allowed)."""
    hub = livehub.Hub(config=hub_config(allowed_origins=["https://app.example"]),
                      authenticate=lambda scope: scope["session"].get("user"))

    async def login(request: StarletteRequest) -> PlainTextResponse:
        request.session["user"] = request.query_params["user"]
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/login", login), Mount("/live", hub.asgi())],
                    middleware=[Middleware(SessionMiddleware, secret_key="s3cret")],
                    lifespan=hub.lifespan)
    server = await asyncio.to_thread(serve_asgi, app)
    channel = "/live/events?channel=user:private%23alice"
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as alice, \
            httpx.AsyncClient(base_url=server.url, timeout=10) as bob, \
            httpx.AsyncClient(base_url=server.url, timeout=10) as anonymous:
        await alice.get("/login?user=alice")
        await bob.get("/login?user=bob")
        assert (await anonymous.get(channel)).status_code == 403
        assert (await bob.get(channel)).status_code == 403
        evil = await alice.get(channel, headers={"Origin": "https://evil.example"})
        assert evil.status_code == 403
        async with alice.stream("GET", channel) as response:
            assert response.status_code == 200
            server.call(hub.publish("user:private#alice", "for alice"))
            events = await take(response, 1)
        assert events[0].data == "for alice"
        async with alice.stream("GET", channel,
                                headers={"Origin": "https://app.example"}) as response:
            assert response.status_code == 200


async def test_shutdown_tells_subscribers(serve_asgi: AsgiFactory) -> None:
    """The host app's lifespan ends: every subscriber through the mount is told 3001
    (shutdown, reconnect) before the server goes."""
    hub = livehub.Hub(config=hub_config())
    server: AsgiServer = await asyncio.to_thread(serve_asgi, fastapi_app(hub))
    async with httpx.AsyncClient(timeout=10) as http, http.stream(
            "GET", f"{server.url}/live/events?channel=news") as response:
        reader = SseReader(response)
        assert (await reader.next(1))[0]["event"] == "checkpoint"
        server.call(hub.stop())
        (event,) = await reader.next(1)
    assert event["event"] == "disconnect" and json.loads(event["data"])["code"] == 3001


@pytest.fixture
def granian() -> Iterator[GranianServer]:
    server = GranianServer("examples.fastapi_app:app", {})
    try:
        server.wait_listening()
        yield server
    finally:
        server.stop()


async def test_example_app_under_granian(granian: GranianServer) -> None:
    """granian (a Rust ASGI server, in a process of its own): SSE and the raw WebSocket
    through the mount."""
    async with httpx.AsyncClient(timeout=10) as http, http.stream(
            "GET", f"{granian.url}/live/events?channel=news") as response:
        reader = SseReader(response)
        assert (await reader.next(1))[0]["event"] == "checkpoint"
        assert (await http.post(f"{granian.url}/news", params={"title": "g"})).is_success
        (event,) = await reader.next(1)
        assert json.loads(event["data"]) == {"title": "g"}
    async with websockets.connect(f"{granian.ws_url}/live/ws?channel=chat:g") as ws:
        await ws.send("hey")
        assert await asyncio.wait_for(ws.recv(), 5) == "hey"


async def test_session_user_on_the_centrifugo_endpoints(serve_asgi: AsgiFactory) -> None:
    """A Centrifugo client without a token connects as the user of the host app's session:
    alice subscribes to ``user:private#alice``; mallory's session is refused (103)."""
    hub = livehub.Hub(config=hub_config(),
                      authenticate=lambda scope: scope["session"].get("user"))

    async def login(request: StarletteRequest) -> PlainTextResponse:
        request.session["user"] = request.query_params["user"]
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/login", login), Mount("/live", hub.asgi())],
                    middleware=[Middleware(SessionMiddleware, secret_key="s3cret")],
                    lifespan=hub.lifespan)
    server = await asyncio.to_thread(serve_asgi, app)
    replies: dict[str, dict[int, dict[str, Any]]] = {}
    for user in ("alice", "mallory"):
        async with httpx.AsyncClient(base_url=server.url) as http:
            await http.get(f"/login?user={user}")
            cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
        replies[user] = await connect_and_subscribe(
            f"{server.ws_url}/live/connection/websocket", cookie, "user:private#alice")
    assert "connect" in replies["alice"][1] and "subscribe" in replies["alice"][2]
    assert "connect" in replies["mallory"][1]
    assert replies["mallory"][2]["error"]["code"] == 103


async def connect_and_subscribe(url: str, cookie: str, channel: str
                                ) -> dict[int, dict[str, Any]]:
    """The replies to a token-less Centrifugo connect (id 1) and a subscribe (id 2)."""
    async with websockets.connect(url, additional_headers={"Cookie": cookie}) as ws:
        await ws.send('{"id":1,"connect":{}}\n'
                      + json.dumps({"id": 2, "subscribe": {"channel": channel}}))
        replies: dict[int, dict[str, Any]] = {}
        while len(replies) < 2:
            for line in str(await asyncio.wait_for(ws.recv(), 5)).splitlines():
                reply = json.loads(line)
                if "id" in reply:
                    replies[reply["id"]] = reply
        return replies


async def test_heartbeats_under_asgi(serve_asgi: AsgiFactory) -> None:
    """The hub's heartbeat tick reaches mounted connections: SSE gets its heartbeat comments,
    and a raw WebSocket is not closed for want of pongs (3012) after many ticks, because under
    ASGI the server owns pings and the adapter answers the connection's own."""
    hub = livehub.Hub(config=hub_config(heartbeat_interval=0.05))
    server = await asyncio.to_thread(serve_asgi, fastapi_app(hub))
    async with websockets.connect(f"{server.ws_url}/live/ws?channel=chat:hb") as ws, \
            httpx.AsyncClient(timeout=10) as http, \
            http.stream("GET", f"{server.url}/live/events?channel=news") as response:
        interp = Interpreter(extras=True)
        beats = 0
        lines = response.aiter_lines()
        while beats < 10:  # ten ticks: a WebSocket without pongs is closed after three
            event = interp.feed(await anext(lines))
            if event is not None and event.event == "comment":
                beats += 1
        await ws.send("still here")
        assert await asyncio.wait_for(ws.recv(), 5) == "still here"
