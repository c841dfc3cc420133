"""Real clients through the ASGI mount of the FastAPI example under uvicorn: the npm ``ws``
client, centrifuge-js (WebSocket, HTTP streaming and SSE with emulation) and a plain
``EventSource`` in headless Chromium."""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Page

import livehub
from livehub.config import Config
from livehub.core.auth import AuthSettings
from livehub.core.channels import Namespaces
from livehub.protocols.centrifugo import CentrifugoSettings
from livehub.transports.context import ServerSettings
from tests.browser.conftest import Console
from tests.centrifugo.conftest import CF_NAMESPACES, OPEN, SECRET, run_js
from tests.node.conftest import NodeFactory

from .conftest import AsgiServer, load_example


@pytest.fixture
def example() -> Iterator[AsgiServer]:
    server = AsgiServer(load_example("fastapi_app").app)
    server.start()
    yield server
    server.stop()


@pytest.mark.node
def test_node_ws_clients_publish_and_receive_through_the_mount(example: AsgiServer,
                                                               node: NodeFactory) -> None:
    script = node("ws_channel.mjs", example.ws_url + "/live", "chat:x", "2")
    script.until_kind("ready")
    blob = bytes(range(256)) * 300  # 76 KB: a frame with a 64-bit length
    items = [{"text": f"m-{i} \u00e9"} for i in range(20)]
    items.append({"b64": base64.b64encode(blob).decode()})
    script.send({"op": "send", "index": 0, "items": items})
    got: dict[int, list[tuple[bool, str]]] = {0: [], 1: []}

    def enough(line: dict[str, object]) -> bool:
        if line["kind"] == "message":
            got[int(str(line["index"]))].append((bool(line["binary"]), str(line["data"])))
        return all(len(v) == len(items) for v in got.values())

    script.until(enough)
    expected = [(False, f"m-{i} \u00e9") for i in range(20)]
    expected.append((True, base64.b64encode(blob).decode()))
    assert got[0] == expected and got[1] == expected
    # a read-only channel: publishing closes with 3507, as on the fast server
    ro = node("ws_channel.mjs", example.ws_url + "/live", "news", "1")
    ro.until_kind("ready")
    ro.send({"op": "send", "index": 0, "items": [{"text": "not allowed"}]})
    assert ro.until_kind("close")["code"] == 3507
    script.send({"op": "close", "code": 1000})
    closes = [line for line in script.finish() if line["kind"] == "close"]
    assert [c["code"] for c in closes] == [1000, 1000]


@pytest.fixture
def cf_app() -> Iterator[AsgiServer]:
    hub = livehub.Hub(config=Config(
        ServerSettings(api_key="k", clock=False, echo=False),
        Namespaces(OPEN, CF_NAMESPACES), centrifugo=CentrifugoSettings(emulation=True),
        auth=AuthSettings(token_hmac_secret=SECRET)))
    app = FastAPI(lifespan=hub.lifespan)
    app.mount("/live", hub.asgi())
    server = AsgiServer(app)
    server.start()
    yield server
    server.stop()


@pytest.mark.node
@pytest.mark.parametrize("transport", ["websocket", "http_stream", "sse"])
def test_centrifuge_js_through_the_mount(cf_app: AsgiServer, js_modules: Path,
                                         transport: str) -> None:
    """The official SDK, unchanged, against ``/live/connection/...`` (and ``/live/emulation``
    for the client-to-server half of SSE and HTTP streaming): connect with a token, subscribe,
    publish, presence, history, join."""
    user = f"js-{transport}"
    got = run_js(cf_app, "basic", base=cf_app.url + "/live", transport=transport,
                 channel=f"chat:asgi-{transport}")
    assert got["transport"] == transport
    assert got["recoverable"] is True
    assert got["pub"] == {"from": "js", "transport": transport}
    assert got["offset"] == 1 and got["publisher"] == user
    assert got["presence"] == [[user, {"t": transport}]]
    assert got["history"] == [{"from": "js", "transport": transport}]
    assert got["join"] == user


@pytest.mark.browser
def test_eventsource_in_chromium_on_the_example_page(example: AsgiServer, page: Page) -> None:
    """The example's page subscribes with a plain ``EventSource`` to ``/live/events``; titles
    posted to the app's own route appear, in order."""
    console = Console(page)
    page.goto(example.url + "/")
    hub: livehub.Hub = sys.modules["examples.fastapi_app"].hub

    async def connections() -> int:
        app = await hub._started()
        return len(app.ctx.connections)

    deadline = time.monotonic() + 10
    while example.call(connections()) < 1:  # the page's EventSource is connected
        assert time.monotonic() < deadline, "the page's EventSource never connected"
        time.sleep(0.02)
    with httpx.Client(base_url=example.url) as http:
        for title in ("first", "second", "third"):
            assert http.post("/news", params={"title": title}).is_success
    console.wait_for(lambda texts: len([t for t in texts if t.startswith("news:")]) == 3)
    assert [t for t in console.texts("log") if t.startswith("news:")] == [
        "news: first", "news: second", "news: third"]
    assert page.locator("#news li").all_text_contents() == ["first", "second", "third"]
    assert console.errors() == []
