"""``?recent=N`` on every plain transport (the newest N, then live, in the positions a resume
uses) and the ``format=json`` envelope of SSE that names each publication's channel."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from ..conftest import LiveServer
from ..sseclient import take


async def _publish(server: LiveServer, channel: str, *words: str) -> list[dict[str, Any]]:
    return [await asyncio.to_thread(server.publish, channel, w) for w in words]


async def _lines(r: httpx.Response, n: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async for line in r.aiter_lines():
        if line:
            item = json.loads(line)
            if item["type"] != "ping":
                got.append(item)
        if len(got) >= n:
            break
    return got


async def test_sse_recent_then_live_then_resume_without_duplicates(server: LiveServer) -> None:
    await _publish(server, "a", "m0", "m1", "m2", "m3", "m4")
    params = {"channel": "a", "recent": "3"}
    async with httpx.AsyncClient(timeout=5) as client:
        async with client.stream("GET", server.url + "/events", params=params) as r:
            await _publish(server, "a", "m5")
            got = await take(r, 4)
        assert [e.data for e in got] == ["m2", "m3", "m4", "m5"]
        await _publish(server, "a", "m6", "m7")
        # what EventSource does: the same URL (recent=3 still in it) and Last-Event-ID
        async with client.stream("GET", server.url + "/events", params=params,
                                 headers={"Last-Event-ID": got[-1].id}) as r:
            await _publish(server, "a", "m8")
            rest = await take(r, 3)
    assert [e.data for e in rest] == ["m6", "m7", "m8"]


async def test_sse_recent_over_many_channels_keeps_each_channels_newest(
        server: LiveServer) -> None:
    await _publish(server, "a", "a0", "a1", "a2")
    await _publish(server, "b", "b0")
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", server.url + "/events",
            params=[("channel", "a"), ("channel", "b"), ("recent", "2")]) as r:
        got = await take(r, 3)
    assert sorted(e.data for e in got) == ["a1", "a2", "b0"]


async def test_sse_json_envelope_names_the_channel_and_the_event(server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", server.url + "/events",
            params=[("channel", "a"), ("channel", "b"), ("format", "json")]) as r:
        await asyncio.to_thread(server.publish, "a", "text")
        await asyncio.to_thread(server.publish, "b", {"k": 1}, "goal")
        got = await take(r, 2)
    # no event: line, so EventSource.onmessage sees both
    assert [e.event for e in got] == ["message", "message"]
    assert json.loads(got[0].data) == {"channel": "a", "data": "text"}
    assert json.loads(got[1].data) == {"channel": "b", "event": "goal", "data": {"k": 1}}


async def test_sse_json_envelope_keeps_reset_a_named_event(server: LiveServer) -> None:
    first = (await _publish(server, "small:e", "x"))[0]
    await _publish(server, "small:e", *[f"n{i}" for i in range(6)])
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", server.url + "/events",
            params={"channel": "small:e", "format": "json",
                    "last_event_id": first["cursor"]}) as r:
        await _publish(server, "small:e", "live")
        got = await take(r, 2)
    assert got[0].event == "reset"
    assert json.loads(got[1].data) == {"channel": "small:e", "data": "live"}


async def test_stream_recent_then_resume(server: LiveServer) -> None:
    await _publish(server, "s", "m0", "m1", "m2")
    async with httpx.AsyncClient(timeout=5) as client:
        async with client.stream("GET", server.url + "/stream",
                                 params={"channel": "s", "recent": "2"}) as r:
            got = await _lines(r, 3)
        assert [m.get("data") for m in got] == ["m1", "m2", None]
        assert got[2]["type"] == "cursor" and got[2]["cursor"] == got[1]["cursor"]
        await _publish(server, "s", "m3")
        async with client.stream("GET", server.url + "/stream",
                                 params={"channel": "s", "recent": "2",
                                         "cursor": got[1]["cursor"]}) as r:
            rest = await _lines(r, 1)
    assert rest[0]["data"] == "m3"


async def test_ws_recent_raw_and_json(server: LiveServer) -> None:
    await _publish(server, "chat:recent", "m0", "m1", "m2")
    async with websockets.connect(server.ws_url + "/ws?channel=chat:recent&recent=2") as ws:
        assert [await ws.recv() for _ in range(2)] == ["m1", "m2"]
        await ws.send("m3")
        assert await ws.recv() == "m3"
    url = server.ws_url + "/ws?channel=chat:recent&format=json&recent=2"
    async with websockets.connect(url) as ws:
        got = [json.loads(await ws.recv()) for _ in range(3)]
    assert [m.get("data") for m in got] == ["m2", "m3", None]
    await _publish(server, "chat:recent", "m4")
    async with websockets.connect(url + "&since=" + got[1]["cursor"]) as ws:
        again = json.loads(await ws.recv())
    assert again["data"] == "m4"  # the cursor wins over recent: nothing twice


async def test_poll_recent_answers_at_once_then_follows_the_cursor(server: LiveServer) -> None:
    await _publish(server, "p", "m0", "m1", "m2")
    async with httpx.AsyncClient(timeout=5) as client:
        r = await client.get(server.url + "/poll", params={"channel": "p", "recent": "2"})
        body = r.json()
        assert [m["data"] for m in body["messages"]] == ["m1", "m2"]
        await _publish(server, "p", "m3")
        r = await client.get(server.url + "/poll", params={"channel": "p", "recent": "2",
                                                          "cursor": body["cursor"]})
    assert [m["data"] for m in r.json()["messages"]] == ["m3"]


async def test_recent_is_capped_by_the_resume_budget(server: LiveServer) -> None:
    """More than the budget asks for what the budget allows (1000 by default), no error."""
    await _publish(server, "p2", "m0", "m1")
    async with httpx.AsyncClient(timeout=5) as client:
        r = await client.get(server.url + "/poll", params={"channel": "p2",
                                                          "recent": "999999999"})
    assert [m["data"] for m in r.json()["messages"]] == ["m0", "m1"]


@pytest.mark.parametrize("value", ["-1", "x", "1.5", "1e3", "9999999999"])
@pytest.mark.parametrize("path", ["/events", "/stream", "/poll"])
async def test_bad_recent_is_400(server: LiveServer, path: str, value: str) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        r = await client.get(server.url + path, params={"channel": "a", "recent": value})
    assert r.status_code == 400 and "recent" in r.json()["error"]["message"]


async def test_bad_recent_and_format_on_ws_and_sse_are_400(server: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with websockets.connect(server.ws_url + "/ws?channel=a&recent=-2"):
            pass
    assert info.value.response.status_code == 400
    async with httpx.AsyncClient(timeout=5) as client:
        r = await client.get(server.url + "/events", params={"channel": "a", "format": "xml"})
    assert r.status_code == 400 and "format" in r.json()["error"]["message"]
