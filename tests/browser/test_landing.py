"""The landing page ``/`` in headless Chromium: the echo reply and the ticking clock show up
in the DOM, the echo form works, and a screenshot is taken."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Console
from tests.conftest import ServerFactory

pytestmark = pytest.mark.browser

ISO_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")


def test_landing_page_shows_echo_and_clock(make_server: ServerFactory, page: Page,
                                           tmp_path: Path) -> None:
    server = make_server(clock=True)
    console = Console(page)
    response = page.goto(server.url + "/")
    assert response is not None and response.status == 200
    expect(page).to_have_title("livehub")
    expect(page.locator("h1")).to_have_text("livehub")

    echo_log = page.locator("#echo-log")
    expect(echo_log).to_contain_text("Received: Echo: Hello Server!")
    expect(page.locator("#echo-state")).to_have_text("· connected")
    page.fill("#echo-input", "typed in the form \u2713")
    page.click("#echo-form button")
    expect(echo_log).to_contain_text("Received: Echo: typed in the form \u2713")

    clock = page.locator("#clock")
    expect(clock).to_have_text(ISO_SECONDS)
    expect(page.locator("#clock-state")).to_have_text("· connected")
    first = clock.text_content()
    assert first is not None
    # the clock ticks: the text changes to a later time within about a second
    page.wait_for_function("prev => document.getElementById('clock').textContent !== prev",
                           arg=first, timeout=3_000)
    second = clock.text_content()
    assert second is not None and ISO_SECONDS.match(second), second
    t1, t2 = (datetime.datetime.fromisoformat(t) for t in (first, second))
    assert 0 < (t2 - t1).total_seconds() <= 2, (first, second)
    now = datetime.datetime.now(datetime.UTC)
    assert abs((now - t2).total_seconds()) < 5

    shot = tmp_path / "landing.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, len(data)
    assert console.errors() == []
