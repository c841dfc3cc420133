"""Chromium's own ``EventSource`` authenticated by a cookie: same-origin without asking, and
cross-origin (same site, another port) with ``withCredentials`` when the page's origin is
listed; without ``withCredentials`` the cookie stays home and the private channel is refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import run_js, wait_js
from tests.centrifugo.conftest import CfServer
from tests.conftest import ServerFactory
from tests.security.conftest import make_security_server, tok

pytestmark = pytest.mark.browser

SUBSCRIBE = """([url, credentials]) => new Promise((resolve) => {
    window.log = [];
    const es = new EventSource(url, {withCredentials: credentials});
    es.onmessage = (e) => window.log.push(e.data);
    es.onopen = () => resolve('open');
    es.onerror = () => { if (es.readyState === EventSource.CLOSED) resolve('refused'); };
})"""


@pytest.fixture
def site(make_server: ServerFactory) -> str:
    """Another origin of the same site (127.0.0.1, another port): where the page comes from."""
    return make_server().url


@pytest.fixture
def hub(site: str) -> Iterator[CfServer]:
    srv = make_security_server(allowed_origins=(site,), cors_credentials=True)
    yield srv
    srv.stop()


def _login(page: Page, hub: CfServer) -> None:
    page.context.add_cookies([{"name": "livehub_token", "value": tok("42"),
                               "url": hub.url, "httpOnly": True, "sameSite": "Lax"}])


def test_same_origin_eventsource_sends_the_cookie(page: Page, hub: CfServer) -> None:
    _login(page, hub)
    page.goto(hub.url + "/health")
    assert run_js(page, SUBSCRIBE, ["/events?channel=user:notes%2342", False]) == "open"
    hub.publish("user:notes#42", "for 42")
    assert wait_js(page, "() => window.log.length >= 1 && window.log") == ["for 42"]


def test_cross_origin_eventsource_with_credentials(page: Page, hub: CfServer,
                                                   site: str) -> None:
    _login(page, hub)
    page.goto(site + "/health")
    url = hub.url + "/events?channel=members:x"
    assert run_js(page, SUBSCRIBE, [url, True]) == "open"
    hub.publish("members:x", "hello")
    assert wait_js(page, "() => window.log.length >= 1 && window.log") == ["hello"]
    # without withCredentials the browser sends no cookie: an anonymous client, refused
    assert run_js(page, SUBSCRIBE, [url, False]) == "refused"
