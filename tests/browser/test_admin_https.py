"""The admin dashboard over HTTPS and HTTP/2 in headless Chromium: the session cookie is
``Secure``, and the live tail (a streamed fetch) and the publish form work as streams of the
one HTTP/2 connection."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.admin.conftest import ADMIN, PASSWORD
from tests.browser.conftest import wait_js
from tests.browser.test_admin import text_is
from tests.browser.test_h2_eventsources import (  # noqa: F401 - fixtures
    https_page,
    module_tls,
    trusting_browser,
)
from tests.conftest import ServerFactory
from tests.tlsca import TlsFiles

pytestmark = pytest.mark.browser


def test_dashboard_over_https_h2(make_server: ServerFactory, module_tls: TlsFiles,  # noqa: F811
                                 https_page: Page) -> None:  # noqa: F811
    server = make_server(admin=ADMIN, tls_cert=str(module_tls.cert),
                         tls_key=str(module_tls.key))
    page = https_page
    first = page.goto(server.url + "/admin")
    assert first is not None and first.status == 401
    assert page.evaluate(
        "performance.getEntriesByType('navigation')[0].nextHopProtocol") == "h2"
    page.fill("#password", PASSWORD)
    page.click("#login-button")
    text_is(page, "#status", "live")
    cookies = page.context.cookies()
    session = [c for c in cookies if c["name"] == "livehub_admin"]
    assert session and session[0]["secure"] and session[0]["httpOnly"]
    assert session[0]["sameSite"] == "Strict"
    page.fill("#inspect-channel", "chat:tls")
    page.click("#inspect-form button")
    text_is(page, "#tail-state", "live")
    page.fill("#pub-channel", "chat:tls")
    page.fill("#pub-data", "over h2")
    page.click("#publish-form button")
    text_is(page, "#pub-result", "published at offset 1")
    wait_js(page, """() => [...document.querySelectorAll('#tail-log li.pub')]
                       .some(li => li.textContent.includes('over h2'))""")
