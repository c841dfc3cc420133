"""Server-initiated WebSocket closes seen by Chromium: the code and reason arrive, the close is
clean, and it is prompt.  (After the closing handshake a browser waits for the server to close
the TCP connection, RFC 6455 §7.1.1, and gives up only after about 2 s.)"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import run_js
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

PUBLISH_ON_READ_ONLY = """() => new Promise((resolve) => {
    const ws = new WebSocket(`ws://${location.host}/ws?channel=ro:x`);
    let sent;
    ws.onopen = () => { sent = performance.now(); ws.send('not allowed'); };
    ws.onclose = (e) => resolve({code: e.code, reason: e.reason, clean: e.wasClean,
                                 ms: performance.now() - sent});
})"""


def test_policy_close_reaches_the_browser_promptly(server: LiveServer, page: Page) -> None:
    page.goto(server.url + "/health")
    closed = run_js(page, PUBLISH_ON_READ_ONLY)
    assert closed["code"] == 3507  # permission denied
    assert closed["reason"] == "publishing in 'ro:x' is not allowed"
    assert closed["clean"] is True
    assert closed["ms"] < 1000, closed
    assert server.app is not None
    assert server.call_soon(lambda: len(server.app.ctx.connections)) == 0  # type: ignore[union-attr]
