"""``livehub serve --workers N``: processes sharing one port (SO_REUSEPORT) over Redis."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ..redis_server import RedisServer
from .conftest import API_KEY, ROOT
from .sse import SseStream

pytestmark = pytest.mark.redis
WORKER_READY = re.compile(r"\[worker (\d+)/2 pid (\d+)\] livehub: listening on "
                          r"http://127\.0\.0\.1:(\d+)/")


async def test_workers_share_the_port_and_the_channels(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    log_path = tmp_path / "workers.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "livehub", "serve", "--workers", "2", "--port", "0",
             "--broker", "redis", "--redis-url", redis.url, "--no-clock"],
            cwd=ROOT, env=dict(os.environ, LIVEHUB_API_KEY=API_KEY, PYTHONPATH=str(ROOT)),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        ready: list[tuple[str, str, str]] = []
        while len(ready) < 2:
            assert time.monotonic() < deadline, log_path.read_text()
            assert proc.poll() is None, log_path.read_text()
            ready = WORKER_READY.findall(log_path.read_text())
            await asyncio.sleep(0.05)
        (_, pid1, port1), (_, pid2, port2) = ready
        assert port1 == port2 and pid1 != pid2
        url = f"http://127.0.0.1:{port1}"
        async with httpx.AsyncClient(timeout=10) as http:
            streams = [http.stream("GET", url + "/events", params={"channel": "w"})
                       for _ in range(8)]
            responses = [await s.__aenter__() for s in streams]
            try:
                readers = [SseStream(r) for r in responses]
                for reader in readers:
                    await reader.subscribed()
                r = await http.post(url + "/api/publish", json={"channel": "w", "data": "hi"},
                                    headers={"X-API-Key": API_KEY})
                assert r.status_code == 200
                for reader in readers:
                    assert await reader.datas(1) == ["hi"]
            finally:
                for s in streams:
                    await s.__aexit__(None, None, None)
        # a worker that dies is replaced
        os.kill(int(pid1), signal.SIGKILL)
        deadline = time.monotonic() + 20
        while len(WORKER_READY.findall(log_path.read_text())) < 3:
            assert time.monotonic() < deadline, log_path.read_text()
            await asyncio.sleep(0.05)
        assert "restarting it" in log_path.read_text()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 0, log_path.read_text()
        redis.stop()
    assert "shutting down" in log_path.read_text()
