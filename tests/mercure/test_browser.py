"""Chromium's own ``EventSource`` on the Mercure hub from a same-origin page, for both
generations of selectors: the page publishes with ``fetch``, receives what its selectors match
with the ids the hub answered, never a private update it is not allowed, and resumes by itself
after the server ends the stream."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import browser, page, playwright, run_js, wait_js
from tests.conftest import API_KEY
from tests.mercure.conftest import MercureServer
from tests.mercure.tokens_helpers import PUB_KEY, SUB_KEY, access, detail, legacy

pytestmark = pytest.mark.browser
__all__ = ["browser", "page", "playwright"]  # the Chromium fixtures of tests/browser

SUBSCRIBE = """(params) => new Promise((resolve) => {
    window.log = [];
    const url = new URL('/.well-known/mercure', location);
    for (const [k, v] of params) url.searchParams.append(k, v);
    const es = new EventSource(url);
    window.es = es;
    const push = (e) => window.log.push([e.type, e.data, e.lastEventId]);
    es.onmessage = push;
    es.addEventListener('book', push);
    es.addEventListener('reset', push);
    es.onopen = () => resolve('open');
    es.onerror = () => { if (es.readyState === EventSource.CLOSED) resolve('refused'); };
})"""

PUBLISH = """async ([fields, key]) => {
    const body = new URLSearchParams();
    for (const [k, v] of fields) body.append(k, v);
    const r = await fetch('/.well-known/mercure', {method: 'POST', body,
                                                   headers: {'X-API-Key': key}});
    return [r.status, await r.text()];
}"""

B1 = "https://example.com/books/1"


@pytest.mark.parametrize("kind", ["topic", "match"])
def test_browser_subscribes_publishes_and_resumes(page: Page, make_mercure: object,
                                                  kind: str) -> None:
    hub: MercureServer = make_mercure(sse_retry_ms=100)  # type: ignore[operator]
    page.goto(hub.url + "/health")
    assert run_js(page, SUBSCRIBE, [[kind, B1], [kind, "news"]]) == "open"
    status, first_id = run_js(page, PUBLISH, [[["topic", B1], ["data", "one"],
                                               ["type", "book"]], API_KEY])
    assert status == 200 and first_id.startswith("urn:uuid:")
    run_js(page, PUBLISH, [[["topic", B1], ["data", "secret"], ["private", "on"]], API_KEY])
    run_js(page, PUBLISH, [[["topic", "https://example.com/books/2"], ["data", "other"]],
                           API_KEY])
    _, second_id = run_js(page, PUBLISH, [[["topic", "news"], ["topic", B1], ["data", "two"],
                                           ["id", "news-2"]], API_KEY])
    log = wait_js(page, "() => window.log.length >= 2 && window.log")
    assert log == [["book", "one", first_id], ["message", "two", "news-2"]]
    assert second_id == "news-2"
    # the server ends the stream; updates published meanwhile arrive after the reconnection
    hub.drop_streams()
    for i in range(3):
        hub.mercure_publish(B1, data=f"after {i}")
    log = wait_js(page, "() => window.log.length >= 5 && window.log")
    assert [entry[1] for entry in log] == ["one", "two", "after 0", "after 1", "after 2"]
    run_js(page, "() => { window.es.close(); return true; }")


@pytest.mark.parametrize("generation", ["0.x", "1.0"])
def test_browser_private_updates_with_a_cookie(page: Page, hub: MercureServer,
                                               generation: str) -> None:
    """The subscriber's token in a cookie: private updates of its topics arrive, the others'
    do not (a public update published after them arrives alone)."""
    if generation == "0.x":
        token = legacy(SUB_KEY, subscribe=[B1])
        params = [["topic", B1], ["topic", "https://example.com/books/2"]]
    else:  # (the __Secure- cookie of 1.0 needs HTTPS: the same token in the 0.x cookie)
        token = access(SUB_KEY, aud=None, details=[detail(["subscribe"], {"match": B1})])
        params = [["match", B1], ["match", "https://example.com/books/2"]]
    page.context.add_cookies([{"name": "mercureAuthorization", "value": token, "url": hub.url,
                               "httpOnly": True, "sameSite": "Strict"}])
    page.goto(hub.url + "/health")
    assert run_js(page, SUBSCRIBE, params) == "open"
    publisher = legacy(PUB_KEY, publish=["*"])
    fetch = """async ([fields, token]) => {
        const r = await fetch('/.well-known/mercure', {method: 'POST',
            body: new URLSearchParams(fields), headers: {'Authorization': 'Bearer ' + token}});
        return [r.status, await r.text()];
    }"""
    status, private_id = run_js(page, fetch, [[["topic", B1], ["data", "mine"],
                                               ["private", "on"]], publisher])
    assert status == 200
    run_js(page, fetch, [[["topic", "https://example.com/books/2"], ["data", "not mine"],
                          ["private", "on"]], publisher])
    run_js(page, fetch, [[["topic", "https://example.com/books/2"], ["data", "public"]],
                         publisher])
    log = wait_js(page, "() => window.log.length >= 2 && window.log")
    assert log == [["message", "mine", private_id], ["message", "public", log[1][2]]]
