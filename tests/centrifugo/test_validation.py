"""Centrifugo clients pass the same validation boundary as every publisher (issue 10, finding 4),
and a frame that breaks strict JSON closes with 3501, never with a traceback and a TCP abort
(finding 5)."""

from __future__ import annotations

import asyncio

import pytest

from .conftest import CfServer, make_cf_server, token
from .wsclient import RawClient, connect

DEEP = "[" * 100 + "]" * 100


@pytest.mark.parametrize("frame", ["[" * 1100, "[" * 984 + "]" * 984,
                                   '{"id": 1, "connect": {"x": NaN}}'])
async def test_bad_json_before_connect_closes_with_3501(cf_server: CfServer, frame: str) -> None:
    async with connect(cf_server.cf_ws) as ws:
        await ws.send(frame)
        assert await RawClient(ws).closed_with() == 3501


@pytest.mark.parametrize("data", ["NaN", "[1, Infinity]", "-1e999", DEEP, '"\\ud800"'])
async def test_poison_publish_closes_with_3501_and_is_stored_nowhere(cf_server: CfServer,
                                                                     data: str) -> None:
    async with connect(cf_server.cf_ws) as sub_ws, connect(cf_server.cf_ws) as pub_ws:
        sub, pub = RawClient(sub_ws), RawClient(pub_ws)
        await sub.call("connect", {"token": token("reader")})
        await sub.call("subscribe", {"channel": "chat:poison"})
        await pub.call("connect", {"token": token("writer")})
        await pub_ws.send('{"id": 7, "publish": {"channel": "chat:poison", "data": ' + data
                          + "}}")
        assert await pub.closed_with() == 3501
        result = await asyncio.to_thread(cf_server.publish, "chat:poison", "valid")
        assert result["offset"] == 1
        push = await sub.push()
        while "pub" not in push:  # join/leave pushes of the namespace
            push = await sub.push()
    assert push["pub"]["data"] == "valid"


async def test_oversized_publish_is_answered_106() -> None:
    srv = make_cf_server(ws_max_message=4 * 1024 * 1024)
    try:
        async with connect(srv.cf_ws, max_size=None) as ws:
            c = RawClient(ws)
            await c.call("connect", {"token": token("big")})
            reply = await c.call("publish", {"channel": "chat:big",
                                             "data": {"x": "y" * (1024 * 1024)}})
            assert reply["error"]["code"] == 106
            assert "over the limit of 1048576 bytes" in reply["error"]["message"]
            ok = await c.call("publish", {"channel": "chat:big", "data": {"x": 1}})
            assert "error" not in ok
            history = await asyncio.to_thread(srv.api, "history", channel="chat:big", limit=-1)
    finally:
        srv.stop()
    assert [(p["data"], p["offset"]) for p in history["result"]["publications"]] == [
        ({"x": 1}, 1)]


@pytest.mark.parametrize("claims", [{"sub": "\ud800"}, {"sub": "u", "info": {"x": float("nan")}},
                                    {"sub": "u", "info": {"n": 1e308 * 10}}])
async def test_tokens_with_claims_no_wire_can_carry_are_invalid(cf_server: CfServer,
                                                                claims: dict[str, object]) -> None:
    """Signed by the backend, still refused: a user id with a lone surrogate or NaN in info
    would make every push to that client (and the join/leave pushes to others) fail."""
    import jwt

    from .conftest import SECRET

    signed = jwt.encode(claims, SECRET, algorithm="HS256")
    async with connect(cf_server.cf_ws) as ws:
        await ws.send('{"id": 1, "connect": {"token": "' + signed + '"}}')
        assert await RawClient(ws).closed_with() == 3500
