"""Headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright's sync API.

One browser per session; each test gets a fresh context and page.  ``playwright install``
cannot download browsers here, so the system Chromium is launched by path; when it is missing
the tests fail (never skip) saying what to install.

Pages are served by the livehub server under test: the landing page ``/``, or ``/health`` as a
blank same-origin page on which a test runs its scripts (``add_script_tag`` for the textbook
snippets exactly as written, ``evaluate`` for instrumentation).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from tests.conftest import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 10_000


# Module scope, not session: Playwright's sync API keeps an event loop running in the main
# thread while it is open, which would break every asyncio test collected after it.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: the browser tests need Debian's Chromium "
                    "(apt-get install -y chromium)", pytrace=False)
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                         headless=True, timeout=30_000)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


class Console:
    """Everything a page logs to its console, with a wait that is woken by each message."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.messages: list[tuple[float, ConsoleMessage]] = []
        page.on("console", lambda msg: self.messages.append((time.monotonic(), msg)))

    def texts(self, kind: str | None = None) -> list[str]:
        return [m.text for _, m in self.messages if kind is None or m.type == kind]

    def errors(self) -> list[str]:
        """Console errors, except the browser's own 404 for ``/favicon.ico``."""
        return [m.text for _, m in self.messages if m.type == "error"
                and not m.location.get("url", "").endswith("/favicon.ico")]

    def wait_for(self, cond: Callable[[list[str]], bool], timeout: float = TIMEOUT_MS) -> None:
        """Return once ``cond(texts)`` holds (checked again after every console message)."""
        if cond(self.texts()):
            return
        with self.page.expect_console_message(lambda _msg: cond(self.texts()),
                                              timeout=timeout):
            pass


def run_js(page: Page, function: str, arg: Any = None, timeout: float = TIMEOUT_MS) -> Any:
    """``page.evaluate`` of a JS function of ``arg`` that may return a promise, bounded:
    rejected (and so failing the test) if it has not settled within ``timeout`` ms."""
    bounded = f"""async ([arg, ms]) => {{
        const fn = {function};
        let timer;
        const limit = new Promise((resolve, reject) => {{
            timer = setTimeout(() => reject(new Error(`no result within ${{ms}} ms`)), ms);
        }});
        try {{ return await Promise.race([fn(arg), limit]); }} finally {{ clearTimeout(timer); }}
    }}"""
    return page.evaluate(bounded, [arg, timeout])


def wait_js(page: Page, expression: str, arg: Any = None, timeout: float = TIMEOUT_MS) -> Any:
    """Wait until a JS expression (a function of ``arg``) is truthy; return its value."""
    return page.wait_for_function(expression, arg=arg, timeout=timeout).json_value()


def drop_sse_streams(server: LiveServer, then: Callable[[], Any] | None = None) -> int:
    """See ``LiveServer.drop_streams``."""
    return server.drop_streams(then)
