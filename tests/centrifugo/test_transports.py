"""Unidirectional transports, bidirectional emulation through the broker, bad input, and the
development preset."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from centrifuge import Client

from livehub.config import load
from livehub.transports.context import ServerSettings

from ..conftest import API_KEY
from .conftest import CfServer, make_cf_server, token
from .test_python_sdk import SubEvents, get
from .wsclient import RawClient, connect


async def _lines(r: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    async for line in r.aiter_lines():
        if line.startswith(("event:", ":")) or not line.strip():
            continue
        yield json.loads(line.removeprefix("data: "))


async def _take(it: AsyncIterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        async for item in it:
            inner = item.get("push", item)
            if item and "join" not in inner and "leave" not in inner:  # skip pings, presence
                out.append(item)
            if len(out) == n:
                break
    return out


@pytest.mark.parametrize("kind", ["uni_http_stream", "uni_sse"])
async def test_uni_stream_with_server_side_subscription_and_recovery(cf_server: CfServer,
                                                                     kind: str) -> None:
    url = f"{cf_server.url}/connection/{kind}"
    request = {"token": token("uni", channels=[f"chat:{kind}"])}
    async with httpx.AsyncClient(timeout=5) as client:
        method, extra = ("POST", {"json": request}) if kind == "uni_http_stream" else (
            "GET", {"params": {"cf_connect": json.dumps(request)}})
        async with client.stream(method, url, **extra) as r:
            assert r.status_code == 200
            lines = _lines(r)
            [connected] = await _take(lines, 1)
            sub = connected["connect"]["subs"][f"chat:{kind}"]
            assert sub["recoverable"] is True and connected["connect"]["ping"] == 25
            await asyncio.to_thread(cf_server.publish, f"chat:{kind}", {"n": 1})
            [pub] = await _take(lines, 1)
            assert pub == {"channel": f"chat:{kind}", "pub": {"data": {"n": 1}, "offset": 1}}
        for n in (2, 3):
            await asyncio.to_thread(cf_server.publish, f"chat:{kind}", {"n": n})
        request["subs"] = {f"chat:{kind}": {"recover": True, "offset": 1,
                                            "epoch": sub["epoch"]}}
        extra = {"json": request} if kind == "uni_http_stream" else {
            "params": {"cf_connect": json.dumps(request)}}
        async with client.stream(method, url, **extra) as r:
            lines = _lines(r)
            connected, *missed = await _take(lines, 3)
            resumed = connected["connect"]["subs"][f"chat:{kind}"]
            assert resumed["recovered"] is True and resumed["offset"] == 1
            assert [m["pub"]["data"]["n"] for m in missed] == [2, 3]


async def test_uni_websocket(cf_server: CfServer) -> None:
    url = cf_server.ws_url + "/connection/uni_websocket"
    async with connect(url) as ws:
        await ws.send(json.dumps({"token": token("uw"), "subs": {"small:uw": {}}}))
        connected = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert "small:uw" in connected["connect"]["subs"]
        await asyncio.to_thread(cf_server.publish, "small:uw", "hi")
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {
            "channel": "small:uw", "pub": {"data": "hi", "offset": 1}}
    query = urllib.parse.quote(json.dumps({"token": "not-a-jwt"}))
    async with connect(url + "?cf_connect=" + query) as ws:
        disconnect = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert disconnect["disconnect"]["code"] == 3500
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 3500


@pytest.mark.parametrize("kind", ["http_stream", "uni_http_stream"])
async def test_http_stream_head_says_the_connection_closes_after_it(cf_server: CfServer,
                                                                    kind: str) -> None:
    """The stream ends with the server closing the socket: a client pool must not reuse it
    (centrifuge-js's next fetch failed when it did; RFC 9112 §9.6)."""
    body = {"token": token("head")} if kind.startswith("uni") else {
        "id": 1, "connect": {"token": token("head")}}
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "POST", f"{cf_server.url}/connection/{kind}", json=body) as r:
        assert r.status_code == 200
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.headers["connection"] == "close"


