"""Publish API, long-polling and HTTP streaming with httpx."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest

from ..conftest import API_KEY, LiveServer

H = {"X-API-Key": API_KEY}


def test_publish_reply_and_auth(server: LiveServer) -> None:
    r = httpx.post(server.url + "/api/publish", json={"channel": "a", "data": 1}, headers=H)
    assert r.status_code == 200
    result = r.json()["result"]
    assert result["offset"] == 1 and result["epoch"] and result["cursor"]
    r = httpx.post(server.url + "/api/publish", json={"channel": "a", "data": 1},
                   headers={"Authorization": f"apikey {API_KEY}"})
    assert r.json()["result"]["offset"] == 2
    r = httpx.post(server.url + "/api/publish", json={"channel": "a", "data": 1})
    assert r.status_code == 401 and r.json()["error"]["code"] == 101
    r = httpx.post(server.url + "/api/publish", json={"channel": "a", "data": 1},
                   headers={"X-API-Key": "wrong"})
    assert r.status_code == 401 and "wrong" in r.json()["error"]["message"]


@pytest.mark.parametrize(("body", "fragment"), [
    (b"{", "not valid JSON"),
    (b"[1]", "JSON object"),
    (b"\xff\xfe", "JSON"),
])
def test_publish_malformed_body_is_400(server: LiveServer, body: bytes, fragment: str) -> None:
    r = httpx.post(server.url + "/api/publish", content=body, headers=H)
    assert r.status_code == 400
    assert fragment in r.json()["error"]["message"]


@pytest.mark.parametrize(("body", "code", "fragment"), [
    (b'{"data": 1}', 107, "channel"),
    (b'{"channel": "a"}', 107, "data"),
    (b'{"channel": "a b", "data": 1}', 107, "invalid channel"),
    (b'{"channel": "zz:a", "data": 1}', 102, "unknown namespace"),
    (b'{"channel": "a", "data": 1, "event": "x\\ny"}', 107, "event"),
    (b'{"channel": "a", "b64data": "***"}', 107, "base64"),
])
def test_publish_bad_params_answer_a_centrifugo_error(server: LiveServer, body: bytes,
                                                      code: int, fragment: str) -> None:
    """Like Centrifugo's API (and what the ``cent`` client expects): a well-formed request
    whose parameters are refused is answered 200 with an error code and message."""
    r = httpx.post(server.url + "/api/publish", content=body, headers=H)
    assert r.status_code == 200
    error = r.json()["error"]
    assert error["code"] == code and fragment in error["message"]


def test_insecure_api_needs_no_key(make_server) -> None:  # type: ignore[no-untyped-def]
    srv = make_server(api_key=None, insecure_api=True)
    r = httpx.post(srv.url + "/api/publish", json={"channel": "a", "data": "x"})
    assert r.status_code == 200


def test_poll_cycle(server: LiveServer) -> None:
    r = httpx.get(server.url + "/poll", params={"channel": "news"})
    cursor = r.json()["cursor"]
    assert r.json()["messages"] == []
    server.publish("news", "one")
    server.publish("news", {"two": 2}, event="e")
    r = httpx.get(server.url + "/poll", params={"channel": "news", "cursor": cursor})
    body = r.json()
    assert [m["data"] for m in body["messages"]] == ["one", {"two": 2}]
    assert body["messages"][1]["event"] == "e"
    assert body["cursor"] == body["messages"][-1]["cursor"]
    r = httpx.get(server.url + "/poll",
                  params={"channel": "news", "cursor": body["cursor"], "timeout": "0.1"})
    assert r.json()["messages"] == [] and r.json()["cursor"] == body["cursor"]


async def test_poll_waits_for_the_next_publication(server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        first = (await client.get(server.url + "/poll", params={"channel": "w"})).json()
        waiting = asyncio.create_task(client.get(
            server.url + "/poll", params={"channel": "w", "cursor": first["cursor"]}))
        while server.call_soon(lambda: server.app.ctx.hub.subscriber_count("w")) == 0:  # type: ignore[union-attr]
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.publish, "w", "wake")
        body = (await waiting).json()
    assert [m["data"] for m in body["messages"]] == ["wake"]


def test_poll_reset_and_bad_input(server: LiveServer) -> None:
    first = server.publish("small:p", "x")
    for i in range(5):
        server.publish("small:p", i)
    r = httpx.get(server.url + "/poll", params={"channel": "small:p", "cursor": first["cursor"]})
    assert r.json()["reset"] == ["small:p"]
    for params in ({"channel": "small:p", "cursor": "junk"},
                   {"channel": "small:p", "timeout": "abc"},
                   {"channel": "small:p", "timeout": "1000"}, {}):
        r = httpx.get(server.url + "/poll", params=params)
        assert r.status_code == 400, params


async def test_http_streaming_lines(server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", server.url + "/stream", params={"channel": "s"}) as r:
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.headers["content-type"] == "application/x-ndjson"
        lines = r.aiter_lines()
        start = json.loads(await anext(lines))
        assert start["type"] == "cursor"
        await asyncio.to_thread(server.publish, "s", "hello")
        r2 = httpx.post(server.url + "/api/publish", headers=H, json={
            "channel": "s", "b64data": base64.b64encode(b"\x00\x01").decode()})
        assert r2.status_code == 200
        one = json.loads(await anext(lines))
        two = json.loads(await anext(lines))
    assert one["type"] == "pub" and one["data"] == "hello" and one["channel"] == "s"
    assert base64.b64decode(two["data_b64"]) == b"\x00\x01"


async def test_http_streaming_resume(server: LiveServer) -> None:
    first = await asyncio.to_thread(server.publish, "s2", "a")
    await asyncio.to_thread(server.publish, "s2", "b")
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", server.url + "/stream",
            params={"channel": "s2", "cursor": first["cursor"]}) as r:
        lines = r.aiter_lines()
        got = json.loads(await anext(lines))
    assert got["data"] == "b"
