"""Cross-origin use from Chromium: a page on ``http://127.0.0.1:P`` subscribes to
``http://localhost:P`` (another origin).  Allowed origins get CORS headers (with credentials
when configured) and the browser's reconnection with ``Last-Event-ID`` works across origins;
other origins are blocked by the browser."""

from __future__ import annotations

import json

import httpx
import pytest
from playwright.sync_api import Page

from tests.browser.conftest import drop_sse_streams, run_js, wait_js
from tests.conftest import ServerFactory

pytestmark = pytest.mark.browser

SUBSCRIBE = """([url, credentials]) => new Promise((resolve) => {
    window.log = []; window.opens = 0;
    const es = new EventSource(url, {withCredentials: credentials});
    window.es = es;
    es.onmessage = (e) => window.log.push(JSON.parse(e.data).seq);
    es.onopen = () => { window.opens += 1; resolve('open'); };
    es.onerror = () => { if (es.readyState === EventSource.CLOSED) resolve('failed'); };
})"""


@pytest.mark.parametrize("credentials", [False, True])
def test_cross_origin_eventsource_resumes(make_server: ServerFactory, page: Page,
                                          credentials: bool) -> None:
    site = make_server()  # the page's origin; credentials need it listed, never "*"
    server = make_server(sse_retry_ms=200, cors_credentials=credentials,
                         allowed_origins=(site.url,) if credentials else ("*",))
    page.goto(site.url + "/health")
    other = f"http://localhost:{server.port}/events?channel=news"
    assert run_js(page, SUBSCRIBE, [other, credentials]) == "open"
    for seq in range(3):
        server.publish("news", {"seq": seq})
    wait_js(page, "() => window.log.length >= 3")
    drop_sse_streams(server)
    for seq in range(3, 6):
        server.publish("news", {"seq": seq})
    wait_js(page, "() => window.opens === 2")
    server.publish("news", {"seq": 6})
    assert wait_js(page, "() => window.log.length >= 7 && window.log") == list(range(7))


def test_disallowed_origin_is_blocked(make_server: ServerFactory, page: Page) -> None:
    server = make_server(allowed_origins=("http://allowed.example",))
    page.goto(server.url + "/health")
    other = f"http://localhost:{server.port}"
    assert run_js(page, SUBSCRIBE, [other + "/events?channel=news", False]) == "failed"
    fetched = run_js(page, """(url) => fetch(url).then(r => 'ok ' + r.status,
                                                         e => 'blocked')""", other + "/health")
    assert fetched == "blocked"
    # the same request from the allowed origin gets its CORS headers
    reply = httpx.get(other + "/health", headers={"Origin": "http://allowed.example"})
    assert reply.headers["access-control-allow-origin"] == "http://allowed.example"
    assert json.loads(reply.text)["status"] == "ok"
