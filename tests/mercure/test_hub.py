"""The Mercure hub with real HTTP clients (httpx): subscribe, publish, ids, selectors."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from livehub.app import App
from livehub.core.channels import Namespaces, public_options
from livehub.core.limits import Limits
from livehub.core.memory import MemoryBroker
from livehub.core.node import Node
from livehub.errors import ConfigError
from livehub.protocols.mercure import MercureSettings
from livehub.transports.context import ServerSettings
from tests.mercure.conftest import DEFAULT_MERCURE, HUB, MercureServer
from tests.sseclient import take

BOOK1 = "https://example.com/books/1"
BOOK2 = "https://example.com/books/2"


async def test_publish_then_receive_with_the_returned_id(hub: MercureServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", hub.url + HUB, params={"topic": BOOK1}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["last-event-id"] == "earliest"  # nothing published yet
        answer = await asyncio.to_thread(hub.mercure_publish, BOOK1, data='{"title":"A"}',
                                         type="book", retry="1500")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        assert answer.text.startswith("urn:uuid:")
        [got] = await take(r, 1)
    assert (got.data, got.event, got.id) == ('{"title":"A"}', "book", answer.text)


async def test_publisher_id_kept_and_stream_starts_with_retry(hub: MercureServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", hub.url + HUB, params={"match": BOOK1}) as r:
        lines = r.aiter_lines()
        assert [await anext(lines), await anext(lines)] == ["retry: 2000", ""]
        answer = await asyncio.to_thread(hub.mercure_publish, BOOK1, data="x", id="rev-7")
        assert answer.text == "rev-7"
        rest = []
        while "" not in rest[1:] or not any(x.startswith("data") for x in rest):
            rest.append(await anext(lines))
    assert "id: rev-7" in rest and "data: x" in rest


async def test_several_selectors_and_topics_deliver_once(hub: MercureServer) -> None:
    params = [("topic", BOOK1), ("topic", BOOK2), ("match", "https://example.com/other")]
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", hub.url + HUB, params=params) as r:
        await asyncio.to_thread(hub.mercure_publish, BOOK1, BOOK2, data="both")
        await asyncio.to_thread(hub.mercure_publish, "https://example.com/unrelated",
                                data="no")
        await asyncio.to_thread(hub.mercure_publish, "https://example.com/other", data="o")
        got = await take(r, 2)
    assert [e.data for e in got] == ["both", "o"]


async def test_star_receives_everything_including_server_api(hub: MercureServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", hub.url + HUB, params={"topic": "*"}) as r:
        await asyncio.to_thread(hub.mercure_publish, "news", data="m1")
        await asyncio.to_thread(hub.publish, "books:7", "from the api", "update")
        got = await take(r, 2)
    assert [(e.data, e.event) for e in got] == [("m1", "message"), ("from the api", "update")]
    assert got[1].id.startswith("#")  # no Mercure id: the hub's position id


async def test_private_update_not_sent_to_anonymous(hub: MercureServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", hub.url + HUB, params={"topic": BOOK1}) as r:
        await asyncio.to_thread(hub.mercure_publish, BOOK1, data="secret", private="on")
        await asyncio.to_thread(hub.mercure_publish, BOOK1, data="public")
        [got] = await take(r, 1)
    assert got.data == "public"


async def test_mercure_update_reaches_events_subscriber(hub: MercureServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", hub.url + "/events", params={"channel": "books:1"}) as r:
        await asyncio.to_thread(hub.mercure_publish, BOOK1, data="to events", type="book")
        [got] = await take(r, 1)
    assert (got.data, got.event) == ("to events", "book")


async def test_private_update_goes_to_the_private_channel(hub: MercureServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        await asyncio.to_thread(hub.mercure_publish, BOOK1, data="secret", private="on")
        r = await client.post(hub.url + "/api/history", json={"channel": "books:$1", "limit": 10},
                              headers={"X-API-Key": hub.api_key})
        assert [p["data"] for p in r.json()["result"]["publications"]] == ["secret"]
        refused = await client.get(hub.url + "/events", params={"channel": "books:$1"})
    assert refused.status_code == 403  # the permission model keeps it private


async def test_resume_by_update_id_replays_in_order_then_live(hub: MercureServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        async with client.stream("GET", hub.url + HUB, params={"topic": BOOK1}) as r:
            await asyncio.to_thread(hub.mercure_publish, BOOK1, data="m0")
            [first] = await take(r, 1)
        for i in range(1, 4):
            await asyncio.to_thread(hub.mercure_publish, BOOK1, data=f"m{i}")
            await asyncio.to_thread(hub.mercure_publish, BOOK2, data=f"other{i}")
        async with client.stream("GET", hub.url + HUB, params={"topic": BOOK1},
                                 headers={"Last-Event-ID": first.id}) as r:
            assert r.headers["last-event-id"] == first.id
            await asyncio.to_thread(hub.mercure_publish, BOOK1, data="m4")
            rest = await take(r, 4)
    assert [e.data for e in rest] == ["m1", "m2", "m3", "m4"]


async def test_resume_earliest_and_query_parameter(hub: MercureServer) -> None:
    for i in range(3):
        await asyncio.to_thread(hub.mercure_publish, BOOK1, data=f"m{i}")
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", hub.url + HUB, params={"topic": BOOK1, "last_event_id": "earliest"}) as r:
        assert r.headers["last-event-id"] == "earliest"
        got = await take(r, 3)
    assert [e.data for e in got] == ["m0", "m1", "m2"]


async def test_unknown_last_event_id_says_reset_then_live(hub: MercureServer) -> None:
    await asyncio.to_thread(hub.mercure_publish, BOOK1, data="old")
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", hub.url + HUB, params={"topic": BOOK1},
            headers={"Last-Event-ID": "urn:uuid:not-in-history"}) as r:
        assert r.headers["last-event-id"] == "earliest"
        await asyncio.to_thread(hub.mercure_publish, BOOK1, data="new")
        got = await take(r, 2)
    assert got[0].event == "reset" and "history" in json.loads(got[0].data)["reason"]
    assert got[1].data == "new"


async def test_checkpoint_id_resumes_without_a_gap(hub: MercureServer) -> None:
    """A subscriber that saw no update yet resumes from its checkpoint id."""
    async with httpx.AsyncClient(timeout=5) as client:
        async with client.stream("GET", hub.url + HUB, params={"topic": BOOK1}) as r:
            position = r.headers["last-event-id"]
        await asyncio.to_thread(hub.mercure_publish, BOOK1, data="while away")
        async with client.stream("GET", hub.url + HUB, params={"topic": BOOK1},
                                 headers={"Last-Event-ID": position}) as r:
            [got] = await take(r, 1)
    assert got.data == "while away"


def test_pages_carry_the_discovery_link(hub: MercureServer) -> None:
    r = httpx.get(hub.url + "/", timeout=5)
    assert r.headers["link"] == '</.well-known/mercure>; rel="mercure"'
    assert "link" not in httpx.get(hub.url + "/health", timeout=5).headers


def test_discovery_link_is_configurable(make_mercure: object) -> None:
    off: MercureServer = make_mercure(replace(DEFAULT_MERCURE, mercure_discovery=False))  # type: ignore[operator]
    assert "link" not in httpx.get(off.url + "/", timeout=5).headers
    moved: MercureServer = make_mercure(replace(  # type: ignore[operator]
        DEFAULT_MERCURE, mercure_hub_url="https://hub.example.com/.well-known/mercure"))
    assert httpx.get(moved.url + "/", timeout=5).headers["link"] == (
        '<https://hub.example.com/.well-known/mercure>; rel="mercure"')


async def test_unconfigured_namespaces_are_config_errors() -> None:
    node = Node(MemoryBroker(), Namespaces(public_options(), {}))
    with pytest.raises(ConfigError, match="namespace 'mercure'"):
        App.create(node, ServerSettings(), mercure=MercureSettings(mercure=True))
    with pytest.raises(ConfigError, match="mercure_journal"):
        App.create(node, ServerSettings(), mercure=MercureSettings(
            mercure=True, mercure_namespace="", mercure_journal="nowhere:$j"))


async def test_non_ascii_update_id_resumes_and_header_stays_ascii(hub: MercureServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        await asyncio.to_thread(hub.mercure_publish, BOOK1, data="m0", id="livre-é")
        await asyncio.to_thread(hub.mercure_publish, BOOK1, data="m1")
        async with client.stream("GET", hub.url + HUB,
                                 params={"topic": BOOK1, "last_event_id": "livre-é"}) as r:
            assert r.headers["last-event-id"].startswith("#")  # the same place, as a position
            [got] = await take(r, 1)
    assert got.data == "m1"


async def test_resume_beyond_the_budget_is_a_reset(make_mercure: Any) -> None:
    hub: MercureServer = make_mercure(limits=Limits(resume_max_publications=2))
    first = await asyncio.to_thread(hub.mercure_publish, BOOK1, data="m0")
    for i in range(1, 5):
        await asyncio.to_thread(hub.mercure_publish, BOOK1, data=f"m{i}")
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", hub.url + HUB, params={"topic": BOOK1},
            headers={"Last-Event-ID": first.text}) as r:
        await asyncio.to_thread(hub.mercure_publish, BOOK1, data="live")
        got = await take(r, 2)
    assert [e.event for e in got] == ["reset", "message"] and got[1].data == "live"


def test_head_gets_the_stream_head_only(hub: MercureServer) -> None:
    r = httpx.head(hub.url + HUB, params={"topic": BOOK1}, timeout=5)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.content == b""
