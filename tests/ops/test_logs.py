"""Logs of a real ``livehub serve``: one line per connection end, per HTTP answer and refusal,
``--log-format json``, sampling and ``--no-access-log``; secrets never written."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import httpx
import jwt
import websockets

from livehub.ops.logs import redact

from ..serve_process import API_KEY, ServeFactory, ServeProcess, serve  # noqa: F401 - fixture
from ..sseclient import take

HMAC_SECRET = "hmac-secret-never-logged-0123456789"
METRICS_TOKEN = "metrics-token-never-logged"
COOKIE = "cookie-value-never-logged"


def token(user: str) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time()) + 600}, HMAC_SECRET,
                      algorithm="HS256")


def stop(srv: ServeProcess) -> str:
    """SIGTERM the server (by PID), wait for its exit (0), return its whole log."""
    assert srv.proc is not None
    os.kill(srv.proc.pid, signal.SIGTERM)
    assert srv.proc.wait(30) == 0
    return srv.log()


async def exercise(srv: ServeProcess, alice: str) -> None:
    """A stream with a token in its URL, a WebSocket with a cookie, API calls with the key,
    refusals (a wrong key in the query, a bad token)."""
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", srv.url + "/events",
                                 params={"channel": "news", "token": alice}) as r:
            await client.post(srv.url + "/api/publish", headers={"X-API-Key": API_KEY},
                              json={"channel": "news", "data": "hello"})
            assert [e.data for e in await take(r, 1)] == ["hello"]
        async with websockets.connect(srv.ws_url + "/ws?channel=news",
                                      additional_headers={"Cookie": f"livehub_token={alice}; "
                                                                    f"other={COOKIE}"}) as ws:
            await client.post(srv.url + "/api/publish", headers={"X-API-Key": API_KEY},
                              json={"channel": "news", "data": "again"})
            assert await ws.recv() == "again"
        wrong = await client.post(srv.url + "/api/publish?api_key=" + API_KEY + "x",
                                  json={"channel": "news", "data": "x"})
        assert wrong.status_code == 401
        bad = await client.get(srv.url + "/events", params={"channel": "news",
                                                            "token": alice + "x"})
        assert bad.status_code == 401
        metrics = await client.get(srv.url + "/metrics",
                                   headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert metrics.status_code == 200


def secrets_absent(log: str, alice: str) -> None:
    for secret in (alice, alice.split(".")[2], HMAC_SECRET, API_KEY, METRICS_TOKEN, COOKIE):
        assert secret not in log, f"a secret was logged: {secret[:12]}..."


async def test_json_lines_for_connections_requests_and_refusals(
        serve: ServeFactory) -> None:  # noqa: F811
    srv = serve("--log-format", "json", env={"LIVEHUB_TOKEN_HMAC_SECRET": HMAC_SECRET,
                                             "LIVEHUB_METRICS_TOKEN": METRICS_TOKEN})
    alice = token("alice")
    await exercise(srv, alice)
    log = stop(srv)
    secrets_absent(log, alice)
    records = [json.loads(line) for line in log.splitlines()]  # every line is JSON
    assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    ends = [r for r in records if r.get("event") == "connection"]
    sse = next(r for r in ends if r["transport"] == "sse")
    assert sse["protocol"] == "plain" and sse["channels"] == ["news"]
    assert sse["user"] == "alice" and sse["peer"].startswith("127.0.0.1:")
    assert sse["messages"] >= 2 and sse["bytes"] > 0 and sse["duration"] >= 0
    assert sse["code"] == 0 and sse["reason"] == "connection lost"  # the client went away
    ws = next(r for r in ends if r["transport"] == "websocket")
    assert ws["user"] == "alice" and ws["code"] == 1000 and ws["channels"] == ["news"]
    requests = [r for r in records if r.get("event") == "request"]
    publish = [r for r in requests if r["path"] == "/api/publish" and r["status"] == 200]
    assert len(publish) == 2 and all(r["method"] == "POST" for r in publish)
    refused = {(r["path"], r["status"]): r["reason"] for r in requests if r["status"] >= 400}
    assert refused[("/api/publish", 401)] == "wrong API key"
    assert "invalid token" in refused[("/events", 401)]
    assert not any(r["path"] == "/metrics" for r in requests)  # scrapes are not logged


async def test_text_lines_sampling_and_no_access_log(serve: ServeFactory) -> None:  # noqa: F811
    env = {"LIVEHUB_TOKEN_HMAC_SECRET": HMAC_SECRET, "LIVEHUB_METRICS_TOKEN": METRICS_TOKEN}
    text, sampled, off = (serve(*args, env=env) for args in (
        (), ("--access-log-sample", "0"), ("--no-access-log",)))
    alice = token("alice")
    await asyncio.gather(*(exercise(srv, alice) for srv in (text, sampled, off)))
    logs = [stop(srv) for srv in (text, sampled, off)]
    for log in logs:
        secrets_absent(log, alice)
    full, some, none = ([line for line in log.splitlines() if "livehub.access" in line]
                        for log in logs)
    assert any("connection plain/sse ended: 0 connection lost; channels=news user=alice" in line
               for line in full)
    assert any("POST /api/publish 200" in line for line in full)
    assert any("POST /api/publish refused 401: wrong API key" in line for line in full)
    # sampled to 0: refusals only
    assert some and all("refused" in line for line in some)
    assert none == []


def test_redact_scrubs_credentials_wherever_they_appear() -> None:
    secret = "s3cr3t-value"
    for text in (f"GET /events?channel=a&token={secret}&x=1", f"api_key={secret}",
                 f"Authorization: Bearer {secret}", f"cookie: livehub_token={secret}",
                 f'{{"token": "{secret}"}}', f"redis://user:{secret}@redis:6379/0",
                 f"password={secret}"):
        assert secret not in redact(text), text
    assert redact("the configured one: xyzzy-key", ["xyzzy-key"]) == "the configured one: ***"
    assert redact("invalid token: Signature has expired") == \
        "invalid token: Signature has expired"
