"""The public Python API: ``livehub.Hub`` (publish, history, presence, ``hub.serve``) and
``livehub.Client`` / ``AsyncClient`` against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from centrifuge import Client as CfClient
from centrifuge import SubscribedContext, SubscriptionEventHandler

import livehub
from livehub.config import Config
from livehub.core.auth import AuthSettings
from livehub.core.channels import Namespaces, public_options
from livehub.errors import BadChannel, CommandError, Unauthorized, Unavailable, UnknownNamespace
from livehub.transports.context import ServerSettings

from ..redis_server import RedisServer
from ..sseclient import take

API_KEY = "library-key"


def config(**server: object) -> Config:
    settings = ServerSettings(api_key=API_KEY, clock=False, echo=False, port=0, **server)
    namespaces = Namespaces(public_options(), {
        "room": public_options(presence=True, client_publish=True)})
    return Config(settings, namespaces, auth=AuthSettings(client_insecure=True))


def test_import_livehub_is_cheap() -> None:
    """``import livehub`` loads no server module; a public name loads what it needs."""
    code = ("import sys, livehub; assert 'livehub.app' not in sys.modules, sorted(sys.modules);"
            "livehub.Client; assert 'livehub.app' not in sys.modules;"
            "livehub.Hub; assert 'livehub.app' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


async def test_publish_json_text_binary_then_history() -> None:
    async with livehub.Hub(config=config()) as hub:
        first = await hub.publish("news", {"title": "hi"})
        await hub.publish("news", "plain text", event="note")
        await hub.publish("news", b"\x00\xff")
        assert (first.channel, first.offset) == ("news", 1)
        history = await hub.history("news")
        assert [m.data for m in history.messages] == [{"title": "hi"}, "plain text", b"\x00\xff"]
        assert [m.event for m in history.messages] == [None, "note", None]
        assert history.offset == 3 and history.epoch == first.epoch
        assert [m.data for m in (await hub.history("news", limit=1)).messages] == [b"\x00\xff"]
        after = await hub.history("news", since=first)
        assert [m.offset for m in after.messages] == [2, 3]


async def test_refusals_raise_the_error_tree() -> None:
    async with livehub.Hub(config=config()) as hub:
        with pytest.raises(BadChannel):
            await hub.publish("no spaces allowed", 1)
        with pytest.raises(UnknownNamespace):
            await hub.publish("nowhere:x", 1)
        with pytest.raises(ValueError, match="JSON"):
            await hub.publish("news", float("nan"))


async def test_hub_starts_on_first_use_and_stops() -> None:
    hub = livehub.Hub(config=config())
    assert not hub.started
    await hub.publish("news", 1)
    assert hub.started
    await hub.stop()
    assert not hub.started


async def test_serve_in_this_loop_with_sse_subscriber_and_async_client() -> None:
    """``hub.serve`` runs the standalone server in the running loop: an SSE subscriber on it
    receives what ``hub.publish`` and ``AsyncClient.publish`` send; leaving the block that
    started the hub stops it."""
    hub = livehub.Hub(config=config())
    async with hub.serve(port=0) as port:
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as http, http.stream(
                "GET", f"{url}/events?channel=news") as response:
            assert response.status_code == 200
            await hub.publish("news", {"n": 1})
            async with livehub.AsyncClient(url, API_KEY) as client:
                published = await client.publish("news", {"n": 2})
                assert published.offset == 2 and published.cursor
                events = await take(response, 2)
                assert [json.loads(e.data) for e in events] == [{"n": 1}, {"n": 2}]
                remote = await client.history("news")
                assert [m.data for m in remote.messages] == [{"n": 1}, {"n": 2}]
                assert remote.offset == 2 and remote.cursor == published.cursor
                with pytest.raises(CommandError):
                    await client.publish("nowhere:x", 1)
        with livehub.Client(url, "wrong") as wrong, pytest.raises(Unauthorized):
            await asyncio.to_thread(wrong.publish, "news", 1)
    assert not hub.started


async def test_presence_of_a_centrifugo_client() -> None:
    async with livehub.Hub(config=config()) as hub, hub.serve(port=0) as port:
        cf = CfClient(f"ws://127.0.0.1:{port}/connection/websocket")
        events = Subscribed()
        sub = cf.new_subscription("room:1", events=events)
        await cf.connect()
        await sub.subscribe()
        await asyncio.wait_for(events.subscribed.wait(), 5)
        try:
            members = await hub.presence("room:1")
            assert len(members) == 1
            (member,) = members.values()
            assert member.user == ""
            async with livehub.AsyncClient(f"http://127.0.0.1:{port}", API_KEY) as client:
                assert set(await client.presence("room:1")) == set(members)
        finally:
            await cf.disconnect()


class Subscribed(SubscriptionEventHandler):
    def __init__(self) -> None:
        self.subscribed = asyncio.Event()

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        self.subscribed.set()


@pytest.mark.redis
async def test_client_retries_while_the_broker_is_down(redis: RedisServer) -> None:
    """A hub whose Redis is gone answers 503; the client retries with backoff and the
    publication goes through once Redis is back (it is stored exactly once)."""
    cfg = config()
    cfg = dataclasses.replace(cfg, broker=dataclasses.replace(cfg.broker, redis_timeout=0.3))
    async with livehub.Hub(broker=redis.url, config=cfg) as hub, hub.serve(port=0) as port:
        await hub.publish("news", "before")
        redis.kill()
        retried = threading.Event()
        client = livehub.Client(f"http://127.0.0.1:{port}", API_KEY, retries=50, backoff=0.05,
                                max_backoff=0.2, on_retry=lambda why: retried.set())
        with livehub.Client(f"http://127.0.0.1:{port}", API_KEY, retries=1) as once, \
                pytest.raises(Unavailable):
            await asyncio.to_thread(once.publish, "news", "lost")
        publishing = asyncio.ensure_future(asyncio.to_thread(client.publish, "news", "after"))
        assert await asyncio.to_thread(retried.wait, 10)
        await asyncio.to_thread(redis.start)
        published = await publishing
        client.close()
        history = await hub.history("news")
        assert [m.data for m in history.messages][-1:] == ["after"]
        assert published.offset == history.offset
