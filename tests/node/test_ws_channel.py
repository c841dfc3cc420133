"""npm ``ws`` clients on ``/ws?channel=...``: client publishing fans out to every subscriber in
order; publishing on a read-only namespace closes the socket with 3507 (permission denied)."""

from __future__ import annotations

import base64
from collections import defaultdict

import httpx
import pytest

from tests.conftest import LiveServer
from tests.node.conftest import Line, NodeFactory, NodeScript

pytestmark = pytest.mark.node


def collect(script: NodeScript, per_index: int, subscribers: int,
            timeout: float = 10) -> dict[int, list[Line]]:
    """Messages by subscriber index until each has ``per_index`` of them."""
    got: dict[int, list[Line]] = defaultdict(list)

    def enough(line: Line) -> bool:
        if line["kind"] == "message":
            got[line["index"]].append(line)
        return len(got) == subscribers and all(len(v) >= per_index for v in got.values())

    script.until(enough, timeout)
    return got


def test_ws_subscribers_receive_client_publications_in_order(server: LiveServer,
                                                            node: NodeFactory) -> None:
    script = node("ws_channel.mjs", server.ws_url, "chat:x", "3")
    script.until_kind("ready")
    blob = bytes(range(256)) * 4
    items: list[dict[str, str]] = [{"text": f"m-{i} \u00e9\u2713"} for i in range(40)]
    items.append({"b64": base64.b64encode(blob).decode()})
    items.append({"text": ""})
    script.send({"op": "send", "index": 0, "items": items})
    got = collect(script, len(items), 3)
    expected = [(False, f"m-{i} \u00e9\u2713") for i in range(40)]
    expected += [(True, base64.b64encode(blob).decode()), (False, "")]
    for index in range(3):
        assert [(m["binary"], m["data"]) for m in got[index]] == expected, index

    # A publication over the HTTP API reaches the same sockets, after those.
    server.publish("chat:x", "from http")
    got = collect(script, 1, 3)
    for index in range(3):
        assert [(m["binary"], m["data"]) for m in got[index]] == [(False, "from http")]

    script.send({"op": "close"})
    closes = [line for line in script.finish() if line["kind"] == "close"]
    assert sorted((c["index"], c["code"]) for c in closes) == [(0, 1000), (1, 1000), (2, 1000)]
    assert not [line for line in script.seen if line["kind"] == "message"
                and line["data"] not in {d for _, d in expected} | {"from http"}]


def test_ws_publish_on_read_only_namespace_closes_with_3507(server: LiveServer,
                                                           node: NodeFactory) -> None:
    script = node("ws_channel.mjs", server.ws_url, "ro:x", "1")
    script.until_kind("ready")
    cursor = server.publish("ro:x", "for subscribers")["cursor"]
    assert script.until_kind("message")["data"] == "for subscribers"

    script.send({"op": "send", "index": 0, "items": [{"text": "not allowed"}]})
    close = script.until_kind("close")
    assert close["code"] == 3507, close
    assert "ro:x" in close["reason"], close
    script.finish()

    # nothing was published to the channel
    reply = httpx.get(server.url + "/poll", params={"channel": "ro:x", "cursor": cursor,
                                                   "timeout": "0"})
    assert reply.status_code == 200
    assert reply.json()["messages"] == []
