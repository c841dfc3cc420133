"""A browser WebSocket on ``/ws?channel=chat:room&format=json``: publications from the page and
from the HTTP API arrive as JSON lines with cursors; after a close, a new socket with
``since=<last cursor>`` gets what was missed, then live traffic, with no loss and no duplicate.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import run_js, wait_js
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

CONNECT = """(since) => new Promise((resolve, reject) => {
    window.frames_ = window.frames_ || [];
    let url = `ws://${location.host}/ws?channel=chat:room&format=json`;
    if (since) url += '&since=' + encodeURIComponent(since);
    const ws = new WebSocket(url);
    window.ws = ws;
    ws.onmessage = (e) => window.frames_.push(JSON.parse(e.data));
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error('websocket error'));
})"""

CLOSE = """() => new Promise((resolve) => {
    window.ws.onclose = (e) => resolve([e.code, e.wasClean]);
    window.ws.close(1000);
})"""


def pubs(page: Page, count: int) -> list[dict[str, Any]]:
    """Wait for ``count`` publications in the page; return every frame received."""
    frames: list[dict[str, Any]] = wait_js(
        page, "n => window.frames_.filter(f => f.type === 'pub').length >= n && window.frames_",
        count)
    return frames


def send_from_page(page: Page, texts: list[str]) -> None:
    page.evaluate("texts => texts.forEach(t => window.ws.send(t))", texts)


def test_browser_websocket_json_resume_with_since(server: LiveServer, page: Page) -> None:
    page.goto(server.url + "/health")
    run_js(page, CONNECT, None)
    send_from_page(page, [f"page-{i}" for i in range(5)])
    pubs(page, 5)
    for i in range(5):
        server.publish("chat:room", f"http-{i}")
    frames = pubs(page, 10)
    assert frames[0]["type"] == "cursor"  # where a fresh subscription starts
    first = [f for f in frames if f["type"] == "pub"]
    assert [f["data"] for f in first] == [f"page-{i}" for i in range(5)] + [
        f"http-{i}" for i in range(5)]
    assert all(f["channel"] == "chat:room" for f in first)
    cursor = first[-1]["cursor"]
    assert run_js(page, CLOSE) == [1000, True]

    for i in range(5, 10):  # missed while away
        server.publish("chat:room", f"http-{i}")
    page.evaluate("() => { window.frames_ = []; }")
    run_js(page, CONNECT, cursor)
    send_from_page(page, [f"page-{i}" for i in range(5, 8)])
    frames = pubs(page, 8)
    server.publish("chat:room", "end")  # a duplicate would come before it
    frames = pubs(page, 9)

    data = [f["data"] for f in frames if f["type"] == "pub"]
    assert data == [f"http-{i}" for i in range(5, 10)] + [
        f"page-{i}" for i in range(5, 8)] + ["end"]
    # the replay is followed by a checkpoint at the last replayed position
    types = [f["type"] for f in frames]
    assert types.index("cursor") == 5, types
    assert frames[5]["cursor"] == frames[4]["cursor"]
    cursors = [f["cursor"] for f in frames if f["type"] == "pub"]
    assert len(set(cursors)) == len(cursors) and cursor not in cursors


def test_browser_websocket_resume_past_history(server: LiveServer, page: Page) -> None:
    """``since=`` older than the history: the json format says ``reset`` then goes on live;
    the raw format cannot say it in-band and closes with 3010 (insufficient state)."""
    page.goto(server.url + "/health")
    cursor = server.publish("small:x", "old")["cursor"]
    for i in range(10):  # history_size is 3
        server.publish("small:x", f"evicted-{i}")

    raw = run_js(page, """(since) => new Promise((resolve) => {
        const ws = new WebSocket(`ws://${location.host}/ws?channel=small:x&since=${since}`);
        const got = [];
        ws.onmessage = (e) => got.push(e.data);
        ws.onclose = (e) => resolve({code: e.code, reason: e.reason, got});
    })""", cursor)
    assert raw == {"code": 3010, "got": [],
                   "reason": "cannot resume: history does not cover the gap"}

    frames = run_js(page, """(since) => new Promise((resolve) => {
        const url = `ws://${location.host}/ws?channel=small:x&format=json&since=${since}`;
        const ws = new WebSocket(url);
        const got = [];
        ws.onopen = () => ws.send('live after reset');
        ws.onmessage = (e) => {
            got.push(JSON.parse(e.data));
            if (got.some(f => f.type === 'pub')) { ws.close(); resolve(got); }
        };
    })""", cursor)
    # (the checkpoint line comes after the replay, which may already hold our message)
    assert [f["type"] for f in frames if f["type"] != "cursor"] == ["reset", "pub"], frames
    assert frames[0]["channels"] == ["small:x"]
    assert frames[-1]["data"] == "live after reset"
