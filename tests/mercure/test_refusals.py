"""What the Mercure hub refuses, with the status the spec gives; other clients unaffected."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from livehub.core.limits import Limits
from tests.conftest import API_KEY
from tests.mercure.conftest import HUB, MercureServer
from tests.sseclient import take

BOOK1 = "https://example.com/books/1"
FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize("params", [
    {},
    {"matchFoo": "x"},
    {"match_regex": BOOK1},
    {"MATCH_exact2": BOOK1},
    {"topic": "a\x01b"},
    {"match": ""},
    {"topic": BOOK1, "match_bogus": "x"},
])
def test_bad_subscriptions_get_400(hub: MercureServer, params: dict[str, str]) -> None:
    r = httpx.get(hub.url + HUB, params=params, timeout=5)
    assert r.status_code == 400, r.text


def test_too_many_selectors_get_400(hub: MercureServer) -> None:
    params = [("topic", f"t{i}") for i in range(65)]
    r = httpx.get(hub.url + HUB, params=params, timeout=5)
    assert r.status_code == 400 and "at most 64" in r.text


@pytest.mark.parametrize(("body", "message"), [
    (b"data=x", "missing topic"),
    (b"topic=a&data=x&colour=red", "unknown field"),
    (b"topic=a&data=x&data=y", "at most once"),
    (b"topic=a&id=%23frag", "must not start with '#'"),
    (b"topic=a&id=a%0Ab", "CR, LF"),
    (b"topic=a&type=a%0Db", "CR, LF"),
    (b"topic=a&retry=12a", "digits"),
    (b"topic=a&retry=%EF%BC%91", "digits"),
    (b"topic=a&data=%FF%FE", "UTF-8"),
    (b"topic=a%01b", "control characters"),
])
def test_malformed_forms_get_400(hub: MercureServer, body: bytes, message: str) -> None:
    r = httpx.post(hub.url + HUB, content=body,
                   headers={"Content-Type": FORM, "X-API-Key": API_KEY}, timeout=5)
    assert r.status_code == 400 and message in r.text, r.text


def test_publish_needs_a_form(hub: MercureServer) -> None:
    r = httpx.post(hub.url + HUB, json={"topic": "a"}, headers={"X-API-Key": API_KEY},
                   timeout=5)
    assert r.status_code == 400 and "x-www-form-urlencoded" in r.text


def test_publish_without_credentials_is_refused(hub: MercureServer) -> None:
    r = httpx.post(hub.url + HUB, data={"topic": "a", "data": "x"}, timeout=5)
    assert r.status_code in (401, 403)


def test_oversized_body_and_data_get_413(make_mercure: object) -> None:
    hub: MercureServer = make_mercure(max_body=4096)  # type: ignore[operator]
    r = httpx.post(hub.url + HUB, content=b"topic=a&data=" + b"x" * 5000,
                   headers={"Content-Type": FORM, "X-API-Key": API_KEY}, timeout=5)
    assert r.status_code == 413
    small: MercureServer = make_mercure(limits=Limits(max_publication_size=100))  # type: ignore[operator]
    r = httpx.post(small.url + HUB, content=b"topic=a&data=" + b"x" * 200,
                   headers={"Content-Type": FORM, "X-API-Key": API_KEY}, timeout=5)
    assert r.status_code == 413


def test_topic_too_long_for_a_channel_gets_400(hub: MercureServer) -> None:
    r = hub.mercure_publish("https://example.com/" + "x" * 300, data="x")
    assert r.status_code == 400 and "255" in r.text


async def test_other_subscribers_do_not_notice(hub: MercureServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", hub.url + HUB, params={"topic": "*"}) as r:
        bad = await client.post(hub.url + HUB, content=b"topic=a&nope=1",
                                headers={"Content-Type": FORM, "X-API-Key": API_KEY})
        assert bad.status_code == 400
        await asyncio.to_thread(hub.mercure_publish, "a", data="fine")
        [got] = await take(r, 1)
    assert got.data == "fine"
