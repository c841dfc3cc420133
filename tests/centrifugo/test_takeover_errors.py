"""A broker error that is not livehub's, after a Centrifugo connection took its socket over:
the client gets a documented disconnect (3004) and the server holds nothing for it; a failing
command is answered with error 100 and its connection stays usable (issue 8, item 3)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from livehub.core.node import Node

from ..server.test_takeover_errors import BrokenBroker
from .conftest import CfServer, make_cf_server, token
from .wsclient import RawClient, connect


class BrokenCfServer(CfServer):
    def create_node(self) -> Node:
        return Node(BrokenBroker(), self.namespaces, release_delay=0.05, limits=self.limits)


@pytest.fixture
def broken() -> Iterator[CfServer]:
    srv = make_cf_server(server_class=BrokenCfServer)
    yield srv
    srv.stop()


async def _no_connections(srv: CfServer) -> None:
    deadline = time.monotonic() + 10
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if (await client.get(srv.url + "/health")).json()["connections"] == 0:
                return
            await asyncio.sleep(0.02)
    pytest.fail("the server still holds a connection")


@pytest.mark.parametrize("kind", ["uni_sse", "uni_http_stream"])
async def test_uni_stream_gets_disconnect_3004_and_is_gone(broken: CfServer, kind: str) -> None:
    request = json.dumps({"token": token("u", channels=["broken"])})
    method, extra = ("GET", {"params": {"cf_connect": request}}) if kind == "uni_sse" else (
        "POST", {"content": request})
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            method, f"{broken.url}/connection/{kind}", **extra) as r:
        body = b"".join([chunk async for chunk in r.aiter_bytes()])  # ends: server closed
    last = json.loads(body.decode().strip().splitlines()[-1].removeprefix("data: "))
    assert last == {"disconnect": {"code": 3004, "reason": "internal server error",
                                   "reconnect": True}}
    await _no_connections(broken)


async def test_uni_websocket_is_closed_with_3004_and_is_gone(broken: CfServer) -> None:
    async with connect(broken.ws_url + "/connection/uni_websocket") as ws:
        await ws.send(json.dumps({"token": token("u", channels=["broken"])}))
        assert await RawClient(ws).closed_with() == 3004
    await _no_connections(broken)


async def test_failing_subscribe_command_gets_error_100(broken: CfServer) -> None:
    async with connect(broken.cf_ws) as ws:
        client = RawClient(ws)
        await client.call("connect", {"token": token("u")})
        reply = await client.call("subscribe", {"channel": "broken"})
        assert reply["error"] == {"code": 100, "message": "internal server error",
                                  "temporary": True}
        assert "subscribe" in await client.call("subscribe", {"channel": "fine"})
