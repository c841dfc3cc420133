"""Per-connection budgets of Centrifugo clients: publications per second (error 111, the
connection stays) and channels per client (error 106 for a subscribe, disconnect 3505 when a
connect asks for more), on every transport they apply to."""

from __future__ import annotations

import json

import httpx
import pytest

from livehub.core.limits import Limits

from .conftest import CfServer, make_cf_server, token
from .wsclient import RawClient, connect


@pytest.fixture
def limited() -> CfServer:
    srv = make_cf_server(limits=Limits(client_publish_rate=0.001, client_publish_burst=5),
                         cf={"client_channel_limit": 3})
    yield srv  # type: ignore[misc]
    srv.stop()


async def test_publications_beyond_the_rate_get_error_111(limited: CfServer) -> None:
    async with connect(limited.cf_ws) as ws:
        c = RawClient(ws)
        await c.call("connect", {"token": token("fast")})
        frame = "\n".join(json.dumps({"id": 10 + i, "publish": {"channel": "chat:r",
                                                                 "data": {"i": i}}})
                          for i in range(8))
        await ws.send(frame)
        replies = {}
        while len(replies) < 8:
            for reply in [await c.recv(), *c.pushes]:
                if reply.get("id"):
                    replies[reply["id"]] = reply
            c.pushes.clear()
        errors = [replies[10 + i].get("error") for i in range(8)]
        assert errors[:5] == [None] * 5
        assert all(e == {"code": 111, "message": "too many requests", "temporary": True}
                   for e in errors[5:])
        # the connection stays, other commands work
        assert "error" not in await c.call("subscribe", {"channel": "chat:r"})
    history = limited.api("history", channel="chat:r", limit=-1)
    assert [p["data"]["i"] for p in history["result"]["publications"]] == [0, 1, 2, 3, 4]


async def test_subscriptions_beyond_the_channel_limit_get_error_106(limited: CfServer) -> None:
    async with connect(limited.cf_ws) as ws:
        c = RawClient(ws)
        await c.call("connect", {"token": token("many")})
        for i in range(3):
            assert "error" not in await c.call("subscribe", {"channel": f"chat:s{i}"})
        reply = await c.call("subscribe", {"channel": "chat:s3"})
        assert reply["error"] == {"code": 106, "message": "too many channels"}


@pytest.mark.parametrize("kind", ["uni_sse", "uni_http_stream"])
async def test_a_connect_asking_for_too_many_channels_is_disconnected_3505(
        limited: CfServer, kind: str) -> None:
    request = {"token": token("uni", channels=["chat:a", "chat:b"]),
               "subs": {"chat:c": {}, "chat:d": {}}}
    url = f"{limited.url}/connection/{kind}"
    async with httpx.AsyncClient(timeout=5) as client:
        if kind == "uni_sse":
            r = await client.get(url, params={"cf_connect": json.dumps(request)})
        else:
            r = await client.post(url, json=request)
    pushes = [json.loads(line.removeprefix("data: ")) for line in r.text.splitlines()
              if line.strip() and not line.startswith(("event:", ":"))]
    assert pushes[-1]["disconnect"]["code"] == 3505
    assert "4 subscriptions asked, at most 3" in pushes[-1]["disconnect"]["reason"]


async def test_bidirectional_connect_with_too_many_subs_is_disconnected_3505(
        limited: CfServer) -> None:
    async with connect(limited.cf_ws) as ws:
        c = RawClient(ws)
        subs = {f"chat:x{i}": {} for i in range(4)}
        await ws.send(json.dumps({"id": 1, "connect": {"token": token("bi"), "subs": subs}}))
        assert await c.closed_with() == 3505


async def test_publications_beyond_the_rate_over_emulation_get_error_111(
        limited: CfServer) -> None:
    """The same budget on the bidirectional emulation (HTTP-stream + POST /emulation)."""
    connect_cmd = json.dumps({"id": 1, "connect": {"token": token("emu")}})
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "POST", limited.url + "/connection/http_stream", content=connect_cmd) as r:
        lines = r.aiter_lines()
        reply = json.loads(await anext(lines))
        session, node = reply["connect"]["session"], reply["connect"]["node"]
        commands = [{"id": 10 + i, "publish": {"channel": "chat:emu", "data": i}}
                    for i in range(7)]
        answer = await client.post(limited.url + "/emulation",
                                   json={"session": session, "node": node, "data": commands})
        assert answer.status_code == 204
        replies: dict[int, dict[str, object]] = {}
        async for line in lines:
            item = json.loads(line)
            if item.get("id"):
                replies[item["id"]] = item
            if len(replies) == 7:
                break
    assert [replies[10 + i].get("error") for i in range(5)] == [None] * 5
    assert [replies[15]["error"], replies[16]["error"]] == [
        {"code": 111, "message": "too many requests", "temporary": True}] * 2
