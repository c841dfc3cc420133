"""centrifuge-js in headless Chromium (Playwright, Debian's chromium): websocket, the fallback to
http_stream and sse when WebSocket is refused, and the mixed page where a centrifuge-js
publication reaches a plain ``EventSource`` on /events and a raw ``WebSocket`` on /ws, and back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from .conftest import CfServer, token

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

SCRIPT = """
async ({transports, token, channel}) => {
  const c = new Centrifuge(transports, {token, timeout: 5000});
  const connected = new Promise((resolve) => c.on('connected', resolve));
  c.connect();
  const ctx = await connected;
  const sub = c.newSubscription(channel);
  const pubs = [];
  sub.on('publication', (p) => pubs.push(p.data));
  await new Promise((resolve) => { sub.on('subscribed', resolve); sub.subscribe(); });
  await sub.publish({from: ctx.transport});
  const stats = await sub.presenceStats();
  const deadline = Date.now() + 5000;
  while (pubs.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  c.disconnect();
  return {transport: ctx.transport, pubs, clients: stats.numClients};
}
"""

MIXED = """
async ({ws, base, token, channel}) => {
  const es = new EventSource(base + '/events?channel=' + encodeURIComponent(channel));
  const esGot = [];
  es.onmessage = (e) => esGot.push(e.data);
  await new Promise((resolve) => { es.onopen = resolve; });
  const raw = new WebSocket(ws + '/ws?channel=' + encodeURIComponent(channel));
  const rawGot = [];
  raw.onmessage = (e) => rawGot.push(e.data);
  await new Promise((resolve) => { raw.onopen = resolve; });
  const c = new Centrifuge(ws + '/connection/websocket', {token});
  c.connect();
  const sub = c.newSubscription(channel);
  const cfGot = [];
  sub.on('publication', (p) => cfGot.push(p.data));
  await new Promise((resolve) => { sub.on('subscribed', resolve); sub.subscribe(); });
  await new Promise((r) => setTimeout(r, 100));
  await sub.publish({from: 'browser centrifuge-js'});
  raw.send('from the raw socket');
  const deadline = Date.now() + 5000;
  while ((esGot.length < 2 || rawGot.length < 2 || cfGot.length < 2) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  es.close(); raw.close(); c.disconnect();
  return {es: esGot, raw: rawGot, cf: cfGot};
}
"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is required for the browser tests (apt-get install chromium)")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        await b.close()


async def _page(browser: Browser, srv: CfServer, js_modules: Path) -> Page:
    page = await browser.new_page()
    await page.goto(srv.url + "/health")  # same origin as every endpoint
    await page.add_script_tag(path=str(js_modules / "node_modules/centrifuge/dist/centrifuge.js"))
    return page


@pytest.mark.browser
async def test_websocket_and_fallbacks_in_chromium(shared_cf_server: CfServer, js_modules: Path,
                                                   browser: Browser) -> None:
    srv = shared_cf_server
    page = await _page(browser, srv, js_modules)
    cases: list[tuple[str, list[dict[str, str]]]] = [
        ("websocket", [{"transport": "websocket",
                        "endpoint": srv.ws_url + "/connection/websocket"}]),
        ("http_stream", [{"transport": "websocket", "endpoint": srv.ws_url + "/refused"},
                         {"transport": "http_stream",
                          "endpoint": srv.url + "/connection/http_stream"}]),
        ("sse", [{"transport": "websocket", "endpoint": srv.ws_url + "/refused"},
                 {"transport": "sse", "endpoint": srv.url + "/connection/sse"}]),
    ]
    for expected, transports in cases:
        got: dict[str, Any] = await asyncio.wait_for(page.evaluate(SCRIPT, {
            "transports": transports, "token": token("browser"),
            "channel": f"chat:browser-{expected}"}), 20)
        assert got == {"transport": expected, "pubs": [{"from": expected}], "clients": 1}


@pytest.mark.browser
async def test_mixed_page(shared_cf_server: CfServer, js_modules: Path, browser: Browser) -> None:
    srv = shared_cf_server
    page = await _page(browser, srv, js_modules)
    got = await asyncio.wait_for(page.evaluate(MIXED, {
        "ws": srv.ws_url, "base": srv.url, "token": token("mixed"),
        "channel": "chat:browser-mixed"}), 20)
    assert got["cf"] == [{"from": "browser centrifuge-js"}, "from the raw socket"]
    assert got["es"] == ['{"from":"browser centrifuge-js"}', "from the raw socket"]
    assert got["raw"] == ['{"from":"browser centrifuge-js"}', "from the raw socket"]
