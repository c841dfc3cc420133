"""History memory stays bounded whatever clients publish (issue 10, finding 1), measured on a
real ``livehub serve`` process (RSS from /proc, generous margins: bounds, not speed)."""

from __future__ import annotations

from pathlib import Path

import httpx
import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from ..serve_process import API_KEY, ServeFactory, serve  # noqa: F401 - fixture

MiB = 1024 * 1024
ZEROS = b"\0" * 1_000_000


async def test_compressed_zeros_into_the_chat_demo_keep_rss_bounded(serve: ServeFactory) -> None:  # noqa: F811
    """The reported attack on the built-in defaults: an anonymous raw WebSocket publishes 200
    messages of 1 MB of zeros, each ~1 KB on the wire (permessage-deflate without context
    takeover), over 5 channels of the ``chat`` demo namespace.  It used to raise RSS by
    ~800 MB; the demo namespace now keeps at most its ``history_bytes`` per channel.  The
    compression budget would close this client first (3013, tests/server/test_ws_limits.py):
    it is raised here so the history bound is tested on its own."""
    srv = serve("--ws-compress-rate", str(1 << 30), "--ws-compress-global-rate", str(1 << 30))
    deflate = ClientPerMessageDeflateFactory(client_no_context_takeover=True)
    async with websockets.connect(srv.ws_url + "/ws?channel=chat:warm") as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
    before = srv.rss()
    for room in range(5):
        async with websockets.connect(f"{srv.ws_url}/ws?channel=chat:room{room}",
                                      extensions=[deflate], compression=None,
                                      max_size=None) as ws:
            for _ in range(40):
                await ws.send(ZEROS)
            await ws.send("done")
            while await ws.recv() != "done":
                pass
    grown = srv.rss() - before
    assert grown < 64 * MiB, f"RSS grew by {grown / MiB:.0f} MiB"
    r = httpx.post(srv.url + "/api/history", headers={"X-API-Key": API_KEY},
                   json={"channel": "chat:room0", "limit": -1})
    kept = r.json()["result"].get("publications", [])
    assert [p["data"] for p in kept] == ["done"]  # the 1 MB ones are over the budget


def test_total_history_memory_is_capped(serve: ServeFactory, tmp_path: Path) -> None:  # noqa: F811
    """A namespace that lets every channel keep a lot is still bounded by ``history_memory``
    over all channels: the oldest publications are evicted first."""
    config = tmp_path / "livehub.toml"
    config.write_text("[namespaces.big]\nhistory_size = 1000\nhistory_ttl = 3600\n"
                      "history_bytes = 1073741824\n[limits]\nhistory_memory = 33554432\n")
    srv = serve("--config", str(config))
    before = srv.rss()
    with httpx.Client(headers={"X-API-Key": API_KEY}, timeout=30) as client:
        first = client.post(srv.url + "/api/publish",
                            json={"channel": "big:0", "data": "0" * 1_000_000}).json()
        assert first["result"]["offset"] == 1
        for i in range(1, 250):
            r = client.post(srv.url + "/api/publish",
                            json={"channel": f"big:{i % 10}", "data": str(i % 10) * 1_000_000})
            assert r.status_code == 200 and "result" in r.json()
        grown = srv.rss() - before
        assert grown < (32 + 64) * MiB, f"RSS grew by {grown / MiB:.0f} MiB"
        since = {"offset": 1, "epoch": first["result"]["epoch"]}
        lost = client.post(srv.url + "/api/history",
                           json={"channel": "big:0", "since": since, "limit": -1}).json()
        assert lost["error"]["code"] == 112  # evicted: not recoverable, said so
        newest = client.post(srv.url + "/api/history",
                             json={"channel": "big:9", "limit": -1}).json()["result"]
        assert newest["offset"] == 25 and newest["publications"][-1]["offset"] == 25
