"""Mercure authorization of both generations: which token a request carries, what it grants,
and the RFC 6750 answer when it grants nothing (signatures are checked by ``livehub.core.auth``,
permissions decided by ``livehub.core.permissions``).

Theory of operation
-------------------
A request carries at most one token, found in this order (RFC 6750 §2: one method per request):
``Authorization: Bearer`` (both generations), the ``authorization`` query parameter (0.x only;
RFC 9700 keeps access tokens out of URLs), then the ``__Secure-mercure_access_token`` or
``mercureAuthorization`` cookie, which counts only under the origin rule of
``livehub.protocols.credentials.cookies_count``.  A header and a query parameter together are
refused (400 ``invalid_request``); a cookie, which the browser attaches by itself, is ignored
when either is present.

The token's signature, ``exp``, ``nbf`` and ``aud`` are checked by ``core.auth.TokenVerifier``
with the publisher key for publishers and the subscriber key for subscribers
(``mercure_*_jwt_key`` in the algorithm ``mercure_jwt_algorithm``, or keys found at
``mercure_*_jwks_url``; a token in another algorithm, ``none`` included, is refused before any
key is tried).  The ``typ`` header decides the generation:

- ``at+jwt``: a 1.0 OAuth access token (RFC 9068).  ``exp`` is required, ``iss`` must be one of
  ``mercure_issuers`` when they are set, and the grants are the ``authorization_details``
  entries of type ``https://mercure.rocks/authorization-detail`` (``mercure`` is accepted too):
  ``actions`` (``subscribe``/``publish``) over ``topics`` (``{"match": ..., "match_type":
  "exact" | "urlpattern"}``).  One malformed Mercure entry refuses the whole token.
- anything else: a 0.x JWT whose ``mercure`` claim holds ``publish`` and ``subscribe`` arrays of
  0.x selectors (exact IRIs, URI templates, ``*``) and an optional ``payload``.

API for the protocol plug-in::

    auth = MercureAuthorizer.for_context(ctx, settings)   # once, at install
    grant = await auth.subscriber(request)    # MercureAuthError: 401 / 400
    grant.may_receive(update_topics)          # private updates: core.permissions.may_receive
    grant = await auth.publisher(request)
    grant.check_publish(update_topics)        # MercureAuthError 403 insufficient_scope

A grant's ``principal`` is the shared permission model's ``Principal`` whose pattern grant is the
token's subscribe (subscriber) or publish (publisher) selectors.  Refusals are
``MercureAuthError``: its ``http_status`` and ``headers`` (``WWW-Authenticate``) make the answer
through ``livehub.transports.messages.error_response``.  Without a token a subscriber is
accepted only with ``mercure_anonymous`` (public updates only) and a publisher never, except in
development mode (``client_insecure``), where every grant is total.  The server API key
(``X-API-Key``, the backend's own credential on livehub) grants everything to both roles, as it
does on the server API; a wrong one is a 401.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from livehub.codes import ErrorCode
from livehub.core.auth import (
    ECDSA_ALGORITHMS,
    HMAC_ALGORITHMS,
    RSA_ALGORITHMS,
    AuthSettings,
    TokenVerifier,
)
from livehub.core.permissions import Principal, check_granted, may_receive
from livehub.errors import BadSelector, ConfigError, PeerError, PermissionDenied, Unauthorized
from livehub.protocols.credentials import cookie, cookies_count
from livehub.protocols.mercure.selectors import (
    MAX_GRANT_SELECTORS,
    SelectorSet,
    compile_selector,
    compile_selectors,
)
from livehub.transports.context import ServerContext
from livehub.transports.http import Request

DETAIL_TYPES = ("https://mercure.rocks/authorization-detail", "mercure")
ACCESS_TOKEN_COOKIE = "__Secure-mercure_access_token"
LEGACY_COOKIE = "mercureAuthorization"
QUERY_PARAMETER = "authorization"
MAX_TOKEN_LENGTH = 65536
ALGORITHMS = HMAC_ALGORITHMS + RSA_ALGORITHMS + ECDSA_ALGORITHMS


@dataclass(frozen=True, slots=True, kw_only=True)
class MercureAuthSettings:
    """Authorization of ``/.well-known/mercure`` (``[mercure]`` in the TOML file; every field
    also ``LIVEHUB_<NAME>`` and ``--<name>``)."""

    mercure_publisher_jwt_key: str | None = None
    """Verifies publishers' tokens: the HMAC secret, or the PEM public key of an RS*/ES*
    ``mercure_jwt_algorithm``."""
    mercure_subscriber_jwt_key: str | None = None
    """Verifies subscribers' tokens (same kinds as the publisher key)."""
    mercure_jwt_algorithm: str = "HS256"
    """The one algorithm tokens may use (HS256/384/512, RS256/384/512, ES256/384/512)."""
    mercure_publisher_jwks_url: str | None = None
    """JWKS endpoint whose keys (by ``kid``) verify RS*/ES* publisher tokens."""
    mercure_subscriber_jwks_url: str | None = None
    """JWKS endpoint whose keys (by ``kid``) verify RS*/ES* subscriber tokens."""
    mercure_anonymous: bool = False
    """Subscribers without a token are accepted (they receive public updates only)."""
    mercure_issuers: Sequence[str] = ()
    """Trusted ``iss`` values of 1.0 access tokens (empty: not checked)."""
    mercure_audience: str | None = None
    """The hub's resource identifier, required in ``aud`` when set (both generations)."""

    def __post_init__(self) -> None:
        if self.mercure_jwt_algorithm not in ALGORITHMS:
            raise ConfigError(f"mercure_jwt_algorithm must be one of {', '.join(ALGORITHMS)}, "
                              f"not {self.mercure_jwt_algorithm!r}")

    def verifier_settings(self, key: str | None, jwks_url: str | None) -> AuthSettings:
        """The ``core.auth`` settings that verify one role's tokens."""
        alg = self.mercure_jwt_algorithm
        return AuthSettings(
            token_hmac_secret=key if alg in HMAC_ALGORITHMS else None,
            token_rsa_public_key=key if alg in RSA_ALGORITHMS else None,
            token_ecdsa_public_key=key if alg in ECDSA_ALGORITHMS else None,
            token_jwks_url=jwks_url if alg not in HMAC_ALGORITHMS else None,
            token_audience=self.mercure_audience or None)


