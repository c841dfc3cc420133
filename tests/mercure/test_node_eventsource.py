"""The npm ``eventsource`` client on the Mercure hub: updates of several topics and of the
server API, the server ending the stream while updates go on, the client's own reconnection
with ``Last-Event-ID``: every update exactly once, in order, with the publisher's ids."""

from __future__ import annotations

import pytest

from tests.mercure.conftest import HUB, MercureServer
from tests.node.conftest import Line, NodeFactory

pytestmark = pytest.mark.node

BOOKS = "https://example.com/books/"


def events(lines: list[Line]) -> list[Line]:
    return [line for line in lines if line["kind"] == "event"
            and line["type"] not in ("disconnect", "reset")]


@pytest.mark.parametrize("selector", ["topic", "match"])
def test_eventsource_resumes_across_topics(make_mercure: object, node: NodeFactory,
                                           selector: str) -> None:
    hub: MercureServer = make_mercure(sse_retry_ms=200)  # type: ignore[operator]
    url = (f"{hub.url}{HUB}?{selector}={BOOKS}1&{selector}={BOOKS}2"
           f"&{selector}=news")
    script = node("sse_client.mjs", url, "book")
    script.until_kind("open")
    ids = []
    for i in range(3):
        ids.append(hub.mercure_publish(f"{BOOKS}{1 + i % 2}", data=f"m{i}", type="book",
                                       id=f"rev-{i}").text)
    hub.publish("books:2", "m3")  # the server API, to a mapped channel
    seen = events(script.until(lambda line: line.get("data") == "m3"))
    assert hub.drop_streams() == 1
    for i in range(4, 8):
        hub.mercure_publish("news" if i % 2 else f"{BOOKS}1", data=f"m{i}")
    hub.mercure_publish("https://example.com/unrelated", data="never")
    seen += events(script.until(lambda line: line.get("data") == "m7", timeout=15))
    assert [e["data"] for e in seen] == [f"m{i}" for i in range(8)]
    assert [e["id"] for e in seen[:3]] == ids == ["rev-0", "rev-1", "rev-2"]
    assert seen[0]["type"] == "book" and seen[4]["type"] == "message"
    fetches = [line for line in script.seen if line["kind"] == "fetch"]
    assert fetches[0]["lastEventId"] is None and fetches[1]["lastEventId"] == seen[3]["id"]
    script.send({"op": "close"})
    script.finish()
