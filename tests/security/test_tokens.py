"""Where a plain client puts its token (query, bearer header, cookie, with the cookie's origin
rule), and what a long-lived stream is told when its token expires: the expiry code in-band
(SSE ``event: disconnect``, an NDJSON ``disconnect`` line, the WebSocket close code), after
which a fresh token lets it back in."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import Iterator

import httpx
import pytest
import websockets

from ..centrifugo.conftest import CfServer
from ..sseclient import Interpreter
from .clients import PLAIN, plain
from .conftest import make_security_server, tok

COOKIE = "livehub_token"


@pytest.mark.parametrize("transport", PLAIN)
async def test_bearer_header(sec_server: CfServer, transport: str) -> None:
    channel = f"members:bearer-{transport}"
    assert await plain(sec_server, transport, channel) == "denied"
    headers = {"Authorization": f"Bearer {tok('42')}"}
    assert await plain(sec_server, transport, channel, headers=headers) == "ok"
    forged = {"Authorization": "Bearer not-a.jwt"}
    assert await plain(sec_server, transport, channel, headers=forged) == "invalid"


@pytest.mark.parametrize("transport", PLAIN)
async def test_cookie_counts_from_own_or_listed_origins(transport: str) -> None:
    srv = make_security_server(allowed_origins=("https://app.test",))
    try:
        channel = f"members:cookie-{transport}"
        cookie = {"Cookie": f"other=1; {COOKIE}={tok('42')}"}
        assert await plain(srv, transport, channel, headers=cookie) == "ok"
        same = {**cookie, "Origin": srv.url}
        assert await plain(srv, transport, channel, headers=same) == "ok"
        listed = {**cookie, "Origin": "https://app.test"}
        assert await plain(srv, transport, channel, headers=listed) == "ok"
    finally:
        srv.stop()


@pytest.mark.parametrize("transport", PLAIN)
async def test_cookie_from_another_site_is_ignored(sec_server: CfServer, transport: str) -> None:
    """Even with ``allowed_origins = *``, a page of another site cannot borrow the user's
    cookie (cross-site WebSocket hijacking): the client counts as anonymous."""
    cookie = {"Cookie": f"{COOKIE}={tok('42')}", "Origin": "https://evil.example"}
    channel = f"members:evil-{transport}"
    assert await plain(sec_server, transport, channel, headers=cookie) == "denied"
    assert await plain(sec_server, transport, f"news-evil-{transport}", headers=cookie) == "ok"


@pytest.fixture
def quick_server() -> Iterator[CfServer]:
    """Expiry is checked on every heartbeat tick: a short one keeps the tests short."""
    srv = make_security_server(heartbeat_interval=0.1)
    yield srv
    srv.stop()


def _soon() -> str:
    return tok("42", ttl=None, exp=int(time.time()) + 2)


async def test_sse_stream_is_told_when_its_token_expires(quick_server: CfServer) -> None:
    url = quick_server.url + "/events"
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", url, params={"channel": "members:sse",
                                                     "token": _soon()}) as r:
            assert r.status_code == 200
            interpreter = Interpreter()
            async with asyncio.timeout(8):
                async for line in r.aiter_lines():
                    event = interpreter.feed(line)
                    if event is not None and event.event == "disconnect":
                        break
        info = json.loads(event.data)
        assert info == {"code": 3005, "reason": "connection expired", "reconnect": True}
        # reconnecting with the same token is refused, with a fresh one it works
        r = await client.get(url, params={"channel": "members:sse", "token": _expired()})
        assert r.status_code == 401 and r.json()["error"]["code"] == 109
    assert await plain(quick_server, "events", "members:sse", token=tok("42")) == "ok"


def _expired() -> str:
    return tok("42", ttl=-1)


async def test_ndjson_stream_is_told_when_its_token_expires(quick_server: CfServer) -> None:
    async with httpx.AsyncClient(timeout=10) as client, client.stream(
            "GET", quick_server.url + "/stream",
            params={"channel": "members:nd", "token": _soon()}) as r:
        assert r.status_code == 200
        async with asyncio.timeout(8):
            async for line in r.aiter_lines():
                item = json.loads(line)
                if item["type"] == "disconnect":
                    break
    assert item == {"type": "disconnect", "code": 3005, "reason": "connection expired",
                    "reconnect": True}
    assert await plain(quick_server, "stream", "members:nd", token=tok("42")) == "ok"


async def test_websocket_is_closed_when_its_token_expires(quick_server: CfServer) -> None:
    query = urllib.parse.urlencode({"channel": "members:ws", "token": _soon()})
    async with websockets.connect(f"{quick_server.ws_url}/ws?{query}") as ws:
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 8)
    assert info.value.rcvd is not None and info.value.rcvd.code == 3005
    assert await plain(quick_server, "ws", "members:ws", token=tok("42")) == "ok"


async def test_subscription_token_expiry_ends_the_stream(quick_server: CfServer) -> None:
    """The earliest credential of a stream decides: here its subscription token."""
    sub = tok("42", channel="$sub-exp", ttl=None, exp=int(time.time()) + 2)
    async with httpx.AsyncClient(timeout=10) as client, client.stream(
            "GET", quick_server.url + "/stream",
            params={"channel": "$sub-exp", "token": tok("42"), "sub_token": sub}) as r:
        assert r.status_code == 200
        async with asyncio.timeout(8):
            async for line in r.aiter_lines():
                if json.loads(line)["type"] == "disconnect":
                    assert json.loads(line)["code"] == 3006  # subscription expired
                    break
