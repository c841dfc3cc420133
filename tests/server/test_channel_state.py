"""Reading channels costs no stored state (issue 10, finding 7): ``GET /poll`` with new channel
names and no cursor used to create a stream per name, kept for 24 hours."""

from __future__ import annotations

import httpx

from livehub.core.memory import MemoryBroker

from ..conftest import LiveServer


def test_polls_of_new_channels_store_nothing(server: LiveServer) -> None:
    assert server.app is not None
    broker = server.app.ctx.hub.broker
    assert isinstance(broker, MemoryBroker)
    cursors = {}
    with httpx.Client(base_url=server.url) as client:
        for batch in range(20):
            names = [f"n{batch}x{i}" for i in range(64)]
            r = client.get("/poll", params={"channel": names})
            assert r.status_code == 200
            cursors[batch] = r.json()["cursor"]
    assert server.call_soon(broker.channel_count) == 0
    # the cursor of a channel that was only read stays valid for its first publication
    server.publish("n3x5", "first")
    names = [f"n3x{i}" for i in range(64)]
    r = httpx.get(server.url + "/poll", params={"channel": names, "cursor": cursors[3]})
    body = r.json()
    assert [m["data"] for m in body["messages"]] == ["first"] and "reset" not in body
    assert server.call_soon(broker.channel_count) == 1
