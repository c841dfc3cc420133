"""The npm ``eventsource`` client authenticating with a bearer header or a cookie (through its
``fetch`` option): refused without credentials (403) or with an expired token (401), told
in-band when its token expires (``disconnect`` 3005), and back in with a fresh token."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator

import pytest

from tests.centrifugo.conftest import CfServer
from tests.node.conftest import NodeFactory
from tests.security.conftest import make_security_server, tok

pytestmark = pytest.mark.node


@pytest.fixture
def srv() -> Iterator[CfServer]:
    server = make_security_server(heartbeat_interval=0.1, sse_retry_ms=100)
    yield server
    server.stop()


def _url(srv: CfServer, channel: str) -> str:
    return f"{srv.url}/events?{urllib.parse.urlencode({'channel': channel})}"


@pytest.mark.parametrize(("header", "prefix"), [("Authorization", "Bearer "),
                                                ("Cookie", "livehub_token=")])
def test_credentials_in_headers(srv: CfServer, node: NodeFactory, header: str,
                                prefix: str) -> None:
    client = node("sse_auth.mjs", _url(srv, "members:node"), header, prefix, tok("42"))
    client.until_kind("open")
    srv.publish("members:node", "hello")
    assert client.until_kind("event")["data"] == "hello"


@pytest.mark.parametrize(("token", "status"), [("", 403), (tok("42", ttl=-5), 401),
                                               ("not-a.jwt", 401)])
def test_refused_without_valid_credentials(srv: CfServer, node: NodeFactory, token: str,
                                           status: int) -> None:
    client = node("sse_auth.mjs", _url(srv, "members:node"), "Authorization",
                  "Bearer " if token else "", token)
    error = client.until_kind("error")
    assert error["code"] == status and error["closed"] is True  # no reconnection loop


def test_expiry_is_told_in_band_and_a_fresh_token_lets_it_back(srv: CfServer,
                                                               node: NodeFactory) -> None:
    soon = tok("42", ttl=None, exp=int(time.time()) + 2)
    client = node("sse_auth.mjs", _url(srv, "members:exp"), "Authorization", "Bearer ", soon)
    client.until_kind("open")
    client.send({"op": "token", "token": tok("42")})
    client.until_kind("token")
    disconnect = client.until(lambda line: line.get("type") == "disconnect")[-1]
    assert json.loads(disconnect["data"])["code"] == 3005
    client.until_kind("open")  # eventsource reconnects by itself, with the fresh token
    srv.publish("members:exp", "after")
    assert client.until_kind("event")["data"] == "after"
