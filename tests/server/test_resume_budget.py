"""A resume never replays beyond the resume budget (issue 10, finding 2): from an old cursor
in a channel of 1 MB messages, ``/poll`` answers a reset instead of building a reply of the
whole history, and SSE readers that never read get a reset instead of pinning the history in
their buffers.  Measured on a real ``livehub serve`` process (RSS from /proc, generous
margins: bounds, not speed); other clients stay served."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from livehub.core.limits import Limits
from livehub.wire.cursor import decode_cursor

from ..conftest import ServerFactory
from ..serve_process import API_KEY, ServeFactory, ServeProcess, serve  # noqa: F401 - fixture

MiB = 1024 * 1024
COUNT = 48
CHANNEL = "big:feed"
CONFIG = ("[namespaces.big]\nhistory_size = 1000\nhistory_ttl = 3600\n"
          "history_bytes = 1073741824\n"
          "allow_subscribe_for_client = true\nanonymous_subscribe = true\n")


def fill_history(srv: ServeProcess) -> str:
    """Publish ``COUNT`` publications of 1 MB; the cursor of the first one."""
    with httpx.Client(headers={"X-API-Key": API_KEY}, timeout=30) as client:
        first = ""
        for i in range(COUNT):
            r = client.post(srv.url + "/api/publish",
                            json={"channel": CHANNEL, "data": str(i % 10) * 1_000_000})
            result = r.json()["result"]
            first = first or result["cursor"]
    return first


def start(serve: ServeFactory, tmp_path: Path) -> tuple[ServeProcess, str]:  # noqa: F811
    config = tmp_path / "livehub.toml"
    config.write_text(CONFIG)
    srv = serve("--config", str(config))
    return srv, fill_history(srv)


def test_poll_from_an_old_cursor_answers_a_reset_with_bounded_memory(
        serve: ServeFactory, tmp_path: Path) -> None:  # noqa: F811
    srv, cursor = start(serve, tmp_path)
    before = srv.rss()
    srv.reset_peak()
    with httpx.Client(timeout=30) as client:
        r = client.get(srv.url + "/poll", params={"channel": CHANNEL, "cursor": cursor})
        grown = srv.peak_rss() - before
        assert grown < 32 * MiB, f"peak RSS grew by {grown / MiB:.0f} MiB"
        body = r.json()
        assert r.status_code == 200
        assert body["messages"] == [] and body["reset"] == [CHANNEL]
        assert decode_cursor(body["cursor"], [CHANNEL])[CHANNEL].offset == COUNT
        assert client.get(srv.url + "/health").status_code == 200


async def test_sse_readers_that_never_read_do_not_pin_the_history(
        serve: ServeFactory, tmp_path: Path) -> None:  # noqa: F811
    srv, cursor = start(serve, tmp_path)
    before = srv.rss()
    readers = []
    for _ in range(4):
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(f"GET /events?channel={CHANNEL} HTTP/1.1\r\nHost: x\r\n"
                     f"Last-Event-ID: {cursor}\r\n\r\n".encode())
        readers.append((reader, writer))
    async with httpx.AsyncClient(timeout=30) as client:
        while (await client.get(srv.url + "/health")).json()["connections"] < 4:
            await asyncio.sleep(0.05)  # no event to await in another process: poll
        grown = srv.rss() - before
        assert grown < 32 * MiB, f"RSS grew by {grown / MiB:.0f} MiB"
        assert (await client.get(srv.url + "/health")).status_code == 200
    try:
        for reader, _ in readers:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200")
            retry = await asyncio.wait_for(reader.readuntil(b"\n\n"), 10)
            assert retry.startswith(b"retry:")
            block = await asyncio.wait_for(reader.readuntil(b"\n\n"), 10)
            lines = dict(line.split(": ", 1) for line in block.decode().splitlines()
                         if ": " in line)
            assert lines["event"] == "reset"
            assert json.loads(lines["data"])["channels"] == [CHANNEL]
    finally:
        for _, writer in readers:
            writer.close()


async def test_every_plain_transport_answers_a_resume_over_the_budget(
        make_server: ServerFactory) -> None:
    """The documented answer on each wire when the replay exceeds the budget (3 here):
    raw ``/ws`` closes with 3010, ``/ws?format=json`` and ``/stream`` get a reset line, both
    then follow live traffic."""
    server = make_server(limits=Limits(resume_max_publications=3))
    first = await asyncio.to_thread(server.publish, "chat:over", "0")
    for i in range(1, 6):
        await asyncio.to_thread(server.publish, "chat:over", str(i))
    since = "&since=" + first["cursor"]
    async with websockets.connect(server.ws_url + "/ws?channel=chat:over" + since) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 3010
    async with websockets.connect(
            server.ws_url + "/ws?channel=chat:over&format=json" + since) as ws:
        reset = json.loads(await ws.recv())
        assert reset["type"] == "reset" and reset["channels"] == ["chat:over"]
        await asyncio.to_thread(server.publish, "chat:over", "live")
        while (message := json.loads(await ws.recv()))["type"] != "pub":
            pass
        assert message["data"] == "live"
    async with httpx.AsyncClient(timeout=5) as client, client.stream(
            "GET", server.url + "/stream", params={"channel": "chat:over",
                                                   "cursor": first["cursor"]}) as r:
        lines = r.aiter_lines()
        assert json.loads(await anext(lines))["type"] == "reset"
