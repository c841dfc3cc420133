"""A client that goes away while its request is being answered: the handler stops."""

from __future__ import annotations

import httpx

from ..conftest import LiveServer
from .rawhttp import connect, subscribers, wait_until


def test_dropped_long_poll_releases_its_subscription(server: LiveServer) -> None:
    cursor = httpx.get(server.url + "/poll", params={"channel": "lp"}).json()["cursor"]
    with connect(server.port) as sock:
        sock.sendall(f"GET /poll?channel=lp&cursor={cursor}&timeout=100 HTTP/1.1\r\n"
                     "Host: x\r\n\r\n".encode())
        wait_until(server, lambda app: subscribers("lp")(app) == 1)
    # the client is gone long before its 100 s timeout: the subscription goes with it
    wait_until(server, lambda app: subscribers("lp")(app) == 0)
    health = httpx.get(server.url + "/health").json()
    assert health["connections"] == 0
    # and the channel still works for the next poll
    r = httpx.get(server.url + "/poll", params={"channel": "lp", "cursor": cursor,
                                                 "timeout": "0"})
    assert r.status_code == 200
