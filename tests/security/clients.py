"""One subscription attempt on each transport, with real clients, reduced to what the client
was told: ``ok`` (it receives the channel), ``denied`` (403 / 3507 / error 103), ``invalid``
(401 with 101 / 3500) or ``expired`` (401 with 109 / 3005 / error 109).

Plain endpoints resume from the position just before a probe publication, so an accepted
subscription proves itself by delivering the probe (no race with the subscribe).  Centrifugo
clients subscribe, then the probe is published.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import httpx
import websockets

from livehub.wire.cursor import StreamPosition, encode_cursor

from ..centrifugo.conftest import CfServer
from ..sseclient import events

PLAIN = ("events", "stream", "poll", "ws")
CENTRIFUGO = ("cf_websocket", "cf_sse", "cf_http_stream")
UNI = ("uni_websocket", "uni_sse", "uni_http_stream")
TRANSPORTS = PLAIN + CENTRIFUGO + UNI
TIMEOUT = 5.0

HTTP_ANSWERS = {403: "denied"}
CODES = {3507: "denied", 3500: "invalid", 3005: "expired", 103: "denied", 101: "invalid",
         109: "expired"}


def _http_outcome(r: httpx.Response, body: bytes) -> str:
    if r.status_code == 403:
        return "denied"
    if r.status_code == 401:
        code = json.loads(body)["error"]["code"]
        return {109: "expired", 101: "invalid"}.get(code, f"401/{code}")
    return f"http {r.status_code}: {body[:200]!r}"


def probe_cursor(srv: CfServer, channel: str, marker: str) -> str:
    """Publish ``marker`` to ``channel``; the cursor just before it."""
    result = srv.publish(channel, marker)
    return encode_cursor({channel: StreamPosition(result["epoch"], result["offset"] - 1)})


def _query(channel: str, token: str | None, sub_token: str | None,
           extra: dict[str, str]) -> list[tuple[str, str]]:
    params = [("channel", channel), *extra.items()]
    if token is not None:
        params.append(("token", token))
    if sub_token is not None:
        params.append(("sub_token", sub_token))
    return params


async def plain(srv: CfServer, transport: str, channel: str, *, token: str | None = None,
                sub_token: str | None = None, headers: dict[str, str] | None = None,
                marker: str = "probe") -> str:
    cursor = await asyncio.to_thread(probe_cursor, srv, channel, marker)
    headers = headers or {}
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        if transport == "poll":
            r = await client.get(srv.url + "/poll", headers=headers,
                                 params=_query(channel, token, sub_token, {"cursor": cursor}))
            if r.status_code != 200:
                return _http_outcome(r, r.content)
            return "ok" if [m["data"] for m in r.json()["messages"]] == [marker] else r.text
        if transport == "ws":
            query = urllib.parse.urlencode(_query(channel, token, sub_token, {"since": cursor}))
            async with websockets.connect(f"{srv.ws_url}/ws?{query}",
                                          additional_headers=headers) as ws:
                try:
                    message = await asyncio.wait_for(ws.recv(), TIMEOUT)
                except websockets.ConnectionClosed as exc:
                    assert exc.rcvd is not None
                    return CODES.get(exc.rcvd.code, f"close {exc.rcvd.code}")
                return "ok" if message == marker else f"got {message!r}"
        path = "/events" if transport == "events" else "/stream"
        async with client.stream("GET", srv.url + path, headers=headers,
                                 params=_query(channel, token, sub_token,
                                               {"cursor": cursor})) as r:
            if r.status_code != 200:
                return _http_outcome(r, await r.aread())
            async with asyncio.timeout(TIMEOUT):
                if transport == "events":
                    async for event in events(r):
                        return "ok" if event.data == marker else f"got {event}"
                async for line in r.aiter_lines():
                    item = json.loads(line)
                    if item["type"] == "pub":
                        return "ok" if item["data"] == marker else f"got {item}"
    return "no answer"


# -- Centrifugo -------------------------------------------------------------------------------


async def _frames(r: httpx.Response, sse: bool) -> AsyncIterator[dict[str, Any]]:
    async for raw in r.aiter_lines():
        line = raw
        if sse:
            if not line.startswith("data:"):
                continue
            line = line.removeprefix("data:").strip()
        for part in line.split("\n"):
            if part.strip():
                yield json.loads(part)


def _disconnect_code(frame: dict[str, Any]) -> int | None:
    push = frame.get("push", frame)
    disconnect = push.get("disconnect") if isinstance(push, dict) else None
    return None if disconnect is None else int(disconnect["code"])


async def _expect_pub(srv: CfServer, channel: str, frames: AsyncIterator[dict[str, Any]],
                      marker: str) -> str:
    await asyncio.to_thread(srv.publish, channel, marker)
    async with asyncio.timeout(TIMEOUT):
        async for frame in frames:
            push = frame.get("push", frame)
            if "pub" in push:
                return "ok" if push["pub"]["data"] == marker else f"got {frame}"
            code = _disconnect_code(frame)
            if code is not None:
                return CODES.get(code, f"disconnect {code}")
    return "no publication"


async def centrifugo(srv: CfServer, transport: str, channel: str, *, token: str | None = None,
                     sub_token: str | None = None, marker: str = "probe") -> str:
    """A bidirectional client: connect, then subscribe (with ``sub_token``)."""
    connect: dict[str, Any] = {} if token is None else {"token": token}
    subscribe: dict[str, Any] = {"channel": channel}
    if sub_token is not None:
        subscribe["token"] = sub_token
    if transport == "cf_websocket":
        return await _cf_websocket(srv, channel, connect, subscribe, marker)
    sse = transport == "cf_sse"
    first = json.dumps({"id": 1, "connect": connect})
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        request = (client.stream("GET", srv.url + "/connection/sse",
                                 params={"cf_connect": first}) if sse else
                   client.stream("POST", srv.url + "/connection/http_stream", content=first))
        async with request as r:
            frames = _frames(r, sse)
            async with asyncio.timeout(TIMEOUT):
                reply = await anext(frames)
            outcome = _reply_outcome(reply)
            if outcome is not None:
                return outcome
            if channel in reply["connect"].get("subs", {}):
                return await _expect_pub(srv, channel, frames, marker)
            await client.post(srv.url + "/emulation", json={
                "session": reply["connect"]["session"], "node": reply["connect"]["node"],
                "data": json.dumps({"id": 2, "subscribe": subscribe})})
            async with asyncio.timeout(TIMEOUT):
                reply = await anext(frames)
            outcome = _reply_outcome(reply)
            if outcome is not None:
                return outcome
            return await _expect_pub(srv, channel, frames, marker)


def _reply_outcome(reply: dict[str, Any]) -> str | None:
    """The refusal a reply or disconnect push says, or None for a successful reply."""
    code = _disconnect_code(reply)
    if code is not None:
        return CODES.get(code, f"disconnect {code}")
    if "error" in reply:
        code = int(reply["error"]["code"])
        return CODES.get(code, f"error {code}")
    return None


async def _cf_websocket(srv: CfServer, channel: str, connect: dict[str, Any],
                        subscribe: dict[str, Any], marker: str) -> str:
    async with websockets.connect(srv.ws_url + "/connection/websocket") as ws:

        async def frames() -> AsyncIterator[dict[str, Any]]:
            while True:
                text = await ws.recv()
                for line in str(text).split("\n"):
                    if line.strip():
                        yield json.loads(line)

        stream = frames()
        try:
            await ws.send(json.dumps({"id": 1, "connect": connect}))
            async with asyncio.timeout(TIMEOUT):
                reply = await anext(stream)
            outcome = _reply_outcome(reply)
            if outcome is not None:
                return outcome
            if channel in reply["connect"].get("subs", {}):
                return await _expect_pub(srv, channel, stream, marker)
            await ws.send(json.dumps({"id": 2, "subscribe": subscribe}))
            async with asyncio.timeout(TIMEOUT):
                reply = await anext(stream)
            outcome = _reply_outcome(reply)
            if outcome is not None:
                return outcome
            return await _expect_pub(srv, channel, stream, marker)
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is not None
            return CODES.get(exc.rcvd.code, f"close {exc.rcvd.code}")


async def uni(srv: CfServer, transport: str, channel: str, *, token: str | None = None,
              marker: str = "probe") -> str:
    """A unidirectional client asking for ``channel`` in its connect request."""
    request: dict[str, Any] = {"subs": {channel: {}}}
    if token is not None:
        request["token"] = token
    if transport == "uni_websocket":
        try:
            async with websockets.connect(srv.ws_url + "/connection/uni_websocket") as ws:
                await ws.send(json.dumps(request))

                async def frames() -> AsyncIterator[dict[str, Any]]:
                    while True:
                        yield json.loads(await ws.recv())

                stream = frames()
                async with asyncio.timeout(TIMEOUT):
                    first = await anext(stream)
                outcome = _reply_outcome(first)
                if outcome is not None:
                    return outcome
                return await _expect_pub(srv, channel, stream, marker)
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is not None
            return CODES.get(exc.rcvd.code, f"close {exc.rcvd.code}")
    sse = transport == "uni_sse"
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        stream_request = (client.stream("GET", srv.url + "/connection/uni_sse",
                                        params={"cf_connect": json.dumps(request)}) if sse
                          else client.stream("POST", srv.url + "/connection/uni_http_stream",
                                             json=request))
        async with stream_request as r:
            frames = _frames(r, sse)
            async with asyncio.timeout(TIMEOUT):
                first = await anext(frames)
            outcome = _reply_outcome(first)
            if outcome is not None:
                return outcome
            if channel not in first.get("connect", {}).get("subs", {}):
                return f"not subscribed: {first}"
            return await _expect_pub(srv, channel, frames, marker)


async def attempt(srv: CfServer, transport: str, channel: str, *, token: str | None = None,
                  sub_token: str | None = None, marker: str = "probe") -> str:
    """Subscribe to ``channel`` on ``transport``; what the client was told."""
    if transport in PLAIN:
        return await plain(srv, transport, channel, token=token, sub_token=sub_token,
                           marker=marker)
    if transport in CENTRIFUGO:
        return await centrifugo(srv, transport, channel, token=token, sub_token=sub_token,
                                marker=marker)
    assert sub_token is None, "unidirectional clients have no subscription tokens"
    return await uni(srv, transport, channel, token=token, marker=marker)
