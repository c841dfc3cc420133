"""``/static/livehub.js`` in Chromium: the WebSocket helper resumes after a drop and stops on a
refusal; the EventSource wrapper surfaces livehub's ``reset`` and ``disconnect`` events and
stops when told not to reconnect."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from livehub.codes import DisconnectInfo
from livehub.transports.stream import StreamConnection
from tests.browser.conftest import run_js, wait_js
from tests.browser.test_demo_pages import drop_websockets
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser


def _load(page: Page, server: LiveServer) -> None:
    page.goto(server.url + "/health")
    page.add_script_tag(url="/static/livehub.js")


def test_socket_resumes_after_a_drop_and_stops_on_a_refusal(server: LiveServer,
                                                            page: Page) -> None:
    _load(page, server)
    run_js(page, """() => new Promise((resolve) => {
        window.got = []; window.states = [];
        window.s = livehub.socket('chat:helper', {recent: 5, minDelay: 50,
            onmessage: (data) => window.got.push(data),
            onstatus: (st) => { window.states.push(st); if (st === 'open') resolve(); }});
    })""")
    server.publish("chat:helper", "one")
    wait_js(page, "() => window.got.length === 1")
    assert drop_websockets(server) == 1
    server.publish("chat:helper", "two")  # while it is away, or just after: resumed either way
    page.evaluate("() => window.s.send({three: 3})")  # queued until it is back
    got = wait_js(page, "() => window.got.length >= 3 && window.got")
    assert got == ["one", "two", {"three": 3}]
    assert page.evaluate("() => window.s.opens") == 2
    assert "reconnecting" in page.evaluate("() => window.states")
    # a refusal (3507: this namespace does not let clients publish) is not retried
    run_js(page, """() => new Promise((resolve) => {
        const r = livehub.socket('ro:x', {minDelay: 50, onopen: () => r.send('not allowed'),
            onclose: (code) => { window.code = code; },
            onstatus: (st) => { if (st === 'closed') resolve(); }});
        window.r = r;
    })""")
    assert page.evaluate("() => [window.code, window.r.opens, window.r.status]") == [
        3507, 1, "closed"]


def test_events_surface_reset_and_a_final_disconnect(server: LiveServer, page: Page) -> None:
    old = server.publish("small:h", "gone soon")["cursor"]
    for i in range(5):
        server.publish("small:h", f"n{i}")
    _load(page, server)
    run_js(page, """(cursor) => new Promise((resolve) => {
        window.got = []; window.resets = []; window.bye = [];
        window.e = livehub.events('small:h', {params: [['last_event_id', cursor]],
            onmessage: (data, msg) => window.got.push([msg.channel, data]),
            onreset: (info) => window.resets.push(info.channels),
            ondisconnect: (info) => window.bye.push([info.code, info.reconnect]),
            onstatus: (st) => { if (st === 'open') resolve(); }});
    })""", old)
    wait_js(page, "() => window.resets.length === 1")
    assert page.evaluate("() => window.resets") == [["small:h"]]
    server.publish("small:h", {"live": True})
    assert wait_js(page, "() => window.got.length === 1 && window.got") == [
        ["small:h", {"live": True}]]
    assert server.app is not None
    ctx = server.app.ctx

    async def end() -> None:
        for conn in [c for c in ctx.connections if isinstance(c, StreamConnection)]:
            conn.close(DisconnectInfo(3501, "go away"))  # 3500-3999: do not reconnect

    server.call(end())
    wait_js(page, "() => window.e.status === 'closed'")
    assert page.evaluate("() => [window.bye, window.e.source.readyState]") == [
        [[3501, False]], 2]
