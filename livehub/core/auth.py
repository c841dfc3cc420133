"""JWT verification of connection and subscription tokens, for every protocol (Centrifugo
"Client JWT authentication" and "Channel token authorization" claims).

Algorithms: HS256/384/512 with ``token_hmac_secret``, RS256/384/512 with
``token_rsa_public_key``, ES256/384/512 with ``token_ecdsa_public_key``, and RS*/ES* keys found
by ``kid`` at ``token_jwks_url`` (fetched in a thread, cached by PyJWT).  ``exp`` is checked
by PyJWT; ``expire_at`` (when present) decides when the connection or subscription expires,
``0`` meaning never, and one in the past is refused like a past ``exp`` ("expiration must be
greater than now").  ``aud``/``iss`` are checked when configured.  Only the algorithm families
a key is configured for are accepted (``none`` never; an HS token is never checked against a
public key, so RS/HS confusion cannot forge one).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections import Counter
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from livehub.errors import BadRequest, ConfigError, InvalidToken, TokenExpired
from livehub.wire import validation

C = TypeVar("C")

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
RSA_ALGORITHMS = ("RS256", "RS384", "RS512")
ECDSA_ALGORITHMS = ("ES256", "ES384", "ES512")


__all__ = ["AuthSettings", "ConnectionClaims", "InvalidToken", "SubscriptionClaims",
           "TokenExpired", "TokenVerifier"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthSettings:
    """Client authentication of every protocol (``[auth]`` in the TOML file; the ``token_*``
    and ``client_insecure`` keys of ``[centrifugo]`` are still accepted)."""

    token_hmac_secret: str | None = None
    """HMAC secret of connection and subscription JWTs (HS256, HS384, HS512)."""
    token_rsa_public_key: str | None = None
    """PEM public key for RS256/384/512 tokens."""
    token_ecdsa_public_key: str | None = None
    """PEM public key for ES256/384/512 tokens."""
    token_jwks_url: str | None = None
    """JWKS endpoint whose keys (by ``kid``) verify RS*/ES* tokens."""
    token_audience: str | None = None
    """Required ``aud`` claim of tokens (unset: not checked)."""
    token_issuer: str | None = None
    """Required ``iss`` claim of tokens (unset: not checked)."""
    token_cookie: str = "livehub_token"
    """Cookie holding the connection token on the plain endpoints ('': cookies not read).  A
    cookie counts only on same-origin requests or from an origin listed in
    ``allowed_origins`` (never through ``*``)."""
    client_insecure: bool = False
    """Development only: no token needed, and every client may subscribe, publish and read
    presence and history in every channel, on every protocol."""

    @property
    def has_keys(self) -> bool:
        return bool(self.token_hmac_secret or self.token_rsa_public_key
                    or self.token_ecdsa_public_key or self.token_jwks_url)


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

    def __init__(self, settings: AuthSettings) -> None:
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
        self.refused: Counter[str] = Counter()
        """Tokens refused, by reason (``token_invalid``, ``token_expired``): metrics."""

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

    async def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token`` (signature, ``exp``/``nbf``, audience, issuer,
        strict JSON), for protocols with claims of their own (Mercure); raise
        ``InvalidToken``/``TokenExpired``."""
        return await self._decode(token)

    @staticmethod
    def _expiry(claims: Mapping[str, Any]) -> float | None:
        if "expire_at" in claims:
            value = claims["expire_at"]
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise InvalidToken("expire_at must be a number")
            if value and value <= time.time():
                raise TokenExpired("token expired (expire_at is past)")
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
        return await self._counted(self._connection(token))

    async def subscription(self, token: str) -> SubscriptionClaims:
        return await self._counted(self._subscription(token))

    async def _counted(self, verifying: Awaitable[C]) -> C:
        """``verifying``'s claims; a refusal is counted by reason (read by ``/metrics``)."""
        try:
            return await verifying
        except TokenExpired:
            self.refused["token_expired"] += 1
            raise
        except InvalidToken:
            self.refused["token_invalid"] += 1
            raise

    async def _connection(self, token: str) -> ConnectionClaims:
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

    async def _subscription(self, token: str) -> SubscriptionClaims:
        claims = await self._decode(token)
        channel = claims.get("channel")
        if not isinstance(channel, str) or not channel:
            raise InvalidToken("subscription token has no channel")
        info = _json_bytes(claims.get("info")) or _b64(claims.get("b64info"))
        return SubscriptionClaims(self._user(claims), channel, self._expiry(claims), info)
