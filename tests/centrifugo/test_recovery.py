"""Centrifugo recovery takes the hub's one resume path: a replay larger than ``max_buffer``
is delivered (issue 8 item 6), a replay beyond the resume budget is answered with
``recovered: false`` (or error 112 on request), never a disconnect loop (issue 10 item 2)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from livehub.core.limits import Limits

from .conftest import CfServer, make_cf_server, token
from .wsclient import RawClient, connect

CHANNEL = "chat:replay"
COUNT = 40
PAD = "r" * 8000  # 40 x 8 KB: five times max_buffer below


@pytest.fixture
def small_buffer_server() -> Iterator[CfServer]:
    srv = make_cf_server(max_buffer=64 * 1024, limits=Limits(resume_max_bytes=1024 * 1024))
    yield srv
    srv.stop()


def publish_history(srv: CfServer) -> dict[str, Any]:
    """Publish ``COUNT`` big messages; the result of the first one (its epoch)."""
    first: dict[str, Any] = {}
    for seq in range(COUNT):
        body = srv.api("publish", channel=CHANNEL, data={"seq": seq, "pad": PAD})
        first = first or body["result"]
    return first


async def recover(srv: CfServer, epoch: str, offset: int, *, flag: int = 0
                  ) -> tuple[RawClient, dict[str, Any]]:
    # no permessage-deflate: the replay must take its full size in the buffers
    ws = await connect(srv.cf_ws, max_size=None, compression=None).__aenter__()
    client = RawClient(ws)
    await client.call("connect", {"token": token("replayer")})
    params: dict[str, Any] = {"channel": CHANNEL, "recover": True, "epoch": epoch,
                              "offset": offset}
    if flag:
        params["flag"] = flag
    return client, await client.call("subscribe", params)


async def publications(client: RawClient, count: int) -> list[dict[str, Any]]:
    """The next ``count`` publication pushes (join/leave pushes skipped)."""
    pubs: list[dict[str, Any]] = []
    while len(pubs) < count:
        push = await client.push()
        push = push.get("push", push)  # pushes batched behind a reply keep their envelope
        if "pub" in push:
            pubs.append(push["pub"])
    return pubs


async def test_replay_larger_than_max_buffer_is_delivered(
        small_buffer_server: CfServer) -> None:
    srv = small_buffer_server
    first = publish_history(srv)
    client, reply = await recover(srv, first["epoch"], 0)
    try:
        result = reply["subscribe"]
        assert result["recovered"] is True and result["offset"] == 0
        seqs = [pub["data"]["seq"] for pub in await publications(client, COUNT)]
        assert seqs == list(range(COUNT))
        # and it stays subscribed: the next live publication arrives
        srv.api("publish", channel=CHANNEL, data={"seq": COUNT})
        assert (await publications(client, 1))[0]["data"]["seq"] == COUNT
    finally:
        await client.ws.close()


async def test_replay_beyond_the_resume_budget_is_not_recovered() -> None:
    srv = make_cf_server(limits=Limits(resume_max_bytes=100_000))
    try:
        first = publish_history(srv)
        client, reply = await recover(srv, first["epoch"], 0)
        try:
            result = reply["subscribe"]
            assert result["was_recovering"] is True and result["recovered"] is False
            assert result["offset"] == COUNT
            srv.api("publish", channel=CHANNEL, data={"seq": COUNT})
            pub = (await publications(client, 1))[0]
            assert pub["data"]["seq"] == COUNT and pub["offset"] == COUNT + 1
        finally:
            await client.ws.close()
        strict, reply = await recover(srv, first["epoch"], 0, flag=2)
        try:
            assert reply["error"]["code"] == 112
        finally:
            await strict.ws.close()
    finally:
        srv.stop()
