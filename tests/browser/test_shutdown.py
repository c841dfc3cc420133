"""Server shutdown with a browser attached: every connection is closed by the server (the
idle keep-alive HTTP connection of the page too), WebSockets and SSE streams are told 3001
(shutdown), and no socket of the server is left open."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import run_js, wait_js
from tests.conftest import ServerFactory

pytestmark = pytest.mark.browser

ESTABLISHED, CLOSE_WAIT = "01", "08"

OPEN_ALL = """() => new Promise((resolve) => {
    window.closes = [];
    const ws = new WebSocket(`ws://${location.host}/echo`);
    ws.onclose = (e) => window.closes.push(['ws', e.code]);
    const es = new EventSource('/events?channel=news');
    es.addEventListener('disconnect',
                        (e) => window.closes.push(['sse', JSON.parse(e.data).code]));
    let open = 0;
    ws.onopen = es.onopen = () => { if (++open === 2) resolve(); };
}).then(() => fetch('/health')).then((r) => r.json())"""


def open_server_sockets(port: int) -> list[str]:
    """TCP states of the server-side sockets of ``port`` that are not closed yet."""
    states = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[3] in (ESTABLISHED, CLOSE_WAIT):
            states.append(fields[3])
    return states


def test_stop_closes_every_browser_connection(make_server: ServerFactory, page: Page) -> None:
    server = make_server(sse_retry_ms=60_000)
    page.goto(server.url + "/health")
    # a WebSocket, an SSE stream, then a fetch whose connection stays idle (keep-alive)
    assert run_js(page, OPEN_ALL)["status"] == "ok"
    assert len(open_server_sockets(server.port)) >= 3

    assert server.app is not None
    server.call(server.app.stop(drain=2.0))
    assert sorted(wait_js(page, "window.closes.length === 2 && window.closes")) == [
        ["sse", 3001], ["ws", 3001]]
    assert open_server_sockets(server.port) == []
