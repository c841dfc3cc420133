"""The npm ``eventsource`` client on a two-channel SSE stream: event names, multi-line data,
and its own reconnection with ``Last-Event-ID`` after the server ends the stream, while
publications go on: every message exactly once, in order."""

from __future__ import annotations

import json

import pytest

from livehub.wire.payload import PayloadKind
from tests.conftest import LiveServer, ServerFactory
from tests.node.conftest import Line, NodeFactory, NodeScript

pytestmark = pytest.mark.node


def publication(seq: int) -> tuple[str, object, str | None]:
    """Channel, data and event name of publication ``seq`` (mixed channels, kinds, events)."""
    channel = "a" if seq % 2 == 0 else "b"
    event = {0: "score", 1: None, 2: "news"}[seq % 3]
    data: object
    if seq % 4 == 3:
        data = {"seq": seq, "text": "json payload"}
    else:
        data = f"seq {seq}\nsecond line of {seq}\r\nthird \u00e9\u2713 line\rfourth"
    return channel, data, event


def expected_event(seq: int) -> tuple[str, str]:
    """What an EventSource must report for publication ``seq``: (type, data)."""
    _, data, event = publication(seq)
    if isinstance(data, str):
        # SSE splits on CRLF, CR and LF; the client joins the data: lines with LF
        text = data.replace("\r\n", "\n").replace("\r", "\n")
    else:
        text = json.dumps(data, separators=(",", ":"))
    return event or "message", text


def publish(server: LiveServer, seqs: range) -> None:
    for seq in seqs:
        channel, data, event = publication(seq)
        server.publish(channel, data, event)


def drop_streams_and_publish(server: LiveServer, seqs: range) -> int:
    """In one turn of the server's loop: end every SSE stream (3011, reconnect), then publish
    ``seqs`` straight into the hub, before any client can come back."""
    assert server.app is not None
    node = server.app.ctx.node

    async def publish_all() -> None:
        for seq in seqs:
            channel, data, event = publication(seq)
            if isinstance(data, str):
                payload, kind = data.encode(), PayloadKind.TEXT
            else:
                payload, kind = json.dumps(data, separators=(",", ":")).encode(), PayloadKind.JSON
            await node.publish(channel, payload, kind, event=event)

    return server.drop_streams(publish_all)


def events_until(script: NodeScript, count: int, timeout: float = 10) -> list[Line]:
    events: list[Line] = []

    def enough(line: Line) -> bool:
        if line["kind"] == "event" and line["type"] not in ("disconnect", "reset"):
            events.append(line)
        return len(events) >= count

    script.until(enough, timeout)
    return events


def test_eventsource_two_channels_resume_after_server_drop(make_server: ServerFactory,
                                                         node: NodeFactory) -> None:
    server = make_server(sse_retry_ms=200)
    script = node("sse_client.mjs", server.url + "/events?channel=a&channel=b",
                  "score", "news")
    first = script.until_kind("fetch")
    assert first["lastEventId"] is None
    script.until_kind("open")

    publish(server, range(10))
    before = events_until(script, 10)
    assert [(e["type"], e["data"]) for e in before] == [expected_event(s) for s in range(10)]
    ids = [e["id"] for e in before]
    assert all(ids) and len(set(ids)) == 10, ids

    # the server ends the stream while publications go on
    assert drop_streams_and_publish(server, range(10, 20)) == 1
    goodbye = script.until(lambda line: line["kind"] == "event"
                           and line["type"] == "disconnect")[-1]
    info = json.loads(goodbye["data"])
    assert info == {"code": 3011, "reason": "force reconnect", "reconnect": True}
    script.until_kind("error")
    again = script.until_kind("fetch")
    assert again["lastEventId"] == ids[-1]
    script.until_kind("open")

    publish(server, range(20, 30))
    after = events_until(script, 20)
    # a last publication marks the end: anything duplicated would come before it
    publish(server, range(30, 31))
    after += events_until(script, 1)
    assert [(e["type"], e["data"]) for e in after] == [expected_event(s) for s in range(10, 31)]
    all_ids = ids + [e["id"] for e in after]
    assert len(set(all_ids)) == 31
    assert [line for line in script.seen if line["kind"] == "fetch"] == [first, again]

    script.send({"op": "close"})
    script.finish()
