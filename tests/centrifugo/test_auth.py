"""Connection and subscription JWTs (HMAC, RSA, ECDSA, JWKS), anonymous and insecure modes,
and the channel permission model, checked on the wire."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .conftest import CfServer, make_cf_server, sub_token, token
from .wsclient import RawClient, connect


def _pem(key: Any) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/jwks"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def keyed_server(jwks_url: str) -> Iterator[CfServer]:
    srv = make_cf_server(cf={"token_rsa_public_key": _pem(RSA_KEY),
                             "token_ecdsa_public_key": _pem(EC_KEY),
                             "token_jwks_url": jwks_url, "token_audience": "livehub"})
    yield srv
    srv.stop()


async def _connect_reply(srv: CfServer, params: dict[str, Any]) -> dict[str, Any]:
    async with connect(srv.cf_ws) as ws:
        return await RawClient(ws).call("connect", params)


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512", "RS256", "RS512", "ES256", "JWKS"])
async def test_token_algorithms(keyed_server: CfServer, alg: str) -> None:
    claims = {"sub": "u-" + alg, "aud": "livehub", "exp": int(time.time()) + 60}
    if alg.startswith("HS"):
        tok = token("u-" + alg, algorithm=alg, aud="livehub")
    elif alg.startswith("RS"):
        tok = jwt.encode(claims, RSA_KEY, algorithm=alg)
    elif alg == "ES256":
        tok = jwt.encode(claims, EC_KEY, algorithm="ES256")
    else:
        tok = jwt.encode(claims, RSA_KEY, algorithm="RS256", headers={"kid": "k1"})
    reply = await _connect_reply(keyed_server, {"token": tok})
    assert reply["connect"]["client"] and reply["connect"]["expires"] is True


async def test_wrong_audience_and_bad_signature_close_with_3500(keyed_server: CfServer) -> None:
    other = "another-secret-long-enough-for-any-hmac-algorithm-0123456789abc"
    for tok in (token("x"), token("x", aud="livehub", secret=other)):
        async with connect(keyed_server.cf_ws) as ws:
            client = RawClient(ws)
            await ws.send(json.dumps({"id": 1, "connect": {"token": tok}}))
            assert await client.closed_with() == 3500


async def test_expired_token_is_error_109(cf_server: CfServer) -> None:
    reply = await _connect_reply(cf_server, {"token": token("late", ttl=-10)})
    assert reply["error"]["code"] == 109


async def test_no_token_is_unauthorized_unless_anonymous(cf_server: CfServer) -> None:
    assert (await _connect_reply(cf_server, {}))["error"]["code"] == 101
    anon = make_cf_server(cf={"client_anonymous": True})
    try:
        async with connect(anon.cf_ws) as ws:
            client = RawClient(ws)
            assert "client" in (await client.call("connect"))["connect"]
            assert "subscribe" in await client.call("subscribe", {"channel": "chat:anon"})
            denied = await client.call("subscribe", {"channel": "private:x"})
            assert denied["error"]["code"] == 103
    finally:
        anon.stop()


async def test_insecure_mode_allows_everything() -> None:
    srv = make_cf_server(cf={"client_insecure": True, "token_hmac_secret": None})
    try:
        async with connect(srv.cf_ws) as ws:
            client = RawClient(ws)
            assert "connect" in await client.call("connect")
            assert "subscribe" in await client.call("subscribe", {"channel": "private:x"})
            assert "publish" in await client.call("publish", {"channel": "ro:x", "data": 1})
            assert "history" in await client.call("history", {"channel": "ro:x", "limit": 5})
    finally:
        srv.stop()


async def test_subscription_tokens_and_user_limited_channels(cf_server: CfServer) -> None:
    async with connect(cf_server.cf_ws) as ws:
        c = RawClient(ws)
        await c.call("connect", {"token": token("42")})
        ok = await c.call("subscribe", {"channel": "private:a",
                                        "token": sub_token("42", "private:a", ttl=60)})
        assert ok["subscribe"]["expires"] is True
        wrong_channel = await c.call("subscribe", {"channel": "private:b",
                                                   "token": sub_token("42", "private:a")})
        assert wrong_channel["error"]["code"] == 103
        other_user = await c.call("subscribe", {"channel": "private:c",
                                                "token": sub_token("43", "private:c")})
        assert other_user["error"]["code"] == 103
        expired = await c.call("subscribe", {"channel": "private:d",
                                             "token": sub_token("42", "private:d", ttl=-5)})
        assert expired["error"]["code"] == 109
        assert "subscribe" in await c.call("subscribe", {"channel": "user:#42,7"})
        assert (await c.call("subscribe", {"channel": "user:#7"}))["error"]["code"] == 103
        refreshed = await c.call("sub_refresh", {"channel": "private:a",
                                                 "token": sub_token("42", "private:a")})
        assert refreshed["sub_refresh"]["ttl"] > 60
        again = await c.call("refresh", {"token": token("42", ttl=120)})
        assert 100 < again["refresh"]["ttl"] <= 120
        with pytest.raises(websockets.ConnectionClosed) as info:
            await c.call("refresh", {"token": token("not-42")})
    assert info.value.rcvd is not None and info.value.rcvd.code == 3500


async def test_channel_permissions(cf_server: CfServer) -> None:
    async with connect(cf_server.cf_ws) as ws:
        c = RawClient(ws)
        await c.call("connect", {"token": token("p")})
        assert (await c.call("publish", {"channel": "ro:x", "data": 1}))["error"]["code"] == 103
        assert (await c.call("history", {"channel": "ro:x"}))["error"]["code"] == 103
        assert (await c.call("presence", {"channel": "ro:x"}))["error"]["code"] == 108
        assert (await c.call("history", {"channel": "nohist:x"}))["error"]["code"] == 108
        assert (await c.call("subscribe", {"channel": "nope:x"}))["error"]["code"] == 102
        assert (await c.call("subscribe", {"channel": "bad channel"}))["error"]["code"] == 107
        assert "subscribe" in await c.call("subscribe", {"channel": "ro:x"})
        again = await c.call("subscribe", {"channel": "ro:x"})
        assert again["error"]["code"] == 105
        assert (await c.call("rpc", {"method": "m"}))["error"]["code"] == 108
