"""SSE endpoint with a real HTTP client (httpx)."""

from __future__ import annotations

import asyncio
import json

import httpx

from ..conftest import LiveServer
from ..sseclient import take


async def test_headers_and_first_blocks(server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", server.url + "/events", params={"channel": "news"},
            headers={"Origin": "http://example.test"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"].startswith("no-cache")
        assert r.headers["x-accel-buffering"] == "no"
        assert r.headers["access-control-allow-origin"] == "*"  # any origin, no credentials
        first = b""
        async for chunk in r.aiter_bytes():
            first += chunk
            if first.count(b"\n\n") >= 2:
                break
        assert first.startswith(b"retry: 2000\n\nid: ")


async def test_multi_channel_events_names_and_multiline(server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", server.url + "/events",
            params=[("channel", "a"), ("channel", "b")]) as r:
        await asyncio.to_thread(server.publish, "a", "line1\nline2\r\nline3")
        await asyncio.to_thread(server.publish, "b", {"k": [1, 2]}, "update")
        got = await take(r, 2)
    assert got[0].data == "line1\nline2\nline3" and got[0].event == "message"
    assert json.loads(got[1].data) == {"k": [1, 2]} and got[1].event == "update"
    assert got[0].id != got[1].id


async def test_resume_with_last_event_id_no_loss_no_duplicates(server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        async with client.stream("GET", server.url + "/events",
                                 params=[("channel", "a"), ("channel", "b")]) as r:
            for i in range(3):
                await asyncio.to_thread(server.publish, "a" if i % 2 else "b", f"m{i}")
            got = await take(r, 3)
        last_id = got[-1].id
        for i in range(3, 8):
            await asyncio.to_thread(server.publish, "a" if i % 2 else "b", f"m{i}")
        async with client.stream("GET", server.url + "/events",
                                 params=[("channel", "a"), ("channel", "b")],
                                 headers={"Last-Event-ID": last_id}) as r:
            await asyncio.to_thread(server.publish, "a", "m8")
            rest = await take(r, 6)
    assert [e.data for e in got + rest] == [f"m{i}" for i in range(9)]


async def test_resume_by_query_parameter_and_reset(server: LiveServer) -> None:
    first = await asyncio.to_thread(server.publish, "small:r", "x")
    cursor = first["cursor"]
    for i in range(10):
        await asyncio.to_thread(server.publish, "small:r", f"n{i}")
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", server.url + "/events",
            params={"channel": "small:r", "last_event_id": cursor}) as r:
        await asyncio.to_thread(server.publish, "small:r", "live")
        got = await take(r, 2)
    assert got[0].event == "reset"
    assert json.loads(got[0].data)["channels"] == ["small:r"]
    assert got[1].data == "live"


async def test_bad_requests(server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        r = await client.get(server.url + "/events")
        assert r.status_code == 400 and "channel" in r.json()["error"]["message"]
        r = await client.get(server.url + "/events", params={"channel": "a b"})
        assert r.status_code == 400
        r = await client.get(server.url + "/events", params={"channel": "unknown:x"})
        assert r.status_code == 404 and r.json()["error"]["code"] == 102
        r = await client.get(server.url + "/events",
                             params={"channel": "a"}, headers={"Last-Event-ID": "junk"})
        assert r.status_code == 400 and "cursor" in r.json()["error"]["message"]
        r = await client.get(server.url + "/events",
                             params=[("channel", f"c{i}") for i in range(100)])
        assert r.status_code == 400
        r = await client.post(server.url + "/events", params={"channel": "a"})
        assert r.status_code == 405 and "GET" in r.headers["allow"]


async def test_heartbeat_comments(make_server) -> None:  # type: ignore[no-untyped-def]
    srv = make_server(heartbeat_interval=0.1)
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", srv.url + "/events", params={"channel": "a"}) as r:
        seen = b""
        async for chunk in r.aiter_bytes():
            seen += chunk
            if seen.count(b": heartbeat") >= 2:
                break
    assert seen.count(b": heartbeat\n\n") >= 2


async def test_server_disconnect_is_announced(server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", server.url + "/events", params={"channel": "a"}) as r:
        raw = r.aiter_raw()
        seen = b""
        while seen.count(b"\n\n") < 2:  # registered: retry and checkpoint blocks arrived
            seen += await anext(raw)
        assert server.drop_streams() == 1
        while not seen.endswith(b"\n\n") or b"event: disconnect" not in seen:
            seen += await anext(raw)
    block = seen[seen.index(b"event: disconnect"):]
    data = block.split(b"data: ", 1)[1].split(b"\n", 1)[0]
    assert json.loads(data) == {"code": 3011, "reason": "force reconnect", "reconnect": True}
