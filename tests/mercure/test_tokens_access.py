"""Mercure authorization, 1.0 generation: OAuth access tokens (``typ: at+jwt``, RFC 9068) with
``authorization_details`` (RFC 9396), issuers, audience, and every refusal."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from livehub.protocols.mercure.tokens import ACCESS_TOKEN_COOKIE, MercureAuthError

from .tokens_helpers import (
    BOOK,
    PUB_KEY,
    SUB_KEY,
    access,
    authorizer,
    detail,
    request,
)

BOOKS = {"match": "https://example.com/books/:id", "match_type": "urlpattern"}
NOTES = {"match": "https://example.com/users/42/notifications"}


async def refused(coro: Any) -> MercureAuthError:
    with pytest.raises(MercureAuthError) as info:
        await coro
    return info.value


async def test_subscribe_details_grant_exact_topics_and_url_patterns() -> None:
    token = access(details=[detail(["subscribe"], NOTES, BOOKS, payload={"user": "alice"})])
    grant = await authorizer().subscriber(request(bearer=token))
    assert grant.generation == "1.0"
    assert grant.principal.user == "https://example.com/users/42"
    assert grant.may_receive([BOOK])
    assert grant.may_receive(["https://example.com/users/42/notifications"])
    assert not grant.may_receive(["https://example.com/users/43/notifications",
                                  "https://example.com/books/1/reviews"])
    assert grant.payload == {"user": "alice"}
    assert grant.payload_for(BOOK) == {"user": "alice"}


async def test_the_payload_comes_from_the_first_detail_granting_the_topic() -> None:
    token = access(details=[detail(["subscribe"], NOTES, payload={"ip": "10.0.0.1"}),
                            detail(["subscribe"], BOOKS, payload={"user": "alice"})])
    grant = await authorizer().subscriber(request(bearer=token))
    assert grant.payload_for(BOOK) == {"user": "alice"}
    assert grant.payload_for(NOTES["match"]) == {"ip": "10.0.0.1"}


async def test_the_access_token_cookie() -> None:
    token = access(details=[detail(["subscribe"], {"match": "*"})])
    grant = await authorizer().subscriber(request(cookies={ACCESS_TOKEN_COOKIE: token}))
    assert grant.may_receive(["anything"])


async def test_publish_details_must_cover_every_topic_of_the_update() -> None:
    token = access(PUB_KEY, details=[detail(["publish"], BOOKS, {"match": "urn:news"})])
    grant = await authorizer().publisher(request(bearer=token, method="POST"))
    grant.check_publish([BOOK, "urn:news"])
    with pytest.raises(MercureAuthError) as info:
        grant.check_publish([BOOK, "https://example.com/users/1"])
    assert (info.value.http_status, info.value.error) == (403, "insufficient_scope")


async def test_a_subscribe_only_token_used_to_publish_is_insufficient_scope() -> None:
    token = access(PUB_KEY, details=[detail(["subscribe"], {"match": "*"})])
    grant = await authorizer().publisher(request(bearer=token, method="POST"))
    assert grant.publish is None
    with pytest.raises(MercureAuthError) as info:
        grant.check_publish([BOOK])
    assert (info.value.http_status, info.value.error) == (403, "insufficient_scope")


async def test_one_detail_may_grant_both_actions_and_details_of_other_types_are_ignored() -> None:
    token = access(PUB_KEY, details=[
        {"type": "https://other.example/detail", "actions": "anything", "topics": 3},
        detail(["publish", "subscribe"], {"match": "*"})])
    grant = await authorizer().publisher(request(bearer=token, method="POST"))
    grant.check_publish(["urn:a", BOOK])
    assert grant.subscribe is not None and grant.subscribe.matches("urn:a")


async def test_trusted_issuers_when_set() -> None:
    auth = authorizer(mercure_issuers=("https://example.com", "https://idp.example"))
    good = access(details=[detail(["subscribe"], {"match": "*"})])
    assert (await auth.subscriber(request(bearer=good))).may_receive([BOOK])
    for iss in ("https://evil.example", None):
        bad = access(details=[detail(["subscribe"], {"match": "*"})], iss=iss)
        exc = await refused(auth.subscriber(request(bearer=bad)))
        assert (exc.http_status, exc.error) == (401, "invalid_token")
        assert "issuer" in exc.message


async def test_the_audience_when_set() -> None:
    auth = authorizer(mercure_audience="https://hub.example.com/.well-known/mercure")
    good = access(details=[detail(["subscribe"], {"match": "*"})])
    assert (await auth.subscriber(request(bearer=good))).may_receive([BOOK])
    bad = access(details=[detail(["subscribe"], {"match": "*"})], aud="https://other.example")
    exc = await refused(auth.subscriber(request(bearer=bad)))
    assert (exc.http_status, exc.error) == (401, "invalid_token")


async def test_an_access_token_in_the_url_is_an_invalid_request() -> None:
    token = access(details=[detail(["subscribe"], {"match": "*"})])
    exc = await refused(authorizer().subscriber(request(query={"authorization": [token]})))
    assert (exc.http_status, exc.error) == (400, "invalid_request")
    assert "RFC 9700" in exc.message


def _plain_jwt(details: list[Any]) -> str:
    """The right claims, but a ``JWT`` header instead of ``at+jwt``."""
    return jwt.encode({"authorization_details": details, "exp": int(time.time()) + 60},
                      SUB_KEY, algorithm="HS256")


BAD: dict[str, Any] = {
    "no-typ": lambda: _plain_jwt([detail(["subscribe"], {"match": "*"})]),
    "no-exp": lambda: access(details=[detail(["subscribe"], {"match": "*"})], ttl=None),
    "expired": lambda: access(details=[detail(["subscribe"], {"match": "*"})], ttl=-30),
    "no-details": lambda: access(authorization_details=None),
    "details-not-a-list": lambda: access(authorization_details={"type": "mercure"}),
    "no-actions": lambda: access(details=[{"type": "mercure", "topics": [{"match": "*"}]}]),
    "empty-actions": lambda: access(details=[detail([], {"match": "*"})]),
    "unknown-action": lambda: access(details=[detail(["delete"], {"match": "*"})]),
    "no-topics": lambda: access(details=[detail(["subscribe"])]),
    "bare-string-topic": lambda: access(details=[{"type": "mercure", "actions": ["subscribe"],
                                                  "topics": ["*"]}]),
    "topic-without-match": lambda: access(details=[detail(["subscribe"], {"pattern": "*"})]),
    "unknown-match-type": lambda: access(details=[detail(
        ["subscribe"], {"match": "x", "match_type": "regexp"})]),
    "match-type-is-case-sensitive": lambda: access(details=[detail(
        ["subscribe"], {"match": "x", "match_type": "URLPattern"})]),
    "bad-url-pattern": lambda: access(details=[detail(
        ["subscribe"], {"match": "https://example.com/:id(", "match_type": "urlpattern"})]),
    "forged": lambda: access("wrong-secret-long-enough-for-hs256-0123456789abcdef",
                             details=[detail(["subscribe"], {"match": "*"})]),
}


@pytest.mark.parametrize("name", list(BAD))
async def test_a_bad_access_token_is_401_invalid_token(name: str) -> None:
    exc = await refused(authorizer(mercure_anonymous=True).subscriber(
        request(bearer=BAD[name]())))
    assert (exc.http_status, exc.error) == (401, "invalid_token"), exc.message
    assert exc.headers[0][1].startswith('Bearer realm="mercure", error="invalid_token"')
