"""``livehub serve`` as a separate process, for tests that measure the server itself (its RSS,
its log): port read from its log, stopped by PID."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import LocalAddress
from .redis_server import stop_process

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "serve-test-key"
LISTENING = re.compile(r"listening on https?://127\.0\.0\.1:(\d+)/")


class ServeProcess(LocalAddress):
    """One ``python -m livehub serve --port 0 --no-clock <args>``; its log is a file."""

    def __init__(self, directory: Path, *args: str, env: dict[str, str] | None = None,
                 nofile: int | None = None) -> None:
        self.log_path = directory / "livehub.log"
        self.args = args
        self.env = env or {}
        self.nofile = nofile
        """The process's ``ulimit -n`` (soft), when given."""
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, timeout: float = 20) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEHUB_")}
        env.update(LIVEHUB_API_KEY=API_KEY, PYTHONPATH=str(ROOT),
                   LIVEHUB_DEMO_MARKET_INTERVAL="0", LIVEHUB_DEMO_MATCH_MINUTE="0", **self.env)
        argv = [sys.executable, "-m", "livehub", "serve", "--port", "0", "--no-clock",
                *self.args]
        if self.nofile is not None:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            argv = ["prlimit", f"--nofile={self.nofile}:{hard}", "--", *argv]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = LISTENING.search(self.log())
            if found:
                self.port = int(found.group(1))
                return
            if self.proc.poll() is not None:
                pytest.fail(f"livehub exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.02)
        pytest.fail(f"livehub did not start in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss(self) -> int:
        """Resident set size in bytes (``VmRSS`` of /proc/<pid>/status)."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def reset_peak(self) -> None:
        """Start measuring the peak RSS from now (``VmHWM``; Linux ``clear_refs`` 5)."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as refs:
            refs.write("5")

    def peak_rss(self) -> int:
        """Peak resident set size in bytes since the start or ``reset_peak`` (``VmHWM``)."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")

    def stop(self) -> None:
        stop_process(self.proc)


ServeFactory = Callable[..., ServeProcess]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeFactory]:
    """``serve(*args, env=..., nofile=...)`` starts a ``ServeProcess``; every one stops at
    the end."""
    started: list[ServeProcess] = []

    def start(*args: str, env: dict[str, str] | None = None,
              nofile: int | None = None) -> ServeProcess:
        directory = tmp_path / f"serve{len(started)}"
        directory.mkdir()
        proc = ServeProcess(directory, *args, env=env, nofile=nofile)
        started.append(proc)
        proc.start()
        return proc

    yield start
    for proc in started:
        proc.stop()
