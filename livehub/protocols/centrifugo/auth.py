"""JWT verification of connection and subscription tokens (Centrifugo "Client JWT
authentication" and "Channel token authorization").

Algorithms: HS256/384/512 with ``token_hmac_secret``, RS256/384/512 with
``token_rsa_public_key``, ES256/384/512 with ``token_ecdsa_public_key``, and RS*/ES* keys found
by ``kid`` at ``token_jwks_url`` (fetched in a thread, cached by PyJWT).  ``exp`` is checked
by PyJWT; ``expire_at`` (when present) decides when the connection or subscription expires,
``0`` meaning never.  ``aud``/``iss`` are checked when configured.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from livehub.codes import Disconnect, ErrorCode
from livehub.errors import BadRequest, ConfigError, Unauthorized
from livehub.protocols.centrifugo.settings import CentrifugoSettings
from livehub.wire import validation

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
RSA_ALGORITHMS = ("RS256", "RS384", "RS512")
ECDSA_ALGORITHMS = ("ES256", "ES384", "ES512")


class InvalidToken(Unauthorized):
    """A token that cannot be trusted: the connection is closed with 3500."""

    close_code = Disconnect.INVALID_TOKEN.code


class TokenExpired(Unauthorized):
    """A well-signed token whose ``exp`` is past: error 109, the SDK fetches a new one."""

    error_code = int(ErrorCode.TOKEN_EXPIRED)


@dataclass(frozen=True, slots=True)
class ConnectionClaims:
    user: str
    expire_at: float | None
    """Unix time when the connection expires (None: never)."""
    info: bytes | None = None
    channels: tuple[str, ...] = ()
    """Server-side subscriptions (``channels`` and the keys of ``subs``)."""
    subs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    meta: object = None


@dataclass(frozen=True, slots=True)
class SubscriptionClaims:
    user: str
    channel: str
    expire_at: float | None
    info: bytes | None = None


def _json_bytes(value: object) -> bytes | None:
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _b64(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise InvalidToken("b64info is not valid base64") from None


class TokenVerifier:
    """Verifies tokens with the configured keys."""

    def __init__(self, settings: CentrifugoSettings) -> None:
        self._settings = settings
        self._hmac = settings.token_hmac_secret
        self._rsa: Any = None
        self._ecdsa: Any = None
        try:
            if settings.token_rsa_public_key:
                self._rsa = load_pem_public_key(settings.token_rsa_public_key.encode())
            if settings.token_ecdsa_public_key:
                self._ecdsa = load_pem_public_key(settings.token_ecdsa_public_key.encode())
        except ValueError as exc:
            raise ConfigError(f"token public key is not a valid PEM public key: {exc}") from None
        self._jwks = (jwt.PyJWKClient(settings.token_jwks_url, cache_keys=True, lifespan=300)
                      if settings.token_jwks_url else None)

    @property
    def configured(self) -> bool:
        return self._settings.has_keys

    async def _key(self, token: str) -> tuple[Any, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise InvalidToken("token has no algorithm")
        if alg in HMAC_ALGORITHMS and self._hmac:
            return self._hmac, alg
        if alg in RSA_ALGORITHMS + ECDSA_ALGORITHMS:
            if self._jwks is not None and header.get("kid"):
                try:
                    signing = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt,
                                                      token)
                except jwt.PyJWKClientError as exc:
                    raise InvalidToken(f"no JWKS key for token: {exc}") from None
                return signing.key, alg
            key = self._rsa if alg in RSA_ALGORITHMS else self._ecdsa
            if key is not None:
                return key, alg
        raise InvalidToken(f"no key configured for {alg} tokens")

    async def _decode(self, token: str) -> dict[str, Any]:
        if not token:
            raise InvalidToken("empty token")
        key, alg = await self._key(token)
        settings = self._settings
        options: dict[str, Any] = {"verify_aud": settings.token_audience is not None}
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[alg], audience=settings.token_audience,
                issuer=settings.token_issuer, options=options)  # type: ignore[arg-type]
        except jwt.ExpiredSignatureError:
            raise TokenExpired("token expired") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token: {exc}") from None
        except RecursionError:
            raise InvalidToken("invalid token: claims nested too deep") from None
        try:  # the same strict JSON as everything else a peer sends
            validation.check_decoded(claims, what="token claims")
        except BadRequest as exc:
            raise InvalidToken(f"invalid token: {exc.message}") from None
        return claims

    @staticmethod
    def _expiry(claims: Mapping[str, Any]) -> float | None:
        if "expire_at" in claims:
            value = claims["expire_at"]
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise InvalidToken("expire_at must be a number")
            return float(value) or None
        exp = claims.get("exp")
        return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None

    @staticmethod
    def _user(claims: Mapping[str, Any]) -> str:
        sub = claims.get("sub", "")
        if not isinstance(sub, str):
            raise InvalidToken("sub must be a string")
        return sub

    async def connection(self, token: str) -> ConnectionClaims:
        claims = await self._decode(token)
        channels: list[str] = []
        raw_channels = claims.get("channels", [])
        if not isinstance(raw_channels, list) or not all(isinstance(c, str)
                                                         for c in raw_channels):
            raise InvalidToken("channels must be a list of strings")
        channels.extend(raw_channels)
        subs = claims.get("subs", {})
        if not isinstance(subs, dict) or not all(isinstance(v, dict) for v in subs.values()):
            raise InvalidToken("subs must map channels to objects")
        channels.extend(c for c in subs if c not in channels)
        info = _json_bytes(claims.get("info")) or _b64(claims.get("b64info"))
        return ConnectionClaims(self._user(claims), self._expiry(claims), info,
                                tuple(channels), subs, claims.get("meta"))

    async def subscription(self, token: str) -> SubscriptionClaims:
        claims = await self._decode(token)
        channel = claims.get("channel")
        if not isinstance(channel, str) or not channel:
            raise InvalidToken("subscription token has no channel")
        info = _json_bytes(claims.get("info")) or _b64(claims.get("b64info"))
        return SubscriptionClaims(self._user(claims), channel, self._expiry(claims), info)
