"""Mercure authorization, 0.x generation (``mercure`` claim) and what both generations share:
where the token comes from, the RFC 6750 answers, every refusal."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livehub.protocols.mercure.tokens import (
    ACCESS_TOKEN_COOKIE,
    LEGACY_COOKIE,
    MAX_TOKEN_LENGTH,
    MercureAuthError,
    MercureAuthorizer,
    challenge,
)
from livehub.transports.http import Request
from livehub.transports.messages import error_response

from .tokens_helpers import (
    BOOK,
    EC_KEY,
    ORIGIN,
    OTHER_KEY,
    PUB_KEY,
    RSA_KEY,
    SUB_KEY,
    authorizer,
    b64,
    legacy,
    pem,
    request,
    unsigned,
)

READER = legacy(subscribe=["https://example.com/books/{id}"], payload={"user": "alice"})


async def refused(coro: object) -> MercureAuthError:
    with pytest.raises(MercureAuthError) as info:
        await coro  # type: ignore[misc]
    return info.value


def challenge_of(exc: MercureAuthError) -> str:
    return dict(error_response(exc).headers)["www-authenticate"]


# -- where the token comes from -------------------------------------------------------------


async def test_a_bearer_header_grants_its_subscribe_selectors() -> None:
    grant = await authorizer().subscriber(request(bearer=READER))
    assert grant.generation == "0.x"
    assert grant.may_receive(["https://example.com/other", BOOK])
    assert not grant.may_receive(["https://example.com/users/1"])
    assert grant.payload == {"user": "alice"}
    assert grant.expire_at is not None and grant.expire_at > time.time()


async def test_the_authorization_query_parameter_carries_a_0x_token() -> None:
    grant = await authorizer().subscriber(request(query={"authorization": [READER]}))
    assert grant.may_receive([BOOK])


@pytest.mark.parametrize("name", [LEGACY_COOKIE, ACCESS_TOKEN_COOKIE])
@pytest.mark.parametrize("origin", [None, ORIGIN])
async def test_a_cookie_counts_without_origin_or_from_the_same_origin(
        name: str, origin: str | None) -> None:
    grant = await authorizer().subscriber(request(cookies={name: READER}, origin=origin))
    assert grant.may_receive([BOOK])


async def test_a_cookie_from_another_site_is_ignored() -> None:
    evil = request(cookies={LEGACY_COOKIE: READER}, origin="https://evil.example")
    exc = await refused(authorizer().subscriber(evil))
    assert exc.http_status == 401 and exc.error is None
    anonymous = await authorizer(mercure_anonymous=True).subscriber(evil)
    assert not anonymous.may_receive([BOOK])  # public updates only


async def test_a_cookie_from_an_allowed_origin_counts_but_never_through_star() -> None:
    partner = request(cookies={LEGACY_COOKIE: READER}, origin="https://app.example")
    grant = await authorizer(allowed_origins=("https://app.example",)).subscriber(partner)
    assert grant.may_receive([BOOK])
    await refused(authorizer(allowed_origins=("*",)).subscriber(partner))


async def test_the_header_wins_over_a_cookie_the_browser_attached() -> None:
    both = request(bearer=READER, cookies={LEGACY_COOKIE: legacy(OTHER_KEY)})
    assert (await authorizer().subscriber(both)).may_receive([BOOK])


async def test_a_token_in_the_header_and_the_query_is_an_invalid_request() -> None:
    exc = await refused(authorizer().subscriber(
        request(bearer=READER, query={"authorization": [READER]})))
    assert (exc.http_status, exc.error) == (400, "invalid_request")
    assert 'error="invalid_request"' in challenge_of(exc)


async def test_two_query_tokens_are_an_invalid_request() -> None:
    exc = await refused(authorizer().subscriber(
        request(query={"authorization": [READER, READER]})))
    assert (exc.http_status, exc.error) == (400, "invalid_request")


async def test_an_authorization_header_of_another_scheme_is_an_invalid_request() -> None:
    exc = await refused(authorizer().subscriber(
        request(headers={"authorization": "Basic dXNlcjpwYXNz"})))
    assert (exc.http_status, exc.error) == (400, "invalid_request")


async def test_the_bearer_scheme_is_case_insensitive() -> None:
    grant = await authorizer().subscriber(request(headers={"authorization": f"bearer {READER}"}))
    assert grant.may_receive([BOOK])


# -- without a token --------------------------------------------------------------------------


async def test_a_subscriber_without_a_token_gets_a_bare_challenge() -> None:
    exc = await refused(authorizer().subscriber(request()))
    assert exc.http_status == 401 and exc.error is None
    assert challenge_of(exc) == 'Bearer realm="mercure", error_description="a subscriber ' \
                                'token is required"'
    assert "error=" not in challenge_of(exc).replace("error_description", "")


async def test_anonymous_subscribers_receive_public_updates_only() -> None:
    grant = await authorizer(mercure_anonymous=True).subscriber(request())
    assert grant.generation == "" and grant.subscribe is None
    assert not grant.may_receive([BOOK])


async def test_a_publisher_always_needs_a_token_even_with_anonymous_subscribers() -> None:
    exc = await refused(authorizer(mercure_anonymous=True).publisher(request(method="POST")))
    assert exc.http_status == 401 and exc.error is None


async def test_development_mode_grants_everything_without_a_token() -> None:
    auth = authorizer(insecure=True)
    assert (await auth.subscriber(request())).may_receive([BOOK])
    (await auth.publisher(request(method="POST"))).check_publish([BOOK, "anything"])


# -- publishing ---------------------------------------------------------------------------------


async def test_a_publisher_may_publish_to_the_topics_its_selectors_match() -> None:
    token = legacy(PUB_KEY, publish=["https://example.com/books/{id}", "urn:news"])
    grant = await authorizer().publisher(request(bearer=token, method="POST"))
    grant.check_publish([BOOK])
    grant.check_publish([BOOK, "urn:news"])
    exc = await refused_sync(lambda: grant.check_publish([BOOK, "https://example.com/users/1"]))
    assert (exc.http_status, exc.error) == (403, "insufficient_scope")
    assert "https://example.com/users/1" in exc.message


async def test_a_star_publisher_may_publish_anywhere() -> None:
    grant = await authorizer().publisher(request(bearer=legacy(PUB_KEY, publish=["*"])))
    grant.check_publish(["urn:a", BOOK, "chat"])


async def test_a_subscriber_token_used_to_publish_is_insufficient_scope() -> None:
    same_key = authorizer(mercure_publisher_jwt_key=SUB_KEY)
    grant = await same_key.publisher(request(bearer=READER, method="POST"))
    exc = await refused_sync(lambda: grant.check_publish([BOOK]))
    assert (exc.http_status, exc.error) == (403, "insufficient_scope")
    assert 'error="insufficient_scope"' in challenge_of(exc)


async def test_a_token_signed_with_the_subscriber_key_cannot_publish() -> None:
    exc = await refused(authorizer().publisher(
        request(bearer=legacy(SUB_KEY, publish=["*"]), method="POST")))
    assert (exc.http_status, exc.error) == (401, "invalid_token")


async def test_without_a_publisher_key_no_token_can_publish() -> None:
    auth = authorizer(mercure_publisher_jwt_key=None)
    exc = await refused(auth.publisher(request(bearer=legacy(PUB_KEY, publish=["*"]))))
    assert (exc.http_status, exc.error) == (401, "invalid_token")
    assert "no publisher key" in exc.message


async def refused_sync(call: object) -> MercureAuthError:
    with pytest.raises(MercureAuthError) as info:
        call()  # type: ignore[operator]
    return info.value


# -- every bad token ---------------------------------------------------------------------------

BAD = {
    "forged": legacy(OTHER_KEY, subscribe=["*"]),
    "expired": legacy(ttl=-30, subscribe=["*"]),
    "alg-none": unsigned(mercure={"subscribe": ["*"]}),
    "other-hmac-algorithm": legacy(alg="HS384", subscribe=["*"]),
    "malformed": "not.a.token",
    "garbage": "x",
    "no-mercure-claim": jwt.encode({"sub": "42"}, SUB_KEY, algorithm="HS256"),
    "mercure-claim-not-an-object": jwt.encode({"mercure": ["*"]}, SUB_KEY, algorithm="HS256"),
    "subscribe-not-an-array": legacy(subscribe="*"),
    "subscribe-not-strings": legacy(subscribe=[1]),
    "bad-template-in-claim": legacy(subscribe=["https://example.com/{"]),
    "too-many-selectors": legacy(subscribe=[f"urn:{i}" for i in range(257)]),
    "too-long": "a" * (MAX_TOKEN_LENGTH + 1),
}


async def test_a_token_not_yet_valid_is_401_invalid_token() -> None:
    early = jwt.encode({"mercure": {"subscribe": ["*"]}, "nbf": int(time.time()) + 600},
                       SUB_KEY, algorithm="HS256")
    exc = await refused(authorizer(mercure_anonymous=True).subscriber(request(bearer=early)))
    assert (exc.http_status, exc.error) == (401, "invalid_token")


@pytest.mark.parametrize("name", list(BAD))
async def test_a_bad_token_is_401_invalid_token(name: str) -> None:
    exc = await refused(authorizer(mercure_anonymous=True).subscriber(request(bearer=BAD[name])))
    assert (exc.http_status, exc.error) == (401, "invalid_token"), exc.message
    assert challenge_of(exc).startswith('Bearer realm="mercure", error="invalid_token"')
    assert exc.message


async def test_a_bad_token_in_a_cookie_is_refused_too_not_taken_as_anonymous() -> None:
    exc = await refused(authorizer(mercure_anonymous=True).subscriber(
        request(cookies={LEGACY_COOKIE: BAD["forged"]})))
    assert (exc.http_status, exc.error) == (401, "invalid_token")


async def test_the_audience_is_checked_when_set() -> None:
    auth = authorizer(mercure_audience="https://hub.example.com/.well-known/mercure")
    no_aud = legacy(subscribe=["*"])
    wrong = jwt.encode({"mercure": {"subscribe": ["*"]}, "aud": "https://other.example"},
                       SUB_KEY, algorithm="HS256")
    right = jwt.encode({"mercure": {"subscribe": ["*"]},
                        "aud": ["x", "https://hub.example.com/.well-known/mercure"]},
                       SUB_KEY, algorithm="HS256")
    for token in (no_aud, wrong):
        exc = await refused(auth.subscriber(request(bearer=token)))
        assert (exc.http_status, exc.error) == (401, "invalid_token")
    assert (await auth.subscriber(request(bearer=right))).may_receive([BOOK])


async def test_rsa_and_ecdsa_keys() -> None:
    for alg, key in (("RS256", RSA_KEY), ("ES256", EC_KEY)):
        auth = authorizer(mercure_jwt_algorithm=alg, mercure_subscriber_jwt_key=pem(key),
                          mercure_publisher_jwt_key=None)
        token = legacy(key, alg=alg, subscribe=["*"])  # type: ignore[arg-type]
        assert (await auth.subscriber(request(bearer=token))).may_receive([BOOK])
        exc = await refused(auth.subscriber(request(bearer=legacy(subscribe=["*"]))))
        assert (exc.http_status, exc.error) == (401, "invalid_token")


async def test_an_hmac_token_signed_with_the_public_key_is_refused() -> None:
    public = pem(RSA_KEY)
    auth = authorizer(mercure_jwt_algorithm="RS256", mercure_subscriber_jwt_key=public,
                      mercure_publisher_jwt_key=None)
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"mercure": {"subscribe": ["*"]}}).encode())
    mac = hmac.new(public.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    exc = await refused(auth.subscriber(request(bearer=f"{head}.{body}.{b64(mac)}")))
    assert (exc.http_status, exc.error) == (401, "invalid_token")


def test_the_challenge_never_breaks_its_quoting() -> None:
    value = challenge("invalid_token", 'bad "quote" \\ and\nnewline é')
    assert value == ('Bearer realm="mercure", error="invalid_token", '
                     'error_description="bad ?quote? ? and?newline ?"')


def test_a_request_without_any_credential_has_no_token() -> None:
    auth: MercureAuthorizer = authorizer()
    assert auth.token(Request("GET", "/.well-known/mercure", {}, {})) is None


async def test_identical_grants_of_two_tokens_share_one_selector_set() -> None:
    first = await authorizer().subscriber(request(bearer=READER))
    second = await authorizer().subscriber(request(bearer=legacy(
        subscribe=["https://example.com/books/{id}"])))
    assert first.subscribe is not None and first.subscribe is second.subscribe


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_as_a_token_is_a_401_never_a_crash(text: str) -> None:
    auth = authorizer(mercure_anonymous=True)
    for req in (request(query={"authorization": [text]}),
                request(headers={"authorization": f"Bearer {text}"})):
        try:
            asyncio.run(auth.subscriber(req))
        except MercureAuthError as exc:
            assert exc.http_status in (400, 401)
        else:  # only "no token at all" is anonymous: an empty or blank header value
            assert not text.strip()


async def test_the_server_api_key_grants_both_roles_everything() -> None:
    auth = authorizer(api_key="the-api-key")
    keyed = request(headers={"x-api-key": "the-api-key"}, method="POST")
    (await auth.publisher(keyed)).check_publish([BOOK, "urn:anything"])
    assert (await auth.subscriber(keyed)).may_receive(["urn:private"])


@pytest.mark.parametrize("configured", ["the-api-key", None])
async def test_a_wrong_api_key_is_401(configured: str | None) -> None:
    auth = authorizer(api_key=configured, mercure_anonymous=True)
    wrong = request(headers={"x-api-key": "guess"}, method="POST")
    for call in (auth.publisher, auth.subscriber):
        exc = await refused(call(wrong))
        assert exc.http_status == 401 and "API key" in exc.message


async def test_grants_with_identical_selectors_have_one_receiver_key() -> None:
    first = await authorizer().subscriber(request(bearer=READER))
    second = await authorizer().subscriber(request(bearer=legacy(
        subscribe=["https://example.com/books/{id}"], payload=["another", "payload"])))
    other = await authorizer().subscriber(request(bearer=legacy(subscribe=["*"])))
    assert first.receiver_key == second.receiver_key != other.receiver_key
    assert len({first, second}) == 2  # hashable whatever the payload holds
