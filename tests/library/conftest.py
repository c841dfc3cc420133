"""An ASGI app (a FastAPI, Starlette or Django app mounting a ``livehub.Hub``) served by a real
ASGI server on 127.0.0.1: uvicorn or hypercorn in a background thread with its own event loop,
or granian (a Rust server) as a process of its own, stopped by PID."""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest

from tests.browser.conftest import browser, page, playwright
from tests.centrifugo.conftest import js_modules
from tests.conftest import LocalAddress
from tests.node.conftest import node, node_bin
from tests.redis_server import RedisServer, stop_process

__all__ = ["browser", "js_modules", "node", "node_bin", "page", "playwright"]

T = TypeVar("T")
ROOT = Path(__file__).parents[2]


def load_example(name: str) -> ModuleType:
    """A fresh import of ``examples/<name>.py`` (each test gets its own hub)."""
    sys.modules.pop(f"examples.{name}", None)
    return importlib.import_module(f"examples.{name}")


class AsgiServer(LocalAddress):
    """``app`` served by uvicorn or hypercorn from a thread with its own event loop."""

    def __init__(self, app: Any, kind: str = "uvicorn") -> None:
        self.app = app
        self.kind = kind
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._stop = asyncio.Event()
        self._task: asyncio.Future[Any] | None = None
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.sock = sock
        self.port = sock.getsockname()[1]

    def start(self) -> None:
        self._thread.start()
        started = threading.Event()

        async def serve() -> None:
            if self.kind == "uvicorn":
                import uvicorn

                server = uvicorn.Server(uvicorn.Config(self.app, lifespan="on",
                                                      log_level="warning"))
                waiter = self.loop.create_task(server.serve(sockets=[self.sock]))
                while not server.started:
                    if waiter.done():
                        await waiter
                    await asyncio.sleep(0.01)
                started.set()
                await self._stop.wait()
                server.should_exit = True
                await waiter
            else:
                from hypercorn.asyncio import serve as hypercorn_serve
                from hypercorn.config import Config

                config = Config()
                config.bind = [f"fd://{os.dup(self.sock.fileno())}"]  # hypercorn closes it
                config.loglevel = "WARNING"
                self.loop.call_soon(started.set)
                await hypercorn_serve(self.app, config, shutdown_trigger=self._stop.wait)

        self._task = asyncio.run_coroutine_threadsafe(serve(), self.loop)  # type: ignore[assignment]
        if not started.wait(20):
            raise RuntimeError(f"{self.kind} did not start")
        self.wait_listening()

    def wait_listening(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"{self.kind} does not accept connections")

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        """Run a coroutine on the server's loop (where the hub lives) and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        if self._task is not None:
            self._task.result(20)  # type: ignore[attr-defined]
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()
        self.sock.close()


AsgiFactory = Callable[..., AsgiServer]


@pytest.fixture
def serve_asgi() -> Iterator[AsgiFactory]:
    servers: list[AsgiServer] = []

    def make(app: Any, kind: str = "uvicorn") -> AsgiServer:
        server = AsgiServer(app, kind)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


class GranianServer(LocalAddress):
    """``module:app`` served by granian (ASGI interface) as a process of its own."""

    def __init__(self, target: str, env: dict[str, str]) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1", "--log-level", "warning", target],
            cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.DEVNULL)

    def wait_listening(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"granian exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("granian does not accept connections")

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
