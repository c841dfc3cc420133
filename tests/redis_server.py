"""A real ``redis-server`` for tests: started on a free port in a temp dir, stopped by PID.

Tests that need Redis fail (never skip) with a clear message when ``redis-server`` is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REDIS_SERVER = os.environ.get("LIVEHUB_TEST_REDIS_SERVER", "redis-server")


def stop_process(proc: subprocess.Popen[bytes] | None, *, kill: bool = False) -> None:
    """Stop ``proc`` by PID if it still runs: SIGTERM, then SIGKILL if it is not gone within
    10 s; with ``kill``, SIGKILL at once (a crash)."""
    if proc is None or proc.poll() is not None:
        return
    if not kill:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
            return
        except subprocess.TimeoutExpired:
            pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process; ``kill`` and ``start`` again keep the port."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        binary = shutil.which(REDIS_SERVER)
        if binary is None:
            pytest.fail(f"redis-server not found (looked for {REDIS_SERVER!r} on PATH): the "
                        "Redis tests need a real server; install it (apt-get install "
                        "redis-server) or set LIVEHUB_TEST_REDIS_SERVER", pytrace=False)
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory),
             "--protected-mode", "no", "--loglevel", "warning"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                text = (self.directory / "redis.log").read_text(errors="replace")
                pytest.fail(f"redis-server exited with {self.proc.returncode}:\n{text[-2000:]}",
                            pytrace=False)
            if self._answers():
                return
            time.sleep(0.02)
        self.kill()
        pytest.fail("redis-server did not answer PING within 10 s", pytrace=False)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """Stop abruptly (SIGKILL by PID): the data is lost, as in a crash."""
        stop_process(self.proc, kill=True)
        self.proc = None

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