async def test_emulation_requests_are_routed_through_the_broker(cf_server: CfServer) -> None:
    broker = cf_server.app.ctx.hub.broker  # type: ignore[union-attr]
    routed: list[bytes] = []
    original = broker.publish_control

    async def spy(data: bytes) -> None:
        routed.append(data)
        await original(data)

    broker.publish_control = spy  # type: ignore[method-assign]
    connect_cmd = json.dumps({"id": 1, "connect": {"token": token("emu")}})
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "POST", cf_server.url + "/connection/http_stream", content=connect_cmd) as r:
        lines = _lines(r)
        [reply] = await _take(lines, 1)
        session, node = reply["connect"]["session"], reply["connect"]["node"]
        assert "pong" not in reply["connect"]  # pings need no answer over emulation
        emu = cf_server.url + "/emulation"
        subscribe = json.dumps({"id": 2, "subscribe": {"channel": "chat:emu"}})
        answer = await client.post(emu, json={"session": session, "node": node,
                                              "data": subscribe})
        assert answer.status_code == 204
        [subscribed] = await _take(lines, 1)
        assert subscribed["id"] == 2 and subscribed["subscribe"]["recoverable"] is True
        other_node = await client.post(emu, json={"session": session, "node": "elsewhere",
                                                  "data": '{"id":3,"ping":{}}'})
        assert other_node.status_code == 204  # another node's session: not this one's
        publish = json.dumps({"id": 4, "publish": {"channel": "chat:emu", "data": 1}})
        await client.post(emu, json={"session": session, "node": node, "data": publish})
        got = await _take(lines, 2)
        assert got[0]["push"]["pub"]["data"] == 1 and got[1] == {"id": 4, "publish": {}}
        bad = await client.post(emu, json={"node": node})
        assert bad.status_code == 400
    # the node's own periodic control messages (cf "node") may be routed meanwhile
    emulation = [m for m in routed if b'"cf":"emulation"' in m]
    assert len(emulation) == 3
    assert all(b'"cf":"node"' in m for m in routed if m not in emulation)


async def test_bad_input_gets_documented_codes_and_spares_others() -> None:
    srv = make_cf_server(ws_max_message=4096, cf={"client_stale_close_delay": 0.5})
    try:
        async with connect(srv.cf_ws) as good_ws:
            good = RawClient(good_ws)
            await good.call("connect", {"token": token("good")})
            await good.call("subscribe", {"channel": "chat:bad"})
            cases: list[tuple[Any, int]] = [
                ('{"id":1,"subscribe":{"channel":"x"}}', 3501),  # before connect
                ("not json", 3501),
                ('{"id":"one","connect":{}}', 3501),
                ('{"subscribe":{"channel":"x"}}', 3501),  # no id
                (b"\x00binary", 3501),
                ("x" * 5000, 1009),  # over ws_max_message
                (None, 3502),  # nothing sent: stale
            ]
            for frame, code in cases:
                async with connect(srv.cf_ws) as ws:
                    if frame is not None:
                        await ws.send(frame)
                    assert await RawClient(ws).closed_with() == code, frame
            async with connect(srv.cf_ws) as ws:
                c = RawClient(ws)
                await c.call("connect", {"token": token("twice")})
                await ws.send(json.dumps({"id": 9, "connect": {}}))
                assert await c.closed_with() == 3501
            await asyncio.to_thread(srv.publish, "chat:bad", "still here")
            push = await good.push()
            while "pub" not in push:  # its own join
                push = await good.push()
            assert push["pub"]["data"] == "still here"
            assert (await good.call("presence_stats", {"channel": "chat:bad"}))[
                "presence_stats"]["num_clients"] == 1
    finally:
        srv.stop()


async def test_dev_preset_lets_sdks_in_without_tokens() -> None:
    config = load(None, {"LIVEHUB_DEV": "1"})
    assert config.dev and config.auth.client_insecure and config.centrifugo.emulation
    srv = CfServer(ServerSettings(api_key=API_KEY, clock=False, port=0), config.namespaces,
                   config.centrifugo, auth=config.auth)
    srv.start()
    client = Client(srv.cf_ws)
    try:
        events = SubEvents()
        sub = client.new_subscription("news", events=events)
        await client.connect()
        await sub.subscribe()
        await sub.publish("dev")
        assert (await get(events.pubs)).pub.data == "dev"
        assert (await sub.presence_stats()).num_clients == 1
        assert [p.data for p in (await sub.history(limit=5)).publications] == ["dev"]
    finally:
        await client.disconnect()
        srv.stop()
