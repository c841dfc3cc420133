"""The dashboard of a node in a Redis cluster: both nodes listed, and when Redis goes away the
page still shows this node's connections and channels, saying the broker is unavailable,
instead of failing or waiting once per channel."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from ..redis_server import RedisServer
from ..serve_process import ServeFactory, serve  # noqa: F401 - the fixture
from .conftest import TOKEN

pytestmark = pytest.mark.redis


def stats(url: str) -> dict[str, object]:
    r = httpx.get(url + "/admin/api/stats", headers={"Authorization": f"Bearer {TOKEN}"},
                  timeout=20)
    assert r.status_code == 200, r.text
    found: dict[str, object] = r.json()
    return found


def test_cluster_nodes_and_a_broker_outage(serve: ServeFactory,  # noqa: F811 - the fixture
                                           tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        args = ("--broker", "redis", "--redis-url", redis.url, "--redis-timeout", "0.5",
                "--node-heartbeat-interval", "0.5")
        env = {"LIVEHUB_ADMIN_TOKEN": TOKEN}
        a = serve(*args, "--node-name", "node-a", env=env)
        b = serve(*args, "--node-name", "node-b", env=env)
        with httpx.Client(timeout=5) as client, client.stream(
                "GET", b.url + "/events", params={"channel": "chat:far"}) as far, \
                client.stream("GET", a.url + "/events", params={"channel": "chat:near"}) as near:
            assert far.status_code == near.status_code == 200
            deadline = time.monotonic() + 15
            seen: dict[str, object] = {}
            while time.monotonic() < deadline:
                seen = stats(a.url)
                names = {n["name"] for n in seen["nodes"]}  # type: ignore[attr-defined]
                channels = {c["channel"] for c in seen["channels"]}  # type: ignore[attr-defined]
                if names == {"node-a", "node-b"} and channels == {"chat:far", "chat:near"}:
                    break
                time.sleep(0.1)
            assert {c["channel"] for c in seen["channels"]} == {  # type: ignore[attr-defined]
                "chat:far", "chat:near"}
            assert seen["broker_ok"] is True
            redis.kill()
            down = stats(a.url)
            assert down["broker_ok"] is False
            assert down["connections"]["total"] == 1  # type: ignore[index]
            assert [c["channel"] for c in down["channels"]] == [  # type: ignore[attr-defined]
                "chat:near"]
    finally:
        redis.stop()
