"""The Centrifugo protocol across three livehub processes over one Redis: server API
publications, presence, join/leave, emulation requests and server API operations that reach
another node, with centrifuge-python and centrifuge-js (Node) as the clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from .cf import NS, Events, JsAgent, PyClient, js_agent
from .conftest import API_KEY, Node
from .sse import SseStream

pytestmark = [pytest.mark.redis, pytest.mark.node]


async def api(http: httpx.AsyncClient, node: Node, method: str, **params: Any) -> Any:
    r = await http.post(f"{node.url}/api/{method}", json=params, headers={"X-API-Key": API_KEY})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "error" not in body, body
    return body["result"]


@pytest.fixture
async def events() -> Events:
    return Events()


@pytest.fixture
async def js(js_modules: Path, events: Events) -> Any:
    async with js_agent(js_modules / "node_modules", events) as agent:
        yield agent


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def test_api_publication_on_a_reaches_python_on_b_js_on_c_and_sse(
        cf_cluster: list[Node], events: Events, js: JsAgent, http: httpx.AsyncClient) -> None:
    a, b, c = cf_cluster
    channel = f"{NS}:fanout"
    py = PyClient("py-b", b.ws_url + "/connection/websocket", "pia", events)
    await py.connect()
    try:
        assert (await py.subscribe(channel))["recoverable"]
        await js.connect("js-c", "jon", "websocket", c.ws_url + "/connection/websocket")
        await js.subscribe("js-c", channel)
        async with http.stream("GET", b.url + "/events", params={"channel": channel}) as rb:
            sse = SseStream(rb)
            await sse.subscribed()
            results = [await api(http, a, "publish", channel=channel, data={"n": i})
                       for i in (1, 2)]
            assert [r["offset"] for r in results] == [1, 2]
            for name in ("py-b", "js-c"):
                got = [await events.next("publication", client=name) for _ in range(2)]
                assert [(p["data"], p["offset"]) for p in got] == [({"n": 1}, 1), ({"n": 2}, 2)]
            assert await sse.datas(2) == ['{"n":1}', '{"n":2}']
            assert sse.last_id == results[-1]["cursor"]
    finally:
        await py.disconnect()
