"""An embedded hub (FastAPI under uvicorn) and a standalone ``livehub serve`` process on one
real Redis are two nodes of one cluster: what either publishes reaches the subscribers of both,
with the same positions."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

import livehub
from tests.cluster.conftest import API_KEY, Node
from tests.redis_server import RedisServer

from .conftest import AsgiFactory
from .test_asgi import SseReader, hub_config

pytestmark = pytest.mark.redis


async def test_embedded_and_standalone_share_channels(serve_asgi: AsgiFactory,
                                                      redis: RedisServer,
                                                      tmp_path: Path) -> None:
    standalone = Node("s", redis.url, tmp_path)
    standalone.start()
    try:
        await asyncio.to_thread(standalone.wait_ready)
        cfg = hub_config()
        cfg = dataclasses.replace(cfg, server=dataclasses.replace(cfg.server, api_key=API_KEY))
        hub = livehub.Hub(broker=redis.url, config=cfg)
        app = FastAPI(lifespan=hub.lifespan)
        app.mount("/live", hub.asgi())
        embedded = await asyncio.to_thread(serve_asgi, app)
        async with httpx.AsyncClient(timeout=10) as http, \
                http.stream("GET", f"{embedded.url}/live/events?channel=shared") as mounted, \
                http.stream("GET", f"{standalone.url}/events?channel=shared") as direct:
            assert mounted.status_code == direct.status_code == 200
            readers = [SseReader(mounted), SseReader(direct)]
            for reader in readers:  # subscribed once the first checkpoint is out
                assert (await reader.next(1))[0]["event"] == "checkpoint"
            first = embedded.call(hub.publish("shared", {"from": "embedded"}))
            async with livehub.AsyncClient(standalone.url, API_KEY) as client:
                second = await client.publish("shared", {"from": "standalone"})
            assert (first.offset, second.offset) == (1, 2) and first.epoch == second.epoch
            for reader in readers:
                events = await reader.next(2)
                assert [json.loads(e["data"])["from"] for e in events] == ["embedded",
                                                                           "standalone"]
                assert events[1]["id"] == second.cursor
        history = embedded.call(hub.history("shared"))
        assert [m.data for m in history.messages] == [{"from": "embedded"},
                                                      {"from": "standalone"}]
    finally:
        standalone.stop()
