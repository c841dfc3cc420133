"""Publish, presence and history under the same rules: raw ``/ws`` messages and the Centrifugo
``publish``/``presence``/``history`` commands ask the same permission module; a multi-channel
stream is refused whole when one of its channels is refused."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator

import httpx
import pytest
import websockets

from livehub.core.channels import ChannelOptions, public_options

from ..centrifugo.conftest import CfServer
from ..centrifugo.wsclient import RawClient
from .conftest import make_security_server, tok

NAMESPACES = {
    "open": public_options(client_publish=True, presence=True, allow_presence_for_client=True,
                           allow_history_for_client=True),
    "subs": public_options(allow_publish_for_subscriber=True, presence=True,
                           allow_presence_for_subscriber=True,
                           allow_history_for_subscriber=True),
    "ro": public_options(presence=True),
    "user": ChannelOptions(allow_user_limited_channels=True, client_publish=True,
                           presence=True, allow_presence_for_client=True,
                           allow_history_for_client=True),
}


@pytest.fixture(scope="module")
def ops_server() -> Iterator[CfServer]:
    srv = make_security_server(namespaces=NAMESPACES)
    yield srv
    srv.stop()


async def _ws_publish(srv: CfServer, channel: str) -> int | str:
    """Send one message on ``/ws``: the close code, or ``"ok"`` when it comes back."""
    query = urllib.parse.urlencode({"channel": channel, "token": tok("42")})
    async with websockets.connect(f"{srv.ws_url}/ws?{query}") as ws:
        await ws.send("hello")
        try:
            return "ok" if await ws.recv() == "hello" else "?"
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is not None
            return exc.rcvd.code


@pytest.mark.parametrize(("channel", "expected"), [
    ("open:a", "ok"), ("subs:a", "ok"), ("ro:a", 3507), ("user:n#42", "ok")])
async def test_raw_websocket_messages(ops_server: CfServer, channel: str,
                                      expected: int | str) -> None:
    assert await _ws_publish(ops_server, channel) == expected


async def test_centrifugo_commands(ops_server: CfServer) -> None:
    async with websockets.connect(ops_server.cf_ws) as ws:
        c = RawClient(ws)
        await c.call("connect", {"token": tok("42")})

        async def code(method: str, channel: str) -> int | str:
            params: dict[str, object] = {"channel": channel}
            if method == "publish":
                params["data"] = "x"
            reply = await c.call(method, params)
            return int(reply["error"]["code"]) if "error" in reply else "ok"

        for method in ("publish", "presence", "history"):
            assert await code(method, "open:a") == "ok", method
            assert await code(method, "subs:a") == 103, method   # subscribers only
            assert await code(method, "user:n#43") == 103, method  # another user's channel
        assert await code("publish", "user:n#42") == "ok"
        assert await code("publish", "ro:a") == 103
        assert await code("history", "ro:a") == 103
        assert "subscribe" in await c.call("subscribe", {"channel": "subs:a"})
        for method in ("publish", "presence", "history"):
            assert await code(method, "subs:a") == "ok", method


@pytest.mark.parametrize("path", ["/events", "/stream", "/poll"])
async def test_one_refused_channel_refuses_the_request(ops_server: CfServer, path: str) -> None:
    """The issue's example: ``/events?channel=user:42&channel=$secret`` received both."""
    async with httpx.AsyncClient(timeout=5) as client:
        r = await client.get(ops_server.url + path,
                             params=[("channel", "open:a"), ("channel", "$secret")])
    assert r.status_code == 403
    assert json.loads(r.content)["error"]["code"] == 103
