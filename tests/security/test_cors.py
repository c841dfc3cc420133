"""Cross-origin rules that cannot be combined into a hole: the server API is never run or read
for another origin (with or without a preflight), credentials never go with ``*`` or ``null``,
``insecure_api`` only answers loopback names."""

from __future__ import annotations

import httpx
import pytest

from livehub.app import App
from livehub.core.channels import Namespaces
from livehub.core.hub import Hub
from livehub.core.memory import MemoryBroker
from livehub.errors import ConfigError
from livehub.transports.context import ServerSettings

from ..conftest import API_KEY, LiveServer, ServerFactory

EVIL = "https://evil.example"


def _history(server: LiveServer, channel: str) -> list[object]:
    r = httpx.post(server.url + "/api/history", json={"channel": channel, "limit": -1},
                   headers={"X-API-Key": API_KEY})
    return [p["data"] for p in r.json()["result"].get("publications", [])]


@pytest.mark.parametrize("insecure", [True, False])
def test_cross_origin_api_call_without_preflight_does_not_run(make_server: ServerFactory,
                                                              insecure: bool) -> None:
    """A page of another site can send a ``text/plain`` POST without a preflight: it must be
    refused before it runs, and its answer must not be readable."""
    server = make_server(insecure_api=insecure)
    for path in ("/api/publish", "/api"):
        body = ('{"channel": "news", "data": "from evil"}' if path != "/api" else
                '{"method": "publish", "params": {"channel": "news", "data": "from evil"}}')
        r = httpx.post(server.url + path, content=body,
                       headers={"Content-Type": "text/plain", "Origin": EVIL,
                                "X-API-Key": API_KEY})
        assert r.status_code == 403, r.text
        assert "access-control-allow-origin" not in r.headers
    r = httpx.post(server.url + "/api/history", content='{"channel": "news", "limit": -1}',
                   headers={"Content-Type": "text/plain", "Origin": "null"})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    assert _history(server, "news") == []


def test_api_preflight_is_refused(make_server: ServerFactory) -> None:
    server = make_server(allowed_origins=(EVIL,))
    r = httpx.options(server.url + "/api/publish", headers={
        "Origin": EVIL, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-api-key"})
    assert r.status_code == 403
    assert not [h for h in r.headers if h.startswith("access-control-")]
    # even an allowed origin gets no CORS headers on the API
    r = httpx.post(server.url + "/api/publish", json={"channel": "c", "data": 1},
                   headers={"Origin": EVIL, "X-API-Key": API_KEY})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers


def test_same_origin_and_originless_api_calls_run(make_server: ServerFactory) -> None:
    server = make_server()
    for headers in ({}, {"Origin": server.url}):
        r = httpx.post(server.url + "/api/publish", json={"channel": "news", "data": "ok"},
                       headers={"X-API-Key": API_KEY, **headers})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    assert _history(server, "news") == ["ok", "ok"]


def test_insecure_api_answers_loopback_names_only(make_server: ServerFactory) -> None:
    """DNS rebinding: a page of rebind.example resolved to 127.0.0.1 sends its own origin and
    host name; it gets no key-less API."""
    server = make_server(insecure_api=True)
    rebound = {"Host": f"rebind.example:{server.port}",
               "Origin": f"http://rebind.example:{server.port}"}
    r = httpx.post(server.url + "/api/publish", json={"channel": "news", "data": 1},
                   headers=rebound)
    assert r.status_code == 403
    r = httpx.post(server.url + "/api/publish", json={"channel": "news", "data": 2})
    assert r.status_code == 200
    assert _history(server, "news") == [2]


def test_wildcard_never_with_credentials_nor_reflected_null(make_server: ServerFactory) -> None:
    server = make_server()
    for origin in (EVIL, "null"):
        r = httpx.get(server.url + "/health", headers={"Origin": origin})
        assert r.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in r.headers
    listed = make_server(allowed_origins=("https://app.test",), cors_credentials=True)
    r = httpx.get(listed.url + "/health", headers={"Origin": "https://app.test"})
    assert r.headers["access-control-allow-origin"] == "https://app.test"
    assert r.headers["access-control-allow-credentials"] == "true"
    for origin in (EVIL, "null"):
        r = httpx.get(listed.url + "/health", headers={"Origin": origin})
        assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize(("settings", "fragment"), [
    (ServerSettings(cors_credentials=True), "explicit allowed_origins"),
    (ServerSettings(cors_credentials=True, allowed_origins=("https://a.test", "null")),
     "'null' origin"),
    (ServerSettings(insecure_api=True, host="0.0.0.0"), "loopback"),
])
async def test_app_refuses_holes(settings: ServerSettings, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        App.create(Hub(MemoryBroker(), Namespaces()), settings)
