"""Private updates and publishers' rights with real tokens of both generations, end to end:
a private update reaches the subscribers whose token allows one of its topics (URI templates,
URL patterns), never the others; a publisher publishes to the topics its token allows."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.mercure.conftest import HUB, MercureServer
from tests.mercure.tokens_helpers import PUB_KEY, SUB_KEY, access, detail, legacy
from tests.sseclient import take

B1 = "https://example.com/books/1"
B2 = "https://example.com/books/2"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_private_updates_reach_allowed_subscribers_only(hub: MercureServer) -> None:
    old = legacy(SUB_KEY, subscribe=["https://example.com/books/{id}"])
    new = access(SUB_KEY, aud=None, details=[
        detail(["subscribe"], {"match": "https://example.com/books/:id",
                               "match_type": "urlpattern"})])
    async with httpx.AsyncClient(timeout=5) as http, \
            http.stream("GET", hub.url + HUB, params={"topic": "https://example.com/books/{id}"},
                        headers=bearer(old)) as r_old, \
            http.stream("GET", hub.url + HUB,
                        params={"match_urlpattern": "https://example.com/books/:id"},
                        headers=bearer(new)) as r_new, \
            http.stream("GET", hub.url + HUB, params={"match": B1}) as r_anonymous:
        await asyncio.to_thread(hub.mercure_publish, B1, data="private 1", private="on")
        await asyncio.to_thread(hub.mercure_publish, B2, data="public 2")
        got_old, got_new = await take(r_old, 2), await take(r_new, 2)
        await asyncio.to_thread(hub.mercure_publish, B1, data="public 1")
        [anonymous] = await take(r_anonymous, 1)
    assert [e.data for e in got_old] == [e.data for e in got_new] == ["private 1", "public 2"]
    assert anonymous.data == "public 1"


async def test_publishers_rights_come_from_their_token(hub: MercureServer) -> None:
    publisher = legacy(PUB_KEY, publish=["https://example.com/books/{id}"])
    async with httpx.AsyncClient(timeout=5) as http:
        ok = await http.post(hub.url + HUB, content=f"topic={B1}&data=x",
                             headers={**FORM, **bearer(publisher)})
        other = await http.post(hub.url + HUB, content="topic=https://example.com/x&data=x",
                                headers={**FORM, **bearer(publisher)})
        subscriber = await http.post(hub.url + HUB, content=f"topic={B1}&data=x",
                                     headers={**FORM, **bearer(legacy(SUB_KEY,
                                                                     publish=["*"]))})
        nothing = await http.post(hub.url + HUB, content=f"topic={B1}&data=x", headers=FORM)
    assert ok.status_code == 200 and ok.text.startswith("urn:uuid:")
    assert other.status_code == 403
    assert 'error="insufficient_scope"' in other.headers["www-authenticate"]
    assert subscriber.status_code == 401  # signed with the subscriber key
    assert 'error="invalid_token"' in subscriber.headers["www-authenticate"]
    assert nothing.status_code == 401 and nothing.headers["www-authenticate"].startswith(
        "Bearer")


async def test_refused_subscriber_token_leaves_others_alone(hub: MercureServer) -> None:
    async with httpx.AsyncClient(timeout=5) as http, http.stream(
            "GET", hub.url + HUB, params={"topic": B1}) as r:
        bad = await http.get(hub.url + HUB, params={"topic": B1},
                             headers=bearer(legacy(PUB_KEY, subscribe=["*"])))
        assert bad.status_code == 401
        await asyncio.to_thread(hub.mercure_publish, B1, data="still here")
        [got] = await take(r, 1)
    assert got.data == "still here"


async def test_a_stream_ends_when_its_token_expires(make_mercure: Any) -> None:
    hub: MercureServer = make_mercure(heartbeat_interval=0.2)
    token = legacy(SUB_KEY, ttl=3, subscribe=[B1])
    async with httpx.AsyncClient(timeout=10) as http, http.stream(
            "GET", hub.url + HUB, params={"topic": B1}, headers=bearer(token)) as r:
        got = await take(r, 1)
    assert got[0].event == "disconnect" and json.loads(got[0].data)["code"] == 3005
