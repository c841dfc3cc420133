"""One channel, every client: a Mercure update reaches ``/events``, raw ``/ws`` and the
Centrifugo SDK (centrifuge-python) subscribers of its channel; a server API publication to a
channel reaches the Mercure subscribers whose selectors match its topic."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import websockets
from centrifuge import Client, PublicationContext, SubscriptionEventHandler

from livehub.protocols.centrifugo import CentrifugoSettings
from tests.mercure.conftest import HUB, MercureServer
from tests.sseclient import take

B1 = "https://example.com/books/1"


class Pubs(SubscriptionEventHandler):
    def __init__(self) -> None:
        self.pubs: asyncio.Queue[PublicationContext] = asyncio.Queue()

    async def on_publication(self, ctx: PublicationContext) -> None:
        await self.pubs.put(ctx)


async def test_mercure_update_reaches_every_protocol(make_mercure: Any) -> None:
    hub: MercureServer = make_mercure(centrifugo=CentrifugoSettings(client_anonymous=True))
    events = Pubs()
    client = Client(hub.ws_url + "/connection/websocket")
    sub = client.new_subscription("books:1", events=events)
    await client.connect()
    await sub.subscribe()
    try:
        async with httpx.AsyncClient(timeout=5) as http, http.stream(
                "GET", hub.url + "/events", params={"channel": "books:1"}) as sse, \
                websockets.connect(hub.ws_url + "/ws?channel=books:1") as ws:
            answer = await asyncio.to_thread(hub.mercure_publish, B1, "https://example.com/x",
                                             data='{"title":"Dune"}')
            assert answer.status_code == 200
            [event] = await take(sse, 1)
            raw = await asyncio.wait_for(ws.recv(), 5)
            pub = await asyncio.wait_for(events.pubs.get(), 5)
    finally:
        await client.disconnect()
    assert event.data == raw == '{"title":"Dune"}'
    assert pub.pub.data == '{"title":"Dune"}'


async def test_server_api_publication_reaches_mercure(hub: MercureServer) -> None:
    async with httpx.AsyncClient(timeout=5) as http, http.stream(
            "GET", hub.url + HUB, params={"topic": B1}) as r:
        await asyncio.to_thread(hub.publish, "books:2", "not this one")
        await asyncio.to_thread(hub.publish, "books:1", {"via": "api"}, "update")
        [got] = await take(r, 1)
    assert (got.data, got.event) == ('{"via":"api"}', "update")


async def test_private_channel_publication_is_a_private_update(hub: MercureServer) -> None:
    async with httpx.AsyncClient(timeout=5) as http, http.stream(
            "GET", hub.url + HUB, params={"topic": B1}) as r:
        await asyncio.to_thread(hub.publish, "books:$1", "private via api")
        await asyncio.to_thread(hub.publish, "books:1", "public via api")
        [got] = await take(r, 1)
    assert got.data == "public via api"
