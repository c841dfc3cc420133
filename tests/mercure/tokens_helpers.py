"""Helpers of the Mercure token tests: real tokens signed with PyJWT, real request values."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from livehub.protocols.mercure.tokens import (
    MercureAuthorizer,
    MercureAuthSettings,
)
from livehub.transports.http import Request

PUB_KEY = "publisher-secret-long-enough-for-hs256-0123456789abcdef"
SUB_KEY = "subscriber-secret-long-enough-for-hs256-0123456789abcdef"
OTHER_KEY = "somebody-else-secret-long-enough-for-hs256-0123456789ab"
HOST = "hub.example.com"
ORIGIN = f"https://{HOST}"
DETAIL = "https://mercure.rocks/authorization-detail"
BOOK = "https://example.com/books/1"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def legacy(key: str = SUB_KEY, *, ttl: float | None = 3600, alg: str = "HS256",
           **mercure: Any) -> str:
    """A 0.x token with a ``mercure`` claim."""
    body: dict[str, Any] = {"mercure": mercure}
    if ttl is not None:
        body["exp"] = int(time.time() + ttl)
    return jwt.encode(body, key, algorithm=alg)


def access(key: Any = SUB_KEY, *, details: list[Any] | None = None, ttl: float | None = 3600,
           alg: str = "HS256", **claims: Any) -> str:
    """A 1.0 ``at+jwt`` access token."""
    body: dict[str, Any] = {"iss": "https://example.com", "sub": "https://example.com/users/42",
                            "aud": "https://hub.example.com/.well-known/mercure",
                            "authorization_details": details or [], **claims}
    if ttl is not None:
        body["exp"] = int(time.time() + ttl)
    body = {k: v for k, v in body.items() if v is not None}  # None: leave the claim out
    return jwt.encode(body, key, algorithm=alg, headers={"typ": "at+jwt"})


def detail(actions: list[str], *topics: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"type": DETAIL, "actions": actions, "topics": list(topics), **extra}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(**claims: Any) -> str:
    """``alg: none``."""
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


def request(*, bearer: str | None = None, query: dict[str, list[str]] | None = None,
            cookies: dict[str, str] | None = None, origin: str | None = None,
            headers: dict[str, str] | None = None, method: str = "GET") -> Request:
    head = {"host": HOST, **(headers or {})}
    if bearer is not None:
        head["authorization"] = f"Bearer {bearer}"
    if cookies:
        head["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    if origin is not None:
        head["origin"] = origin
    return Request(method, "/.well-known/mercure", query or {}, head)


def authorizer(*, insecure: bool = False, allowed_origins: tuple[str, ...] = (),
               api_key: str | None = None, **settings: Any) -> MercureAuthorizer:
    values: dict[str, Any] = {"mercure_publisher_jwt_key": PUB_KEY,
                              "mercure_subscriber_jwt_key": SUB_KEY, **settings}
    return MercureAuthorizer(MercureAuthSettings(**values), allowed_origins=allowed_origins,
                             insecure=insecure, api_key=api_key)