def _quoted(text: str) -> str:
    """``text`` as an RFC 6750 ``error_description`` (printable ASCII but ``"`` and ``\\``)."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?" for c in text)


def challenge(error: str | None = None, description: str | None = None) -> str:
    """A ``WWW-Authenticate`` value (RFC 6750 §3): ``Bearer`` alone when no token was sent."""
    params = ['realm="mercure"']
    if error:
        params.append(f'error="{error}"')
    if description:
        params.append(f'error_description="{_quoted(description)}"')
    return "Bearer " + ", ".join(params)


_ERROR_CODES = {400: int(ErrorCode.BAD_REQUEST), 401: int(ErrorCode.UNAUTHORIZED),
                403: int(ErrorCode.PERMISSION_DENIED)}


class MercureAuthError(PeerError):
    """A Mercure authorization refusal (RFC 6750 §3.1): 400 ``invalid_request``, 401
    ``invalid_token`` (or no error at all when no token was sent), 403 ``insufficient_scope``;
    ``headers`` carries the ``WWW-Authenticate`` challenge."""

    def __init__(self, status: int, error: str | None, description: str) -> None:
        super().__init__(description, http_status=status,
                         error_code=_ERROR_CODES.get(status, int(ErrorCode.BAD_REQUEST)))
        self.error = error
        self.headers = [("www-authenticate", challenge(error, description))]


def invalid_token(description: str) -> MercureAuthError:
    return MercureAuthError(401, "invalid_token", description)


@dataclass(frozen=True, slots=True, eq=False)
class MercureGrant:
    """What one request may do (compared and hashed by identity: its payload may be any JSON;
    ``receiver_key`` says which grants receive the same private updates)."""

    principal: Principal
    """The permission model's view: user (``sub``) and the pattern grant of this role."""
    subscribe: SelectorSet | None = None
    """Topics whose private updates the token may receive (None: no grant)."""
    publish: SelectorSet | None = None
    """Topics the token may publish to (None: no grant)."""
    payload: object = None
    """0.x ``mercure.payload``, or the ``payload`` of the first 1.0 subscribe detail."""
    payloads: tuple[tuple[SelectorSet, object], ...] = ()
    """1.0: each subscribe detail's topics and payload, in token order."""
    expire_at: float | None = None
    generation: str = ""
    """``"0.x"``, ``"1.0"``, or ``""`` without a token."""

    @property
    def receiver_key(self) -> tuple[object, bool]:
        """Equal for grants that receive the same private updates: the interned subscribe
        ``SelectorSet`` (grants with identical selectors share one) and development mode.
        A key for sharing one fan-out decision among subscribers."""
        return (self.subscribe, self.principal.insecure)

    def may_receive(self, topics: Sequence[str]) -> bool:
        """Whether a private update about ``topics`` may reach this subscriber."""
        return may_receive(self.principal, topics)

    def check_publish(self, topics: Sequence[str]) -> None:
        """Raise 403 ``insufficient_scope`` unless the token may publish to every topic."""
        try:
            check_granted(self.principal, topics, "publishing to")
        except PermissionDenied as exc:
            raise MercureAuthError(403, "insufficient_scope", exc.message) from None

    def payload_for(self, topic: str) -> object:
        """The payload of the first subscribe detail granting ``topic`` (else ``payload``)."""
        for grant, value in self.payloads:
            if grant.matches(topic):
                return value
        return self.payload


