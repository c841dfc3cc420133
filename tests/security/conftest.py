"""One server for the authorization tests of every transport: token keys (HMAC and RSA, with an
audience), namespaces for each permission rule, and helpers that forge every kind of bad token.

Namespaces: channels without one are public; ``members`` lets users in but not anonymous
clients; ``closed`` keeps Centrifugo's secure default (a token is needed); ``user`` has
user-limited channels (``user:notes#42``); ``talk`` is open to everyone and user-limited too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from livehub.core.channels import ChannelOptions, public_options

from ..centrifugo.conftest import SECRET, CfServer, make_cf_server

AUDIENCE = "livehub-tests"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PEM = RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
OTHER_SECRET = "not-the-server-secret-but-long-enough-for-hs256-0123456789abcdef"

NAMESPACES = {
    "members": ChannelOptions(allow_subscribe_for_client=True),
    "closed": ChannelOptions(),
    "user": ChannelOptions(allow_user_limited_channels=True),
    "talk": public_options(allow_user_limited_channels=True, client_publish=True),
}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def tok(user: str, *, ttl: float | None = 3600, secret: str = SECRET, aud: str | None = AUDIENCE,
        **claims: Any) -> str:
    """A connection (or, with ``channel=``, subscription) token the server accepts."""
    body: dict[str, Any] = {"sub": user, **claims}
    if ttl is not None:
        body["exp"] = int(time.time() + ttl)
    if aud is not None:
        body["aud"] = aud
    return jwt.encode(body, secret, algorithm="HS256")


def unsigned(user: str) -> str:
    """``alg: none``: no signature at all."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = _b64(json.dumps({"sub": user, "aud": AUDIENCE,
                            "exp": int(time.time()) + 3600}).encode())
    return f"{header}.{body}."


def hs_with_public_key(user: str) -> str:
    """RS/HS confusion: HS256 "signed" with the server's RSA public key as the secret."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps({"sub": user, "aud": AUDIENCE,
                            "exp": int(time.time()) + 3600}).encode())
    mac = hmac.new(RSA_PEM.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(mac)}"


BAD_TOKENS: dict[str, tuple[Any, str]] = {
    # name: (token maker, what every transport must answer)
    "forged": (lambda: tok("42", secret=OTHER_SECRET), "invalid"),
    "expired-exp": (lambda: tok("42", ttl=-30), "expired"),
    "expired-expire_at": (lambda: tok("42", ttl=None, expire_at=int(time.time()) - 30),
                          "expired"),
    "wrong-audience": (lambda: tok("42", aud="someone-else"), "invalid"),
    "alg-none": (lambda: unsigned("42"), "invalid"),
    "hs-rs-confusion": (lambda: hs_with_public_key("42"), "invalid"),
    "malformed": (lambda: "not-a.jwt", "invalid"),
}


def make_security_server(**overrides: Any) -> CfServer:
    cf = {"token_rsa_public_key": RSA_PEM, "token_audience": AUDIENCE, "client_anonymous": True,
          "client_ping_interval": 0, "node_heartbeat_interval": 0, **overrides.pop("cf", {})}
    overrides.setdefault("namespaces", NAMESPACES)
    return make_cf_server(cf=cf, default_options=public_options(), **overrides)


@pytest.fixture(scope="module")
def sec_server() -> Iterator[CfServer]:
    srv = make_security_server()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A refusal is an answer, never a failure: nothing may be logged as an error."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]
