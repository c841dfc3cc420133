"""Every demo page (issue 13) in headless Chromium, with two browser contexts: two people, what
one does the other sees; drops and resumes without loss; the notification page's refusal; the
comparison page's figures checked for plausibility (never for speed).

The simulated market and matches are off here (``demo_*`` = 0): the tests publish through the
real HTTP API, so what a page must show is known exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from livehub.codes import Disconnect
from livehub.demos.namespaces import DEMO_NAMESPACES
from livehub.protocols.plain.ws import ChannelConnection
from livehub.wire.payload import PayloadKind
from tests.browser.conftest import TIMEOUT_MS, Console, wait_js
from tests.conftest import LiveServer, ServerFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def demo(make_server: ServerFactory) -> LiveServer:
    return make_server(demos=True, demo_market_interval=0, demo_match_minute=0,
                       sse_retry_ms=200, namespaces=dict(DEMO_NAMESPACES))


@pytest.fixture
def people(browser: Browser) -> Iterator[tuple[Page, Page]]:
    """Two people: two browser contexts (separate cookies, storage and connections)."""
    contexts = [browser.new_context(viewport={"width": 1280, "height": 800})
                for _ in range(2)]
    pages = []
    for context in contexts:
        context.set_default_timeout(TIMEOUT_MS)
        pages.append(context.new_page())
    yield pages[0], pages[1]
    for context in contexts:
        context.close()


def drop_websockets(server: LiveServer) -> int:
    """Close every ``/ws`` connection with 3011, as a network failure would end them."""
    assert server.app is not None
    ctx = server.app.ctx

    async def run() -> int:
        found = [c for c in ctx.connections if isinstance(c, ChannelConnection)]
        for conn in found:
            conn.close(Disconnect.FORCE_RECONNECT)
        return len(found)

    return server.call(run())


def publish_during_drop(server: LiveServer, channel: str, values: list[Any]) -> int:
    """End every SSE stream and, in the same loop turn, publish ``values`` (JSON)."""
    assert server.app is not None
    node = server.app.ctx.node

    async def publish() -> None:
        for value in values:
            await node.publish(channel, json.dumps(value).encode(), PayloadKind.JSON)

    return server.drop_streams(publish)


def test_chat_history_presence_typing_and_a_drop(demo: LiveServer,
                                                 people: tuple[Page, Page]) -> None:
    ann, ben = people
    for i in range(3):
        demo.publish("chat:lobby", json.dumps({"user": "old", "text": f"earlier {i}",
                                               "from": "x", "time": 0}))
    ann.goto(demo.url + "/demo/chat?room=lobby&name=Ann")
    wait_js(ann, "() => window.chat.seen.length === 3")   # the last messages on join
    ben.goto(demo.url + "/demo/chat?room=lobby&name=Ben")
    wait_js(ben, "() => window.chat.socket.status === 'open'")
    ann.fill("#text", "hello Ben")
    ann.press("#text", "Enter")
    expect(ben.locator("#messages")).to_contain_text("hello Ben")
    expect(ben.locator("#people")).to_contain_text("Ann")
    expect(ann.locator("#people")).to_contain_text("Ben")
    ann.type("#text", "typing", delay=20)
    expect(ben.locator("#typing")).to_contain_text("Ann is typing")

    assert drop_websockets(demo) >= 4  # chat + signals, two people
    demo.publish("chat:lobby", json.dumps({"user": "bot", "text": "while away", "from": "b",
                                           "time": 0}))
    ann.fill("#text", "after the drop")  # sent (or queued until reconnected)
    ann.press("#text", "Enter")
    expected = ["earlier 0", "earlier 1", "earlier 2", "hello Ben", "while away",
                "after the drop"]
    for page in people:
        wait_js(page, "() => window.chat.seen.length >= 6")
        seen = page.evaluate("() => window.chat.seen")
        assert seen[-3:] == expected[-3:] and len(seen) == len(set(seen)), seen
    assert ann.evaluate("() => window.chat.seen") == expected


def test_whiteboard_strokes_cursors_and_a_late_joiner(demo: LiveServer, browser: Browser,
                                                      people: tuple[Page, Page]) -> None:
    artist, viewer = people
    artist.goto(demo.url + "/demo/whiteboard")
    viewer.goto(demo.url + "/demo/whiteboard")
    for page in people:
        wait_js(page, "() => window.whiteboard.socket.status === 'open' && "
                      "window.whiteboard.signals.status === 'open'")
    box = artist.locator("canvas").bounding_box()
    assert box is not None
    artist.mouse.move(box["x"] + 100, box["y"] + 100)
    artist.mouse.down()
    for i in range(20):
        artist.mouse.move(box["x"] + 100 + 15 * i, box["y"] + 100 + 5 * i, steps=2)
    artist.mouse.up()
    drawn = wait_js(viewer, "() => window.whiteboard.segments() > 0 && "
                            "window.whiteboard.segments()")
    expect(viewer.locator(".cursor")).to_have_count(1)  # the artist's cursor
    late = browser.new_context().new_page()
    try:
        late.goto(demo.url + "/demo/whiteboard")
        replayed = wait_js(late, "(n) => window.whiteboard.segments() >= n && "
                                 "window.whiteboard.segments()", drawn)
        assert replayed >= drawn
        pixels = late.evaluate("""() => {
            const c = document.getElementById('canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let ink = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) ink++; return ink; }""")
        assert pixels > 100  # the late joiner sees the drawing itself
    finally:
        late.context.close()


def test_ticker_two_viewers_and_a_drop_without_a_gap(demo: LiveServer,
                                                     people: tuple[Page, Page]) -> None:
    for page in people:
        page.goto(demo.url + "/demo/ticker")
        wait_js(page, "() => window.ticker.feed.status === 'open'")
    quote = {"s": "AAPL", "c": 0.5, "t": 0}
    for price in (1, 2, 3):
        demo.publish("market:AAPL", {**quote, "p": price})
    for page in people:
        wait_js(page, "() => (window.ticker.received.AAPL || []).length === 3")
        expect(page.locator("#row-AAPL .price")).to_have_text("3.00")
    dropped = publish_during_drop(demo, "market:AAPL", [{**quote, "p": p} for p in (4, 5, 6)])
    assert dropped == 2
    demo.publish("market:AAPL", {**quote, "p": 7})
    for page in people:
        got = wait_js(page, "() => window.ticker.received.AAPL.length >= 7 && "
                            "window.ticker.received.AAPL")
        assert got == [1, 2, 3, 4, 5, 6, 7]  # no gap, no duplicate
        assert page.evaluate("() => window.ticker.resets()") == 0
        expect(page.locator("#opens")).to_have_text("2")


def _event(match: str, kind: str, score: list[int], minute: int) -> dict[str, Any]:
    return {"match": match, "home": "Lions", "away": "Eagles", "minute": minute,
            "score": score, "kind": kind, "team": "Lions", "player": "Kane"}


def test_scores_several_matches_on_one_eventsource(demo: LiveServer,
                                                   people: tuple[Page, Page]) -> None:
    first, second = people
    demo.publish("scores:m1", _event("m1", "kickoff", [0, 0], 0))
    first.goto(demo.url + "/demo/scores")
    second.goto(demo.url + "/demo/scores?follow=m1,m2")
    for page in people:
        wait_js(page, "() => window.scores.feed.status === 'open'")
    demo.publish("scores:m1", _event("m1", "goal", [1, 0], 12))
    demo.publish("scores:m2", {**_event("m2", "card", [0, 0], 14), "card": "yellow"})
    for page in people:
        expect(page.locator("#match-m1 .score")).to_have_text("1 \u2013 0")
        expect(page.locator("#match-m2 li")).to_contain_text("yellow card Kane")
    publish_during_drop(demo, "scores:m1", [_event("m1", "goal", [2, 0], 30)])
    demo.publish("scores:m1", _event("m1", "halftime", [2, 0], 45))
    for page in people:
        expect(page.locator("#match-m1 .minute")).to_have_text("● LIVE Half time")
        kinds = page.evaluate("() => window.scores.cards.get('m1').events.map(e => e.kind)")
        assert kinds == ["kickoff", "goal", "goal", "halftime"]


def test_notifications_per_user_with_a_refusal(demo: LiveServer,
                                               people: tuple[Page, Page]) -> None:
    alice, bob = people
    console = Console(bob)
    alice.goto(demo.url + "/demo/notifications?user=alice")
    bob.goto(demo.url + "/demo/notifications?user=bob")
    proof = alice.locator("#proof tr[data-user='bob'] .answer")
    expect(proof).to_contain_text("403: refused")
    expect(proof).to_contain_text("limited to users bob")
    expect(alice.locator("#proof tr[data-user='alice'] .answer")).to_contain_text("200: open")
    wait_js(bob, "() => document.getElementById('state').textContent === 'open'")
    alice.select_option("#to", "bob")
    alice.fill("#text", "your build is green")
    alice.press("#text", "Enter")
    expect(bob.locator("#inbox")).to_contain_text("your build is green")
    expect(bob.locator("#badge")).to_have_text("1")
    expect(alice.locator("#badge")).to_have_text("0")  # not for alice
    bob.click("#read")
    expect(bob.locator("#badge")).to_have_text("0")
    publish_during_drop(demo, "notify:inbox#bob", [{"from": "carol", "text": "while away",
                                                     "time": 0}])
    expect(bob.locator("#inbox li")).to_have_count(2)  # resumed: the missed one, once
    expect(bob.locator("#inbox li").first).to_contain_text("while away")
    expect(bob.locator("#badge")).to_have_text("1")
    assert not [e for e in console.errors() if "demo/notify" in e]


def test_compare_figures_are_plausible(demo: LiveServer, page: Page) -> None:
    page.goto(demo.url + "/demo/compare")
    wait_js(page, "() => window.compare.ws.count >= 200 && window.compare.sse.count >= 200",
            timeout=30_000)
    m = page.evaluate("""() => { const M = window.compare;
        const p50 = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
        return {sent: M.sent, ws: {n: M.ws.count, dups: M.ws.dups, p50: p50(M.ws.lat),
                                   wire: M.ws.wire, payload: M.ws.payload},
                sse: {n: M.sse.count, dups: M.sse.dups, p50: p50(M.sse.lat),
                      wire: M.sse.wire, payload: M.sse.payload}}; }""")
    for side, extra in (("ws", 2), ("sse", len("data: \n\n"))):
        s = m[side]
        assert s["n"] == m["sent"] == 200 and s["dups"] == 0
        assert s["p50"] > 0
        per, payload = s["wire"] / s["n"], s["payload"] / s["n"]
        assert payload >= 200  # the 256-byte payload, as received
        assert payload + extra <= per <= payload + 200, (side, per, payload)
    heads = wait_js(page, "() => window.compare.heads.ws && window.compare.heads.sse && "
                          "window.compare.heads")
    assert all(heads[k]["request"] > 50 and heads[k]["response"] > 50 for k in ("ws", "sse"))
    page.click("#drop")
    wait_js(page, "() => window.compare.ws.back && window.compare.sse.back && "
                  "window.compare.ws.count >= 300 && window.compare.sse.count >= 300 && "
                  "window.compare.bareClose")
    after = page.evaluate("() => [window.compare.sent, window.compare.ws.count, "
                          "window.compare.sse.count, window.compare.ws.dups, "
                          "window.compare.sse.dups, window.compare.bareClose]")
    assert after == [300, 300, 300, 0, 0, 3011]  # nothing lost, nothing twice
    page.click("#limit")
    limit = wait_js(page, "() => window.compare.limit")
    assert limit["ws"] == 8 and limit["sse"] < 8  # HTTP/1.1: 6 per origin, one is in use
    expect(page.locator("#table")).to_contain_text("EventSources")


def test_landing_clock_shows_the_last_tick_at_once(make_server: ServerFactory,
                                                   page: Page) -> None:
    """The clock no longer says "waiting…" for its first second: ``recent=1``."""
    server = make_server(demos=True, demo_market_interval=0, demo_match_minute=0)
    server.publish("clock", "2026-01-01T00:00:00+00:00")  # no clock task runs here
    page.goto(server.url + "/")
    expect(page.locator("#clock")).to_have_text("2026-01-01T00:00:00+00:00")
    for name in ("chat", "whiteboard", "ticker", "scores", "notifications", "compare"):
        expect(page.locator(f"a[href='/demo/{name}']")).to_have_count(1)
    code = page.locator("header code").first
    if code.count():  # code on the dark header is light on dark
        color = code.evaluate("(el) => getComputedStyle(el).color")
        assert color == "rgb(255, 255, 255)"