def _selector_set(kind: str, value: object, where: str) -> SelectorSet:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid_token(f"{where} must be an array of strings")
    return SelectorSet.of(compile_selectors(((kind, v) for v in value),
                                            limit=MAX_GRANT_SELECTORS))


def _legacy(claims: Mapping[str, Any]) -> tuple[SelectorSet | None, SelectorSet | None, object]:
    """(subscribe, publish, payload) of a 0.x ``mercure`` claim."""
    mercure = claims.get("mercure")
    if not isinstance(mercure, dict):
        raise invalid_token("the token has no mercure claim (0.x) and is not an at+jwt "
                            "access token (1.0)")
    sub = mercure.get("subscribe")
    pub = mercure.get("publish")
    return (None if sub is None else _selector_set("topic", sub, "mercure.subscribe"),
            None if pub is None else _selector_set("topic", pub, "mercure.publish"),
            mercure.get("payload"))


def _topics(value: object) -> list[tuple[str, str]]:
    if not isinstance(value, list) or not value:
        raise invalid_token("authorization_details topics must be a non-empty array")
    pairs: list[tuple[str, str]] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("match"), str):
            raise invalid_token("each authorization_details topic is an object with a match")
        kind = item.get("match_type", "exact")
        if kind not in ("exact", "urlpattern"):
            raise invalid_token(f"unknown match_type {kind!r}")
        pairs.append(("match" if kind == "exact" else "match_urlpattern", item["match"]))
    return pairs


def _details(claims: Mapping[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]],
                                                 list[tuple[list[tuple[str, str]], object]]]:
    """(subscribe topics, publish topics, subscribe payloads) of 1.0 ``authorization_details``."""
    details = claims.get("authorization_details")
    if not isinstance(details, list):
        raise invalid_token("an at+jwt access token needs an authorization_details array")
    sub: list[tuple[str, str]] = []
    pub: list[tuple[str, str]] = []
    payloads: list[tuple[list[tuple[str, str]], object]] = []
    for detail in details:
        if not isinstance(detail, dict) or detail.get("type") not in DETAIL_TYPES:
            continue  # details for other resources
        actions = detail.get("actions")
        if (not isinstance(actions, list) or not actions
                or not set(actions) <= {"subscribe", "publish"}):
            raise invalid_token("authorization_details actions must be a non-empty subset of "
                                "subscribe, publish")
        topics = _topics(detail.get("topics"))
        if "subscribe" in actions:
            sub.extend(topics)
            if "payload" in detail:
                payloads.append((topics, detail["payload"]))
        if "publish" in actions:
            pub.extend(topics)
    return sub, pub, payloads


