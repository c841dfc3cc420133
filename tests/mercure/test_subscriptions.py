"""Active subscriptions: the JSON-LD API and the private subscription events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import httpx

from tests.conftest import API_KEY
from tests.mercure.conftest import DEFAULT_MERCURE, HUB, MercureServer
from tests.sseclient import Event, events, take

SUBS = HUB + "/subscriptions"
KEY = {"X-API-Key": API_KEY}  # the stand-in subscriber credential that allows "*"


def make(make_mercure: Any) -> MercureServer:
    server: MercureServer = make_mercure(replace(DEFAULT_MERCURE, mercure_subscriptions=True))
    return server


async def news_event(events: AsyncIterator[Event]) -> dict[str, Any]:
    """The next subscription event about the selector ``news``."""
    async for event in events:
        doc: dict[str, Any] = json.loads(event.data)
        if doc.get("topic") == "news":
            return doc
    raise AssertionError("stream ended")


async def test_events_and_api(make_mercure: Any) -> None:
    hub = make(make_mercure)
    async with httpx.AsyncClient(timeout=5) as http, http.stream(
            "GET", hub.url + HUB, headers=KEY, params={"topic": "*"}) as watcher:
        seen = events(watcher)
        async with http.stream("GET", hub.url + HUB, params={"topic": "news"}):
            doc = await news_event(seen)
            listing = (await http.get(hub.url + SUBS, headers=KEY)).json()
            one = (await http.get(hub.url + SUBS + "/" + quote("news", safe=""),
                                  headers=KEY)).json()
        closed = await news_event(seen)
    assert doc["type"] == "Subscription" and doc["topic"] == "news" and doc["active"] is True
    assert doc["subscriber"].startswith("urn:uuid:")
    assert doc["id"] == f"{SUBS}/news/{quote(doc['subscriber'], safe='')}"
    assert closed["active"] is False and closed["subscriber"] == doc["subscriber"]
    # the API lists the watcher (its selector) and the news subscriber
    assert listing["type"] == "Subscriptions" and listing["@context"] == "https://mercure.rocks/"
    assert sorted(s["topic"] for s in listing["subscriptions"]) == ["*", "news"]
    assert [s["subscriber"] for s in one["subscriptions"]] == [doc["subscriber"]]
    assert listing["lastEventID"].startswith("#")


def test_api_refusals(make_mercure: Any, hub: MercureServer) -> None:
    with_api = make(make_mercure)
    assert httpx.get(with_api.url + SUBS, timeout=5).status_code == 403  # no grant
    assert httpx.get(with_api.url + SUBS + "/news/nobody", headers=KEY,
                     timeout=5).status_code == 404
    assert httpx.get(hub.url + SUBS, headers=KEY, timeout=5).status_code == 404  # off


def test_publishers_cannot_forge_hub_topics(hub: MercureServer) -> None:
    r = hub.mercure_publish(SUBS + "/news/x", data="{}")
    assert r.status_code == 403
    r = hub.mercure_publish("https://example.com/.well-known/mercure/subscriptions", data="")
    assert r.status_code == 403


async def test_anonymous_subscribers_do_not_see_subscription_events(make_mercure: Any) -> None:
    hub = make(make_mercure)
    async with httpx.AsyncClient(timeout=5) as http, http.stream(
            "GET", hub.url + HUB, params={"topic": "*"}) as r:
        async with http.stream("GET", hub.url + HUB, params={"topic": "x"}):
            pass
        await asyncio.to_thread(hub.mercure_publish, "x", data="only this")
        [got] = await take(r, 1)
    assert got.data == "only this"
