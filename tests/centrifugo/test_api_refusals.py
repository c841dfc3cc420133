"""The server API refuses malformed parameters with a Centrifugo error (or 400 for a body that
is not strict JSON), never 500 with a traceback, and never answers ``{}`` while doing nothing
(issue 10, finding 5).  Batch and broadcast sizes are bounded."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ..conftest import API_KEY
from .conftest import CfServer

H = {"X-API-Key": API_KEY, "content-type": "application/json"}


def post(srv: CfServer, method: str, body: str | dict[str, Any]) -> httpx.Response:
    if isinstance(body, dict):
        return httpx.post(f"{srv.url}/api/{method}", json=body, headers=H)
    return httpx.post(f"{srv.url}/api/{method}", content=body, headers=H)


@pytest.mark.parametrize(("method", "body", "fragment"), [
    ("refresh", '{"user": "u", "expire_at": ' + "1" + "0" * 400 + "}", "64-bit integer"),
    ("refresh", {"user": "u", "expire_at": -5}, "at least 0"),
    ("history", {"channel": "chat:h", "limit": -1, "since": {"offset": -4, "epoch": "x"}},
     "offset must be at least 0"),
    ("history", {"channel": "chat:h", "limit": 10**30}, "64-bit integer"),
    ("disconnect", {"user": "u", "whitelist": [1, {}]}, "whitelist"),
    ("disconnect", {"user": "u", "whitelist": "abc"}, "whitelist"),
    ("subscribe", {"user": "u", "channel": "chat:s", "recover_since": {"offset": -1}},
     "offset"),
])
def test_malformed_parameters_get_error_107(shared_cf_server: CfServer, method: str,
                                            body: str | dict[str, Any], fragment: str) -> None:
    r = post(shared_cf_server, method, body)
    assert r.status_code == 200, r.text
    error = r.json()["error"]
    assert error["code"] == 107 and fragment in error["message"]


@pytest.mark.parametrize(("path", "body"), [
    ("/api", "[" * 1100), ("/api/publish", "[" * 1100), ("/emulation", "[" * 1100),
    ("/api/publish", '{"channel": "chat:x", "data": "\\ud800"}'),
    ("/emulation", '{"session": "s", "data": NaN}'),
])
def test_bodies_that_are_not_strict_json_are_400(shared_cf_server: CfServer, path: str,
                                                 body: str) -> None:
    r = httpx.post(shared_cf_server.url + path, content=body, headers=H)
    assert r.status_code == 400
    assert "Traceback" not in r.text and r.json()["error"]["code"] == 107


def test_broadcast_and_batch_sizes_are_bounded(shared_cf_server: CfServer) -> None:
    srv = shared_cf_server
    many = [f"chat:b{i}" for i in range(1001)]
    r = post(srv, "broadcast", {"channels": many, "data": 1})
    error = r.json()["error"]
    assert error["code"] == 106 and "at most 1000 channels per broadcast" in error["message"]
    ok = post(srv, "broadcast", {"channels": many[:1000], "data": 1}).json()["result"]
    assert len(ok["responses"]) == 1000 and ok["responses"][0]["result"]["offset"] == 1
    commands = [{"info": {}}] * 1001
    error = post(srv, "batch", {"commands": commands}).json()["error"]
    assert error["code"] == 106 and "at most 1000 commands per batch" in error["message"]


def test_broadcast_refuses_a_bad_publication_once_and_reports_bad_channels(
        shared_cf_server: CfServer) -> None:
    srv = shared_cf_server
    r = post(srv, "broadcast", {"channels": ["chat:c1", "chat:c2"], "data": 1,
                                "event": "a\nb"})
    assert r.json()["error"]["code"] == 107
    answer = post(srv, "broadcast", {"channels": ["chat:c1", "nope:x", "bad name"],
                                     "data": 2}).json()["result"]["responses"]
    assert answer[0]["result"]["offset"] == 1
    assert [a["error"]["code"] for a in answer[1:]] == [102, 107]
