"""``livehub serve`` in a process of its own, for tests that measure it (RSS from /proc)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from livehub.bench.procstat import rss_kib
from tests.redis_server import free_port, stop_process

ROOT = Path(__file__).resolve().parents[1]


class ServerProcess:
    """A started server: its ``port``, ``pid`` and resident memory."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc = proc
        self.port = port

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mib(self) -> float:
        return rss_kib(self.proc.pid) / 1024


@contextmanager
def server_process(env: Mapping[str, str] | None = None) -> Iterator[ServerProcess]:
    """``python -m livehub serve`` on 127.0.0.1 with ``LIVEHUB_*`` overrides in ``env``;
    stopped by PID on exit."""
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith("LIVEHUB_")}
    full.update(LIVEHUB_HOST="127.0.0.1", LIVEHUB_PORT=str(port), LIVEHUB_API_KEY="test",
                LIVEHUB_CLOCK="0", LIVEHUB_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    full.update(env or {})
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-m", "livehub", "serve"], env=full,
                                stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + 20
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise AssertionError(f"server exited: {log.read().decode(errors='replace')}")
                try:
                    httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "server did not start"
                    time.sleep(0.05)
            yield ServerProcess(proc, port)
        finally:
            stop_process(proc)
