"""Bad input is refused with a clean code and at most a few rate-limited log lines, never a
traceback per frame (issue 10, finding 5: 2,000 frames of ``"[" * 1100`` wrote 3.4 MB of
RecursionError tracebacks and aborted every TCP connection without a Close)."""

from __future__ import annotations

import asyncio

import httpx
import websockets
from websockets.exceptions import ConnectionClosed

from ..serve_process import API_KEY, ServeFactory, serve  # noqa: F401 - fixture

FRAMES = 2000
AT_ONCE = 50


async def _bad_frame(url: str, frame: str) -> int:
    async with websockets.connect(url, compression=None) as ws:
        await ws.send(frame)
        try:
            await asyncio.wait_for(ws.recv(), 10)
        except ConnectionClosed as exc:
            assert exc.rcvd is not None, "closed without a Close frame"
            return exc.rcvd.code
    raise AssertionError("the server answered instead of closing")


async def test_thousands_of_bad_frames_write_a_bounded_log(serve: ServeFactory) -> None:  # noqa: F811
    srv = serve()
    url = srv.ws_url + "/connection/websocket"
    codes: list[int] = []
    for start in range(0, FRAMES, AT_ONCE):
        codes += await asyncio.gather(*(_bad_frame(url, "[" * 1100)
                                        for _ in range(min(AT_ONCE, FRAMES - start))))
    assert set(codes) == {3501}
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(200):
            r = await client.post(srv.url + "/api/publish", content="[" * 1100,
                                  headers={"X-API-Key": API_KEY})
            assert r.status_code == 400
        assert (await client.get(srv.url + "/health")).status_code == 200
    log = srv.log()
    assert "Traceback" not in log
    lines = log.splitlines()
    assert len(lines) < 40, f"{len(lines)} log lines:\n" + "\n".join(lines[:50])
    assert len(log) < 8000
