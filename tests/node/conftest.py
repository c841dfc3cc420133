"""Harness for tests that drive real Node.js clients (the npm ``ws`` and ``eventsource`` packages).

Each test starts one of the ``*.mjs`` scripts of this folder with ``node``.  A script prints one
JSON object per line on stdout (what its clients saw) and may read JSON commands, one per line,
on stdin; ``NodeScript`` reads those lines on a thread so a test can wait for a given line with a
bounded timeout while it publishes or drops connections on the server.

The npm packages are pinned in ``package.json``/``package-lock.json`` here and installed with
``npm ci --prefix tests/node``.  When they are missing, the session fixture runs that command
itself; if it cannot, every Node test fails (never skips) saying what to run.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).resolve().parent
PACKAGES = ("ws", "eventsource")
Line = dict[str, Any]


def _missing_packages() -> list[str]:
    return [name for name in PACKAGES
            if not (NODE_DIR / "node_modules" / name / "package.json").is_file()]


@pytest.fixture(scope="session")
def node_bin() -> str:
    """Path of ``node``, with the pinned npm packages installed (runs ``npm ci`` if needed)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is not installed: the Node client tests need `node` (>= 20) "
                    "and `npm` on PATH", pytrace=False)
    if _missing_packages():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(f"npm packages {_missing_packages()} are missing and `npm` is not on "
                        f"PATH: run `npm ci --prefix {NODE_DIR}`", pytrace=False)
        try:
            # within the 60 s that pytest-timeout gives the first test and its fixtures
            done = subprocess.run([npm, "ci", "--prefix", str(NODE_DIR), "--no-audit",
                                   "--no-fund", "--fetch-retries=1"], capture_output=True,
                                  text=True, timeout=45, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"npm packages {_missing_packages()} are missing and "
                        f"`npm ci --prefix {NODE_DIR}` did not finish within 45 s: run it "
                        "before the tests", pytrace=False)
        if done.returncode != 0 or _missing_packages():
            pytest.fail(f"npm packages {_missing_packages() or list(PACKAGES)} could not be "
                        f"installed: `npm ci --prefix {NODE_DIR}` exited "
                        f"{done.returncode}:\n{done.stderr[-3000:]}", pytrace=False)
    return node


class NodeScript:
    """A running ``node`` script: JSON lines out, JSON commands in."""

    def __init__(self, node: str, script: str, *args: str) -> None:
        self.name = script
        self.proc = subprocess.Popen(
            [node, str(NODE_DIR / script), *args], cwd=NODE_DIR,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", env={**os.environ, "NODE_NO_WARNINGS": "1"})
        self._lines: queue.Queue[Line | None] = queue.Queue()
        self.seen: list[Line] = []
        self._stderr: list[str] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self._eof = False

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            text = raw.strip()
            if not text:
                continue
            try:
                line = json.loads(text)
            except ValueError:
                line = {"kind": "garbage", "text": text}
            self._lines.put(line)
        self._lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self._stderr.append(raw)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def _describe(self) -> str:
        tail = "\n".join(json.dumps(line) for line in self.seen[-15:])
        return (f"{self.name} (exit {self.proc.poll()}); last lines:\n{tail}\n"
                f"stderr:\n{self.stderr[-3000:]}")

    def next(self, timeout: float = 10.0) -> Line:
        """The next line printed by the script (fails after ``timeout`` or at its exit)."""
        if self._eof:
            pytest.fail(f"{self.name} has exited: {self._describe()}", pytrace=False)
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output from {self.name} within {timeout}s: {self._describe()}",
                        pytrace=False)
        if line is None:
            self._eof = True
            self.proc.wait(5)
            pytest.fail(f"{self.name} ended early: {self._describe()}", pytrace=False)
        if line.get("kind") in ("garbage", "fatal"):
            pytest.fail(f"{self.name} failed: {line}\n{self._describe()}", pytrace=False)
        self.seen.append(line)
        return line

    def until(self, pred: Callable[[Line], bool], timeout: float = 10.0) -> list[Line]:
        """Lines up to and including the first one matching ``pred``."""
        deadline = time.monotonic() + timeout
        got: list[Line] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"{self.name}: condition not met within {timeout}s: "
                            f"{self._describe()}", pytrace=False)
            line = self.next(remaining)
            got.append(line)
            if pred(line):
                return got

    def until_kind(self, kind: str, timeout: float = 10.0) -> Line:
        return self.until(lambda line: line.get("kind") == kind, timeout)[-1]

    def send(self, command: Line) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 10.0) -> list[Line]:
        """Wait for the script to exit by itself; return its remaining lines."""
        rest: list[Line] = []
        deadline = time.monotonic() + timeout
        while not self._eof:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"{self.name} did not exit within {timeout}s: {self._describe()}",
                            pytrace=False)
            if line is None:
                self._eof = True
                break
            if line.get("kind") in ("garbage", "fatal"):
                pytest.fail(f"{self.name} failed: {line}\n{self._describe()}", pytrace=False)
            self.seen.append(line)
            rest.append(line)
        code = self.proc.wait(max(0.01, deadline - time.monotonic()))
        if code != 0:
            pytest.fail(f"{self.name} exited with {code}: {self._describe()}", pytrace=False)
        return rest

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


NodeFactory = Callable[..., NodeScript]


@pytest.fixture
def node(node_bin: str) -> Iterator[NodeFactory]:
    """Start ``tests/node/<script>`` with arguments; every script is killed at teardown."""
    started: list[NodeScript] = []

    def start(script: str, *args: str) -> NodeScript:
        proc = NodeScript(node_bin, script, *args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
