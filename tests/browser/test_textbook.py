"""The two textbook snippets of issue 2, exactly as written (only host and port adapted), run in
headless Chromium: the WebSocket echo and the once-a-second SSE clock."""

from __future__ import annotations

import datetime
import itertools

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import Console
from tests.conftest import LiveServer, ServerFactory

pytestmark = pytest.mark.browser

ECHO_SNIPPET = """\
const ws = new WebSocket('ws://localhost:8000/echo');
ws.onopen = () => { ws.send('Hello Server!'); };
ws.onmessage = (event) => { console.log('Received:', event.data); };   // "Echo: Hello Server!"
"""

CLOCK_SNIPPET = """\
const eventSource = new EventSource('/events?channel=clock');
eventSource.onmessage = (event) => { console.log('New event:', event.data); }; // ISO time, every second
eventSource.onerror = (error) => { console.error('EventSource error:', error); };
"""  # noqa: E501 (the snippet exactly as issue 2 gives it)


def test_websocket_echo_snippet(server: LiveServer, page: Page) -> None:
    console = Console(page)
    page.goto(server.url + "/health")
    page.add_script_tag(content=ECHO_SNIPPET.replace("localhost:8000",
                                                     f"127.0.0.1:{server.port}"))
    console.wait_for(lambda texts: "Received: Echo: Hello Server!" in texts)
    assert console.texts("log") == ["Received: Echo: Hello Server!"]
    assert console.errors() == []


def test_sse_clock_snippet(make_server: ServerFactory, page: Page) -> None:
    server = make_server(clock=True)
    console = Console(page)
    page.goto(server.url + "/health")
    page.add_script_tag(content=CLOCK_SNIPPET)
    prefix = "New event: "
    console.wait_for(lambda texts: sum(t.startswith(prefix) for t in texts) >= 4,
                     timeout=8_000)
    now = datetime.datetime.now(datetime.UTC)
    ticks = [(at, msg.text) for at, msg in console.messages if msg.text.startswith(prefix)]
    assert console.errors() == []
    times = [datetime.datetime.fromisoformat(text.removeprefix(prefix)) for _, text in ticks]
    for t in times:
        assert t.tzinfo is not None and t.utcoffset() == datetime.timedelta(0), t
        assert abs((now - t).total_seconds()) < 5, (now, t)
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    # whole seconds (timespec="seconds"): one apart, or two if a tick lands late
    assert all(step in (1, 2) for step in steps), times
    assert (times[-1] - times[0]).total_seconds() <= len(steps) + 1, times
    # and they arrive about once a second (measured where the console messages land)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(ticks)]
    assert 0.7 < sum(gaps) / len(gaps) < 1.3 and max(gaps) < 2, gaps
