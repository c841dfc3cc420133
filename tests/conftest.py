"""Shared fixtures: a real livehub server on 127.0.0.1 in a background thread (uvloop)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop

from livehub.admin import AdminSettings
from livehub.app import App
from livehub.core.auth import AuthSettings
from livehub.core.channels import Namespaces, public_options
from livehub.core.limits import Limits
from livehub.core.memory import MemoryBroker
from livehub.core.node import Node
from livehub.transports.context import ServerSettings

from .tlsca import TlsFiles, make_tls_files

T = TypeVar("T")
API_KEY = "test-api-key"

TEST_NAMESPACES = {
    "chat": public_options(client_publish=True, history_size=100),
    "small": public_options(history_size=3, client_publish=True),
    "nohist": public_options(history_size=0),
    "ro": public_options(client_publish=False),
    "bench": public_options(client_publish=True, history_size=1000,
                            history_bytes=64 * 1024 * 1024),
}


class ClientLoop(asyncio.SelectorEventLoop):
    """The event loop of the async tests, which only run clients (servers run on uvloop in
    threads of their own, so their leaks still fail the suite).

    When a test ends while one of its client sockets is still closing (its write buffer not
    yet flushed to a server that has stopped reading, or reset after the loop stopped),
    asyncio would leave the socket to the garbage collector, whose ResourceWarning then fails
    whichever later test happens to be running: CI failed so once.  Closing the loop aborts
    those transports instead, so every test's client sockets end with the test.
    """

    def close(self) -> None:
        if not self.is_closed() and not self.is_running():
            transports = getattr(self, "_transports", {})
            leftover = [t for t in list(transports.values()) if not t.is_closing()
                        or getattr(t, "_sock", None) is not None]
            for transport in leftover:
                transport.abort()
            if leftover:
                self.run_until_complete(asyncio.sleep(0))  # their connection_lost callbacks
        super().close()


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item
                                  ) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async test runs on a ``ClientLoop`` (pytest-asyncio >= 1.4)."""
    return {"asyncio": ClientLoop}


class LocalAddress:
    """``url`` and ``ws_url`` of a server listening on 127.0.0.1:``port``."""

    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


class LiveServer(LocalAddress):
    """A livehub ``App`` served from its own event loop thread."""

    def __init__(self, settings: ServerSettings, namespaces: Namespaces,
                 limits: Limits | None = None, auth: AuthSettings | None = None,
                 admin: AdminSettings | None = None) -> None:
        self.settings = settings
        self.admin = admin
        self.namespaces = namespaces
        self.limits = limits or Limits()
        self.auth = auth
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.app: App | None = None
        self.port = 0
        self.verify: ssl.SSLContext | bool = True
        """What ``publish`` trusts when the server speaks TLS (a test CA)."""

    @property
    def url(self) -> str:
        scheme = "https" if self.settings.tls_cert else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        scheme = "wss" if self.settings.tls_cert else "ws"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]

        async def boot() -> App:
            app = self.create_app(self.create_node())
            await app.start(sock)
            return app

        self.app = self.call(boot())

    def create_node(self) -> Node:
        """The core node to serve (a subclass may give it other parts)."""
        return Node(MemoryBroker(), self.namespaces,
                    release_delay=0.05, limits=self.limits)

    def create_app(self, node: Node) -> App:
        """The app to serve (a subclass may configure more layers)."""
        return App.create(node, self.settings, auth=self.auth, admin=self.admin)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call_soon(self, fn: Callable[[], T], timeout: float = 10) -> T:
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                fut.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return fut.result(timeout)

    def stop(self) -> None:
        if self.app is not None:
            self.call(self.app.stop(drain=0.5))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    @property
    def api_key(self) -> str:
        return API_KEY

    def drop_streams(self, then: Callable[[], Coroutine[Any, Any, Any]] | None = None) -> int:
        """End every SSE/stream connection with 3011 (force reconnect) on the server's loop and,
        in the same turn of the loop, await ``then()`` (e.g. publications that happen while the
        clients are away).  Returns how many streams were ended."""
        from livehub.codes import Disconnect
        from livehub.transports.stream import StreamConnection

        assert self.app is not None
        ctx = self.app.ctx

        async def run() -> int:
            streams = [c for c in ctx.connections if isinstance(c, StreamConnection)]
            for conn in streams:
                conn.close(Disconnect.FORCE_RECONNECT)
            if then is not None:
                await then()
            return len(streams)

        return self.call(run())

    def publish(self, channel: str, data: object, event: str | None = None) -> dict[str, Any]:
        """Publish through the real HTTP API."""
        import httpx

        body: dict[str, object] = {"channel": channel, "data": data}
        if event is not None:
            body["event"] = event
        r = httpx.post(self.url + "/api/publish", json=body, headers={"X-API-Key": API_KEY},
                       verify=self.verify)
        r.raise_for_status()
        result: dict[str, Any] = r.json()["result"]
        return result


ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def make_server() -> Iterator[ServerFactory]:
    servers: list[LiveServer] = []

    def make(**overrides: Any) -> LiveServer:
        namespaces = overrides.pop("namespaces", TEST_NAMESPACES)
        default = overrides.pop("default_options", public_options())
        limits = overrides.pop("limits", None)
        auth = overrides.pop("auth", None)
        admin = overrides.pop("admin", None)
        params: dict[str, Any] = {"api_key": API_KEY, "clock": False, "port": 0}
        params.update(overrides)
        srv = LiveServer(ServerSettings(**params), Namespaces(default, namespaces), limits,
                         auth, admin)
        srv.start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    return make_server()


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    """A test CA and a server certificate for 127.0.0.1 (files in ``tmp_path``)."""
    return make_tls_files(tmp_path)


@pytest.fixture
def tls_server(make_server: ServerFactory, tls_files: TlsFiles) -> LiveServer:
    """A server speaking TLS (ALPN h2 and http/1.1) with ``tls_files``' certificate."""
    srv = make_server(tls_cert=str(tls_files.cert), tls_key=str(tls_files.key))
    srv.verify = tls_files.client_context()
    return srv