class MercureAuthorizer:
    """Turns the credentials of a Mercure request into a ``MercureGrant``."""

    def __init__(self, settings: MercureAuthSettings, *, allowed_origins: Sequence[str] = (),
                 insecure: bool = False, api_key: str | None = None) -> None:
        self.settings = settings
        self._allowed_origins = tuple(allowed_origins)
        self._insecure = insecure
        self._api_key = api_key
        self._publisher = TokenVerifier(settings.verifier_settings(
            settings.mercure_publisher_jwt_key, settings.mercure_publisher_jwks_url))
        self._subscriber = TokenVerifier(settings.verifier_settings(
            settings.mercure_subscriber_jwt_key, settings.mercure_subscriber_jwks_url))

    @classmethod
    def for_context(cls, ctx: ServerContext, settings: MercureAuthSettings
                    ) -> MercureAuthorizer:
        """The authorizer of a server: its allowed origins and development mode."""
        return cls(settings, allowed_origins=ctx.settings.allowed_origins,
                   insecure=ctx.auth.client_insecure, api_key=ctx.settings.api_key)

    def _keyed(self, request: Request) -> MercureGrant | None:
        """The total grant of a request carrying the server API key (None: it carries none);
        raise 401 for a wrong key."""
        key = request.headers.get("x-api-key")
        if key is None:
            return None
        if not self._api_key or not hmac.compare_digest(key.encode(), self._api_key.encode()):
            raise MercureAuthError(401, None, "wrong API key")
        everything = SelectorSet.of([compile_selector("match", "*")])
        return MercureGrant(Principal("", grant=everything, insecure=self._insecure),
                            everything, everything)

    def token(self, request: Request) -> tuple[str, str] | None:
        """(token, where) of ``request`` (``"header"``, ``"query"`` or ``"cookie"``), or None;
        raise 400 ``invalid_request`` when it comes by two methods at once."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        header = value.strip() if scheme.lower() == "bearer" else ""
        if request.headers.get("authorization") and not header:
            raise MercureAuthError(400, "invalid_request",
                                   "the Authorization header must use the Bearer scheme")
        queried = request.args(QUERY_PARAMETER)
        if len(queried) > 1 or (header and queried):
            raise MercureAuthError(400, "invalid_request",
                                   "send the token one way only (RFC 6750 section 2)")
        if header:
            return header, "header"
        if queried:
            return queried[0], "query"
        if cookies_count(request, self._allowed_origins):
            found = cookie(request, ACCESS_TOKEN_COOKIE) or cookie(request, LEGACY_COOKIE)
            if found:
                return found, "cookie"
        return None

    async def subscriber(self, request: Request) -> MercureGrant:
        """The grant of a subscription request; raise ``MercureAuthError``."""
        keyed = self._keyed(request)
        if keyed is not None:
            return keyed
        found = self.token(request)
        if found is None:
            if self._insecure or self.settings.mercure_anonymous:
                return MercureGrant(Principal(insecure=self._insecure))
            raise MercureAuthError(401, None, "a subscriber token is required")
        return await self._grant(*found, self._subscriber, role="subscriber")

    async def publisher(self, request: Request) -> MercureGrant:
        """The grant of a publication request; raise ``MercureAuthError``."""
        keyed = self._keyed(request)
        if keyed is not None:
            return keyed
        found = self.token(request)
        if found is None:
            if self._insecure:
                return MercureGrant(Principal(insecure=True))
            raise MercureAuthError(401, None, "a publisher token is required")
        return await self._grant(*found, self._publisher, role="publisher")

    async def _grant(self, token: str, where: str, verifier: TokenVerifier, *, role: str
                     ) -> MercureGrant:
        if len(token) > MAX_TOKEN_LENGTH:
            raise invalid_token(f"token longer than {MAX_TOKEN_LENGTH} bytes")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise invalid_token("malformed token") from None
        if header.get("alg") != self.settings.mercure_jwt_algorithm:
            raise invalid_token(f"tokens must be signed with {self.settings.mercure_jwt_algorithm}")
        access = str(header.get("typ", "")).lower() == "at+jwt"
        if access and where == "query":
            raise MercureAuthError(400, "invalid_request", "access tokens are not accepted in "
                                   "the URL (RFC 9700): use the header or the cookie")
        if not verifier.configured:
            raise invalid_token(f"no {role} key is configured")
        try:
            claims = await verifier.claims(token)
        except Unauthorized as exc:
            raise invalid_token(exc.message) from None
        sub = claims.get("sub", "")
        principal_user = sub if isinstance(sub, str) else ""
        exp = claims.get("exp")
        expire_at = float(exp) if isinstance(exp, int | float) and not isinstance(
            exp, bool) else None
        try:
            if access:
                return self._access(claims, principal_user, expire_at, role)
            subscribe, publish, payload = _legacy(claims)
        except BadSelector as exc:
            raise invalid_token(f"bad topic selector in token: {exc.message}") from None
        grant = subscribe if role == "subscriber" else publish
        return MercureGrant(Principal(principal_user, insecure=self._insecure, grant=grant),
                            subscribe, publish, payload, expire_at=expire_at, generation="0.x")

    def _access(self, claims: Mapping[str, Any], user: str, expire_at: float | None, role: str
                ) -> MercureGrant:
        if expire_at is None:
            raise invalid_token("an access token needs exp")
        if expire_at <= time.time():  # PyJWT checked it too; the clock may have moved
            raise invalid_token("token expired")
        issuers = self.settings.mercure_issuers
        if issuers and claims.get("iss") not in issuers:
            raise invalid_token("the token's issuer is not trusted")
        sub_pairs, pub_pairs, raw_payloads = _details(claims)
        subscribe = (SelectorSet.of(compile_selectors(sub_pairs, limit=MAX_GRANT_SELECTORS))
                     if sub_pairs else None)
        publish = (SelectorSet.of(compile_selectors(pub_pairs, limit=MAX_GRANT_SELECTORS))
                   if pub_pairs else None)
        payloads = tuple((SelectorSet.of(compile_selectors(pairs, limit=MAX_GRANT_SELECTORS)),
                          value) for pairs, value in raw_payloads)
        grant = subscribe if role == "subscriber" else publish
        return MercureGrant(Principal(user, insecure=self._insecure, grant=grant), subscribe,
                            publish, payloads[0][1] if payloads else None, payloads,
                            expire_at=expire_at, generation="1.0")
