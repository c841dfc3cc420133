"""One validation boundary: a publication is valid, stored and delivered to everyone, or refused
with a clear answer and stored nowhere (issue 10, finding 4), on every publish path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from livehub.core.limits import Limits

from ..conftest import API_KEY, LiveServer, ServerFactory

H = {"X-API-Key": API_KEY, "content-type": "application/json"}
DEEP = "[" * 984 + "]" * 984

POISON = [
    ('{"channel": "p", "data": NaN}', "not valid JSON"),
    ('{"channel": "p", "data": [Infinity]}', "not valid JSON"),
    ('{"channel": "p", "data": {"x": -Infinity}}', "not valid JSON"),
    ('{"channel": "p", "data": 1e999}', "not valid JSON"),
    ('{"channel": "p", "data": ' + DEEP + "}", "nested deeper than 64"),
    ('{"channel": "p", "data": "x", "event": "\\ud800"}', "surrogate"),
    ('{"channel": "p", "data": "\\ud800"}', "surrogate"),
]


async def _lines(client: httpx.AsyncClient, url: str,
                 channel: str) -> AsyncIterator[dict[str, object]]:
    async with client.stream("GET", url + "/stream", params={"channel": channel}) as r:
        async for line in r.aiter_lines():
            yield json.loads(line)


@pytest.mark.parametrize(("body", "fragment"), POISON)
async def test_poison_publication_is_refused_and_stored_nowhere(server: LiveServer, body: str,
                                                                fragment: str) -> None:
    """A live subscriber gets nothing of it and needs no reset: the next publication it gets is
    the next valid one, at offset 1 (nothing was stored before it)."""
    async with httpx.AsyncClient(timeout=10) as client:
        lines = _lines(client, server.url, "p")
        assert (await anext(lines))["type"] == "cursor"
        r = await client.post(server.url + "/api/publish", content=body, headers=H)
        assert r.status_code == 400
        assert fragment in r.json()["error"]["message"]
        assert "Traceback" not in r.text
        ok = await client.post(server.url + "/api/publish", headers=H,
                               json={"channel": "p", "data": "after"})
        assert ok.json()["result"]["offset"] == 1
        got = await anext(lines)
        await lines.aclose()
    assert got["type"] == "pub" and got["data"] == "after"
    history = httpx.post(server.url + "/api/history", headers=H,
                         json={"channel": "p", "limit": -1}).json()
    assert [p["data"] for p in history["result"]["publications"]] == ["after"]


@pytest.mark.parametrize("path", ["/api", "/api/broadcast", "/api/batch"])
@pytest.mark.parametrize(("data", "fragment"), [
    ("NaN", "not valid JSON"), ("1e999", "not valid JSON"), (DEEP, "nested deeper"),
    ('"\\ud800"', "surrogate")])
def test_poison_on_the_other_api_paths(server: LiveServer, path: str, data: str,
                                       fragment: str) -> None:
    publish = '{"channel": "q", "data": ' + data + "}"
    body = {"/api": '{"method": "publish", "params": ' + publish + "}",
            "/api/broadcast": '{"channels": ["q"], "data": ' + data + "}",
            "/api/batch": '{"commands": [{"publish": ' + publish + "}]}"}[path]
    r = httpx.post(server.url + path, content=body, headers=H)
    assert r.status_code == 400
    assert fragment in r.json()["error"]["message"]
    assert server.publish("q", "ok")["offset"] == 1


@pytest.mark.parametrize("path", ["/api", "/api/publish", "/api/history"])
def test_deep_bodies_are_a_clean_400(server: LiveServer, path: str) -> None:
    """``"[" * 1100`` made ``json.loads`` raise RecursionError: 500 with a traceback."""
    r = httpx.post(server.url + path, content="[" * 1100, headers=H)
    assert r.status_code == 400
    assert "nested deeper than 64" in r.json()["error"]["message"]


async def test_oversized_publications_are_refused_at_publish_time(
        make_server: ServerFactory) -> None:
    srv = make_server(limits=Limits(max_publication_size=1000))
    r = httpx.post(srv.url + "/api/publish", headers=H,
                   json={"channel": "chat:big", "data": "x" * 1001})
    error = r.json()["error"]
    assert error["code"] == 106 and "1001 bytes is over the limit of 1000" in error["message"]
    async with websockets.connect(srv.ws_url + "/ws?channel=chat:big") as ws:
        await ws.send("y" * 1000)
        assert await ws.recv() == "y" * 1000
        await ws.send("z" * 1001)
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    assert "over the limit" in info.value.rcvd.reason
    assert srv.publish("chat:big", "next")["offset"] == 2
