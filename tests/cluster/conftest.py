"""A cluster on this machine: livehub nodes as separate processes over one real Redis.

Each node is ``python -m livehub serve --port 0 --broker redis --redis-url ...``; its port is
read from its log.  Nodes and Redis are stopped by PID.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..centrifugo.conftest import js_modules
from ..conftest import LocalAddress
from ..redis_server import RedisServer, stop_process
from .cf import Events, JsAgent, js_agent, write_config

ROOT = Path(__file__).resolve().parent.parent.parent
API_KEY = "cluster-test-key"
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)/")


class Node(LocalAddress):
    """One livehub process."""

    def __init__(self, name: str, redis_url: str, directory: Path, *extra: str) -> None:
        self.name = name
        self.redis_url = redis_url
        self.log_path = directory / f"node-{name}.log"
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        env = dict(os.environ, LIVEHUB_API_KEY=API_KEY, PYTHONPATH=str(ROOT),
                   LIVEHUB_NODE_NAME=self.name)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "livehub", "serve", "--port", "0",
                 "--broker", "redis", "--redis-url", self.redis_url, "--no-clock",
                 "--heartbeat-interval", "0.5", "--redis-timeout", "1", *self.extra],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            text = self.log_path.read_text(errors="replace")
            found = LISTENING.search(text)
            if found:
                self.port = int(found.group(1))
                return
            if self.proc.poll() is not None:
                pytest.fail(f"node {self.name} exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.02)
        pytest.fail(f"node {self.name} did not start in {timeout} s:\n"
                    f"{self.log_path.read_text(errors='replace')}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """Crash the node (SIGKILL by PID)."""
        stop_process(self.proc, kill=True)

    def stop(self) -> None:
        stop_process(self.proc)

    async def publish(self, client: httpx.AsyncClient, channel: str, data: object
                      ) -> httpx.Response:
        return await client.post(self.url + "/api/publish",
                                 json={"channel": channel, "data": data},
                                 headers={"X-API-Key": API_KEY})

    async def published(self, client: httpx.AsyncClient, channel: str,
                        data: object) -> dict[str, Any]:
        r = await self.publish(client, channel, data)
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()["result"]
        return result


def start_nodes(redis: RedisServer, directory: Path, names: str, into: list[Node],
                *extra: str) -> None:
    """Start a node per letter of ``names`` (in parallel, with the extra arguments
    ``extra``), appended to ``into`` at once so that whoever owns ``into`` stops them even if
    one fails to start."""
    nodes = [Node(name, redis.url, directory, *extra) for name in names]
    into.extend(nodes)
    for node in nodes:
        node.start()
    for node in nodes:
        node.wait_ready()


ClusterFactory = Callable[..., tuple[RedisServer, list[Node]]]


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[ClusterFactory]:
    """Starts one Redis and a node per letter of ``names`` (with extra arguments ``extra``);
    everything stops at the end."""
    started: list[tuple[RedisServer, list[Node]]] = []

    def make(names: str, *extra: str) -> tuple[RedisServer, list[Node]]:
        redis = RedisServer(tmp_path / "redis")
        nodes: list[Node] = []
        started.append((redis, nodes))
        redis.start()
        start_nodes(redis, tmp_path, names, nodes, *extra)
        return redis, nodes

    yield make
    for redis, nodes in started:
        for node in nodes:
            node.stop()
        redis.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    """Three nodes (A, B, C) over one Redis, shared by a module's tests."""
    directory = tmp_path_factory.mktemp("cluster")
    redis = RedisServer(directory / "redis")
    nodes: list[Node] = []
    try:
        redis.start()
        start_nodes(redis, directory, "ABC", nodes)
        yield nodes
    finally:
        for node in nodes:
            node.stop()
        redis.stop()


@pytest.fixture(scope="module")
def cf_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    """Three nodes (A, B, C) over one Redis, configured for the Centrifugo tests
    (``cf.CONFIG``: token secret, emulation, short ping and presence TTL, namespace ``room``)."""
    directory = tmp_path_factory.mktemp("cf-cluster")
    config = write_config(directory)
    redis = RedisServer(directory / "redis")
    nodes: list[Node] = []
    try:
        redis.start()
        start_nodes(redis, directory, "ABC", nodes, "--config", str(config))
        yield nodes
    finally:
        for node in nodes:
            node.stop()
        redis.stop()


async def api(http: httpx.AsyncClient, node: Node, method: str, **params: Any) -> Any:
    """The result of a server API call on ``node`` (fails on an error)."""
    r = await http.post(f"{node.url}/api/{method}", json=params, headers={"X-API-Key": API_KEY})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "error" not in body, body
    return body["result"]


async def users_on(http: httpx.AsyncClient, node: Node, channel: str) -> list[str]:
    """The users in ``channel``'s presence as ``node`` tells through the server API."""
    result = await api(http, node, "presence", channel=channel)
    return sorted(entry["user"] for entry in result["presence"].values())


async def wait_users(http: httpx.AsyncClient, node: Node, channel: str, users: list[str],
                     timeout: float = 2) -> None:
    """Wait until ``node`` lists ``users`` in ``channel``'s presence (a client's subscription
    is stored before its subscribe reply, a server-side one just after its push, and a removal
    travels through Redis, so some looks need to wait)."""
    try:
        async with asyncio.timeout(timeout):
            while (found := await users_on(http, node, channel)) != users:
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"presence of {channel} on {node.name}: {found}, "
                             f"not {users}") from None


@pytest.fixture
async def events() -> Events:
    """The event log of a test's Centrifugo clients."""
    return Events()


@pytest.fixture
async def js(js_modules: Path, events: Events) -> AsyncIterator[JsAgent]:
    """A centrifuge-js agent (Node) reporting into ``events``."""
    async with js_agent(js_modules / "node_modules", events) as agent:
        yield agent


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


__all__ = ["js_modules"]
