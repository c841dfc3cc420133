"""The admin dashboard in headless Chromium: log in, watch the connection count change when a
client connects, publish from the form and see the publication arrive in the live tail; a
page of another site cannot make the logged-in browser act (SameSite, CSRF token)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from playwright.sync_api import Page

from tests.admin.conftest import ADMIN, PASSWORD
from tests.browser.conftest import wait_js
from tests.conftest import LiveServer, ServerFactory

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCREENSHOTS = os.environ.get("LIVEHUB_DOCS_SCREENSHOTS") == "1"
"""Set to 1 to refresh the screenshots of docs/admin.md."""


def text_is(page: Page, selector: str, value: str) -> None:
    wait_js(page, "([s, v]) => document.querySelector(s)?.textContent.trim() === v",
            [selector, value])


def log_in(page: Page, server: LiveServer) -> None:
    first = page.goto(server.url + "/admin")
    assert first is not None and first.status == 401
    page.fill("#password", "not-the-password")
    page.click("#login-button")
    text_is(page, "#login-message", "Wrong password.")
    page.fill("#password", PASSWORD)
    page.click("#login-button")
    text_is(page, "#status", "live")


def history(server: LiveServer, channel: str) -> list[bytes]:
    assert server.app is not None
    result = server.call(server.app.ctx.node.history(channel))
    return [p.data for p in result.publications]


def test_login_live_count_publish_and_tail(page: Page, make_server: ServerFactory) -> None:
    server = make_server(admin=ADMIN)
    log_in(page, server)
    text_is(page, "#conn-total", "0")
    with httpx.Client(timeout=5) as client, client.stream(
            "GET", server.url + "/events", params={"channel": "chat:lobby"}) as events:
        assert events.status_code == 200
        text_is(page, "#conn-sse", "1")
        text_is(page, "#conn-total", "1")
        text_is(page, 'tr[data-channel="chat:lobby"] .subscribers', "1")

        page.fill("#inspect-channel", "chat:lobby")
        page.click("#inspect-form button")
        text_is(page, "#tail-state", "live")
        text_is(page, "#conn-http-stream", "1")  # the tail itself is a stream

        page.fill("#pub-channel", "chat:lobby")
        page.fill("#pub-data", '{"text": "hello from the dashboard"}')
        page.click("#publish-form button")
        text_is(page, "#pub-result", "published at offset 1")
        wait_js(page, """() => [...document.querySelectorAll('#tail-log li.pub')]
                           .some(li => li.textContent.includes('hello from the dashboard'))""")
        wait_js(page, """() => [...document.querySelectorAll('#history-log li')]
                           .some(li => li.textContent.includes('hello from the dashboard'))""")
        text_is(page, 'tr[data-channel="chat:lobby"] td:nth-child(3)', "1")  # its offset
        if SCREENSHOTS:
            page.set_viewport_size({"width": 1400, "height": 900})
            page.screenshot(path=str(DOCS / "admin.png"), full_page=True)
        received = b""
        for chunk in events.iter_bytes():
            received += chunk
            if b"hello from the dashboard" in received:
                break
        assert b'data: {"text":"hello from the dashboard"}' in received
    text_is(page, "#conn-sse", "0")
    assert history(server, "chat:lobby") == [b'{"text":"hello from the dashboard"}']


def test_login_page_screenshot(page: Page, make_server: ServerFactory) -> None:
    server = make_server(admin=ADMIN)
    response = page.goto(server.url + "/admin")
    assert response is not None and response.status == 401
    assert page.is_visible("#password")
    if SCREENSHOTS:
        page.set_viewport_size({"width": 900, "height": 560})
        page.screenshot(path=str(DOCS / "admin-login.png"))


def test_another_site_cannot_act_for_the_logged_in_admin(page: Page,
                                                        make_server: ServerFactory) -> None:
    server = make_server(admin=ADMIN)
    log_in(page, server)
    # http://localhost:port is another site than http://127.0.0.1:port (SameSite=Strict)
    evil = server.url.replace("127.0.0.1", "localhost") + "/health"
    page.goto(evil)
    target = server.url + "/admin/api/publish"
    status = page.evaluate("""async (target) => {
        const r = await fetch(target, {method: 'POST', credentials: 'include', mode: 'no-cors',
            headers: {'Content-Type': 'text/plain'},
            body: JSON.stringify({channel: 'chat:csrf', data: 'forged by fetch'})});
        return r.type; }""", target)
    assert status == "opaque"
    with page.expect_navigation():
        page.evaluate("""(target) => {
            const form = document.createElement('form');
            form.method = 'POST'; form.action = target; form.enctype = 'text/plain';
            const field = document.createElement('input');
            field.name = '{"channel":"chat:csrf","data":"forged by form","x":"';
            field.value = '"}';
            form.append(field); document.body.append(form); form.submit(); }""", target)
    assert "cross-origin requests to the admin API are refused" in (page.text_content("body") or "")
    assert history(server, "chat:csrf") == []
    # the admin's own session still works
    page.goto(server.url + "/admin")
    text_is(page, "#status", "live")
