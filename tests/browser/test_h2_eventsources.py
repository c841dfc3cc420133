"""Headless Chromium over HTTPS: one page opens 12 EventSources to the hub and every one
receives, because they are streams of one HTTP/2 connection (over HTTP/1.1 a browser opens at
most 6 connections per origin, so the 7th would wait for a free one forever)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, run_js, wait_js
from tests.conftest import LiveServer, ServerFactory
from tests.tlsca import TlsFiles, make_tls_files

pytestmark = pytest.mark.browser

STREAMS = 12


@pytest.fixture(scope="module")
def module_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="module")
def trusting_browser(playwright: Playwright, module_tls: TlsFiles) -> Iterator[Browser]:
    """Chromium that trusts the test certificate (by its public key) and nothing else new."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, timeout=30_000,
        args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={module_tls.spki}"])
    yield browser
    browser.close()


@pytest.fixture
def https_page(trusting_browser: Browser) -> Iterator[Page]:
    context = trusting_browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def test_twelve_event_sources_on_one_page_all_receive(
        make_server: ServerFactory, module_tls: TlsFiles, https_page: Page) -> None:
    srv: LiveServer = make_server(tls_cert=str(module_tls.cert), tls_key=str(module_tls.key))
    srv.verify = module_tls.client_context()
    page = https_page
    page.goto(srv.url + "/health")
    assert page.evaluate(
        "performance.getEntriesByType('navigation')[0].nextHopProtocol") == "h2"
    run_js(page, """(count) => {
        window.opened = 0;
        window.received = [];
        for (let i = 0; i < count; i++) {
            const source = new EventSource(`/events?channel=chat:tab${i}`);
            source.onopen = () => { window.opened += 1; };
            source.onmessage = (event) => { window.received.push(`${i}:${event.data}`); };
        }
    }""", STREAMS)
    wait_js(page, "(count) => window.opened === count", STREAMS)
    for i in range(STREAMS):
        srv.publish(f"chat:tab{i}", f"hello {i}")
    wait_js(page, "(count) => window.received.length === count", STREAMS)
    received = sorted(page.evaluate("window.received"))
    assert received == sorted(f"{i}:hello {i}" for i in range(STREAMS))
    health = srv.call_soon(lambda: len(srv.app.ctx.connections))  # type: ignore[union-attr]
    assert health == STREAMS


def test_a_websocket_of_an_https_page_is_an_http2_stream(
        make_server: ServerFactory, module_tls: TlsFiles, https_page: Page) -> None:
    """Chromium opens its WebSocket as a stream of the page's HTTP/2 connection once the
    server offers RFC 8441 (SETTINGS_ENABLE_CONNECT_PROTOCOL)."""
    from livehub.transports.h2 import StreamTransport
    from livehub.transports.websocket import WebSocketConnection

    srv: LiveServer = make_server(tls_cert=str(module_tls.cert), tls_key=str(module_tls.key))
    page = https_page
    page.goto(srv.url + "/health")
    echoed = run_js(page, """(url) => new Promise((resolve, reject) => {
        window.ws = new WebSocket(url);
        window.ws.onopen = () => window.ws.send('over h2');
        window.ws.onmessage = (event) => resolve(event.data);
        window.ws.onerror = () => reject(new Error('websocket error'));
    })""", srv.ws_url + "/echo")
    assert echoed == "Echo: over h2"

    def transports() -> list[str]:
        assert srv.app is not None
        return [type(c.transport).__name__ for c in srv.app.ctx.connections
                if isinstance(c, WebSocketConnection)]

    assert srv.call_soon(transports) == [StreamTransport.__name__]
