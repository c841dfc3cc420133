"""The browser's own EventSource: the server ends the stream mid-way (3011, reconnect) while
publications go on; Chromium reconnects by itself with ``Last-Event-ID`` and the page gets
every publication of both channels exactly once, in order.  And the ``reset`` event when the
history cannot cover the gap: after ``?last_event_id=`` on a first connection, and after the
browser's own reconnection."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, Request

from livehub.wire.payload import PayloadKind
from tests.browser.conftest import drop_sse_streams, run_js, wait_js
from tests.conftest import LiveServer, ServerFactory

pytestmark = pytest.mark.browser

# Records what an EventSource delivers into window.log; resolves once it is open.
SUBSCRIBE = """(url) => new Promise((resolve) => {
    window.log = []; window.opens = 0; window.errors = 0;
    const es = new EventSource(url);
    window.es = es;
    const record = (e) => window.log.push({type: e.type, data: e.data, id: e.lastEventId});
    es.onmessage = record;
    es.addEventListener('reset', record);
    es.addEventListener('disconnect', record);
    es.onopen = () => { window.opens += 1; resolve(); };
    es.onerror = () => { window.errors += 1; };
})"""


def messages(page: Page, count: int) -> list[dict[str, str]]:
    """Wait until the page has ``count`` default-type messages; return the whole log."""
    log: list[dict[str, str]] = wait_js(
        page, "n => window.log.filter(e => e.type === 'message').length >= n && window.log",
        count)
    return log


def seqs(log: list[dict[str, str]]) -> list[int]:
    return [json.loads(e["data"])["seq"] for e in log if e["type"] == "message"]


def publish(server: LiveServer, seqs: range) -> None:
    for seq in seqs:
        server.publish("feed" if seq % 2 else "alerts", {"seq": seq})


def test_browser_eventsource_resumes_after_server_ends_stream(make_server: ServerFactory,
                                                              page: Page) -> None:
    server = make_server(sse_retry_ms=200)
    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r) if "/events" in r.url else None)
    page.goto(server.url + "/health")
    run_js(page, SUBSCRIBE, "/events?channel=feed&channel=alerts")

    publish(server, range(15))
    log = messages(page, 15)
    assert seqs(log) == list(range(15))
    last_id = log[-1]["id"]
    assert last_id and len({e["id"] for e in log}) == 15

    node = server.app.ctx.node  # type: ignore[union-attr]

    async def meanwhile() -> None:  # published in the same turn of the loop as the drop
        for seq in range(15, 30):
            data = json.dumps({"seq": seq}).encode()
            await node.publish("feed" if seq % 2 else "alerts", data, PayloadKind.JSON)

    assert drop_sse_streams(server, meanwhile) == 1
    wait_js(page, "() => window.opens === 2")
    publish(server, range(30, 45))
    log = messages(page, 45)
    publish(server, range(45, 46))  # the end mark: a duplicate would come before it
    log = messages(page, 46)

    assert seqs(log) == list(range(46))
    goodbyes = [json.loads(e["data"]) for e in log if e["type"] == "disconnect"]
    assert goodbyes == [{"code": 3011, "reason": "force reconnect", "reconnect": True}]
    assert [e["type"] for e in log].index("disconnect") == 15
    assert len({e["id"] for e in log if e["type"] == "message"}) == 46
    assert page.evaluate("window.errors") == 1

    # Chromium's own reconnection sent the id of the last event it had seen
    assert len(requests) == 2, [r.url for r in requests]
    assert "last-event-id" not in requests[0].all_headers()
    assert requests[1].all_headers().get("last-event-id") == last_id
    assert requests[1].url == requests[0].url


def test_reset_after_history_was_evicted(server: LiveServer, page: Page) -> None:
    page.goto(server.url + "/health")
    run_js(page, SUBSCRIBE, "/events?channel=small:x")
    server.publish("small:x", {"seq": 0})
    cursor = messages(page, 1)[-1]["id"]
    page.evaluate("window.es.close()")

    for seq in range(1, 11):  # history_size is 3: 1..7 are evicted
        server.publish("small:x", {"seq": seq})
    run_js(page, SUBSCRIBE, "/events?channel=small:x&last_event_id="
                  + cursor.replace("~", "%7E"))
    wait_js(page, "() => window.log.length >= 1")
    for seq in range(11, 14):
        server.publish("small:x", {"seq": seq})
    log = messages(page, 3)

    reset, *live = log
    assert reset["type"] == "reset", log
    assert json.loads(reset["data"])["channels"] == ["small:x"]
    assert reset["id"] and reset["id"] != cursor
    assert seqs(live) == [11, 12, 13]


def test_reset_after_native_reconnection_past_history(make_server: ServerFactory,
                                                      page: Page) -> None:
    server = make_server(sse_retry_ms=200)
    page.goto(server.url + "/health")
    run_js(page, SUBSCRIBE, "/events?channel=small:y&channel=feed")
    server.publish("small:y", {"seq": 0})
    server.publish("feed", {"seq": 1})
    messages(page, 2)
    node = server.app.ctx.node  # type: ignore[union-attr]

    async def meanwhile() -> None:  # small:y loses continuity, feed does not
        for seq in range(2, 12):
            channel = "small:y" if seq < 10 else "feed"
            await node.publish(channel, json.dumps({"seq": seq}).encode(), PayloadKind.JSON)

    drop_sse_streams(server, meanwhile)
    wait_js(page, "() => window.opens === 2")
    server.publish("small:y", {"seq": 12})
    log = messages(page, 5)

    types = [e["type"] for e in log]
    assert types == ["message", "message", "disconnect", "reset", "message", "message",
                     "message"], log
    assert json.loads(log[3]["data"])["channels"] == ["small:y"]
    # feed's missed publications are replayed; small:y's evicted ones are not
    assert seqs(log) == [0, 1, 10, 11, 12]
