"""A tiny lab run end to end: a server on 127.0.0.1, a second of load, a JSON result.

Speed is never asserted: only that the figures are there and nothing was lost.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from livehub.bench.cli import _compare_cases, _opt_in
from livehub.bench.report import render

ROOT = Path(__file__).resolve().parents[2]


def lab(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "result.json"
    cmd = [sys.executable, "-m", "livehub.bench", "run", *args, "--duration", "1",
           "--no-pin", "--quiet", "--out", str(out), "--cache", str(tmp_path / "cache"),
           "--peer-python", sys.executable, "--livehub-root", str(ROOT)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=55,
                          check=False, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    doc: dict[str, Any] = json.loads(out.read_text())
    assert doc["schema"] == "livehub-bench/1"
    assert doc["machine"]["nproc"] >= 1
    return doc


def check_fanout(doc: dict[str, Any], subscribers: int) -> None:
    (case,) = doc["cases"]
    f = case["figures"]
    assert f["subscribers_connected"] == subscribers
    assert f["published"] > 0
    assert f["deliveries"] == f["published"] * subscribers
    assert f["lost"] == 0 and f["duplicated"] == 0 and f["lost_by_disconnect"] == 0
    assert f["latency_ms"]["count"] > 0
    for key in ("deliveries_per_s", "server_cpu_us_per_delivery", "server_writes_per_delivery",
                "gen_cpu_util",
                "bytes_per_delivery", "server_rss_kib"):
        assert f[key] is not None and f[key] >= 0, key


def test_fanout_against_python_websockets_peer(tmp_path: Path) -> None:
    doc = lab(tmp_path, "--server", "websockets", "--subscribers", "20", "--probes", "5")
    check_fanout(doc, 20)
    html = render([doc], ["result.json"])
    assert "<svg" in html and "websockets" in html


def test_echo_and_idle_against_python_websockets_peer(tmp_path: Path) -> None:
    doc = lab(tmp_path, "--server", "websockets", "--scenario", "echo", "--connections", "4")
    f = doc["cases"][0]["figures"]
    assert f["round_trips"] > 0 and f["rtt_ms"]["count"] == f["round_trips"]
    doc = lab(tmp_path, "--server", "websockets", "--scenario", "idle", "--connections", "50")
    f = doc["cases"][0]["figures"]
    assert f["connections_open"] == 50 and f["rss_kib_per_connection"] is not None


@pytest.mark.parametrize("transport", ["ws", "sse", "stream", "poll", "centrifugo-ws"])
def test_fanout_against_livehub(tmp_path: Path, transport: str) -> None:
    doc = lab(tmp_path, "--transport", transport, "--subscribers", "10", "--probes", "3")
    check_fanout(doc, 10)


def test_churn_against_livehub(tmp_path: Path) -> None:
    doc = lab(tmp_path, "--scenario", "churn", "--subscribers", "10", "--rate", "20",
              "--churn-rate", "20", "--churn-hold-ms", "50")
    f = doc["cases"][0]["figures"]
    assert f["lost"] == 0 and f["churn"]["opened"] > 0


@pytest.mark.node
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_fanout_against_node_ws_peer(tmp_path: Path) -> None:
    doc = lab(tmp_path, "--server", "node-ws", "--subscribers", "20", "--probes", "5")
    check_fanout(doc, 20)


@pytest.mark.skipif(shutil.which("redis-server") is None and not Path("/usr/bin/redis-server")
                    .exists(), reason="redis-server is not installed")
def test_fanout_over_two_livehub_nodes_and_redis(tmp_path: Path) -> None:
    doc = lab(tmp_path, "--cluster", "2", "--subscribers", "10", "--probes", "4")
    check_fanout(doc, 10)
    f = doc["cases"][0]["figures"]
    nodes = f["cluster"]["nodes"]
    assert [n["subscribers"] for n in nodes] == [5, 5] and nodes[0]["publisher"]
    assert all(n["latency_ms"]["count"] > 0 and n["cpu_s"] >= 0 for n in nodes)
    assert f["cluster"]["redis_cpu_s"] >= 0 and f["server_alive_after"]
    assert doc["pinning"]["server_cpus"] is None and doc["cluster"]["nodes"] == 2
    assert doc["cases"][0]["params"]["cluster"] == 2


def test_livehub_batching_windows_are_cases_of_one_run(tmp_path: Path) -> None:
    doc = lab(tmp_path, "--subscribers", "10", "--probes", "3", "--rate", "50",
              "--write-delay-ms", "0,5")
    assert [c["label"] for c in doc["cases"]] == ["livehub", "livehub w=5ms"]
    assert [c["params"]["write_delay"] for c in doc["cases"]] == [0.0, 0.005]
    for case in doc["cases"]:
        f = case["figures"]
        assert f["lost"] == 0 and f["duplicated"] == 0 and f["closed_by_server"] == {}
        assert f["deliveries"] == f["published"] * 10


def check_rooms(doc: dict[str, Any], rooms: int, per_room: int) -> dict[str, Any]:
    (case,) = doc["cases"]
    f: dict[str, Any] = case["figures"]
    assert f["rooms"] == rooms and f["subscribers_connected"] == rooms * per_room
    assert f["published"] >= rooms and f["drained"]
    assert f["deliveries"] == f["expected_deliveries"] == f["published"] * per_room
    assert f["lost"] == 0 and f["duplicated"] == 0 and f["closed_by_server"] == {}
    assert f["latency_ms"]["count"] > 0 and f["server_cpu_us_per_publication"] > 0
    return f


@pytest.mark.parametrize("transport", ["ws", "sse"])
def test_rooms_against_livehub(tmp_path: Path, transport: str) -> None:
    doc = lab(tmp_path, "--scenario", "rooms", "--transport", transport, "--channels", "6",
              "--subscribers", "3", "--probes", "6", "--size", "4096")
    check_rooms(doc, 6, 3)
    assert doc["cases"][0]["group"] == f"rooms-{transport}-6x3-4096B"


def test_rooms_with_permessage_deflate_against_livehub(tmp_path: Path) -> None:
    doc = lab(tmp_path, "--scenario", "rooms", "--channels", "4", "--subscribers", "3",
              "--probes", "12", "--size", "4096", "--deflate", "--rate", "40")
    f = check_rooms(doc, 4, 3)
    assert f["deflate_frames"] > 0 and f["bytes_per_delivery"] < 4096  # compressed on the wire


@pytest.mark.node
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_rooms_against_node_ws_with_a_room_map(tmp_path: Path) -> None:
    doc = lab(tmp_path, "--server", "node-ws-rooms", "--scenario", "rooms", "--channels", "5",
              "--subscribers", "3", "--probes", "15", "--size", "4096", "--deflate")
    f = check_rooms(doc, 5, 3)
    assert f["deflate_frames"] > 0


@pytest.mark.skipif(shutil.which("redis-server") is None and not Path("/usr/bin/redis-server")
                    .exists(), reason="redis-server is not installed")
def test_fanout_over_livehub_workers_and_redis(tmp_path: Path) -> None:
    doc = lab(tmp_path, "--workers", "2", "--subscribers", "10", "--probes", "4")
    check_fanout(doc, 10)
    (case,) = doc["cases"]
    f = case["figures"]
    assert case["group"] == "fanout-ws-10-workers2" and case["params"]["workers"] == 2
    assert len(f["cluster"]["worker_pids"]) == 2 and len(f["server_process_cpu_util"]) == 3
    assert f["redis_cpu_us_per_delivery"] is not None and f["server_alive_after"]


def test_compare_runs_the_issue_15_cases_only_when_named() -> None:
    plan = _compare_cases(1.0, 10)
    default = [n for n in plan if not _opt_in(n)]
    assert "fanout-ws-1000" in default and "idle-sse" in default
    assert not any(n.startswith(("window-", "rooms-")) for n in default)
    assert {"window-ws-1000", "window-sse-1000", "rooms-ws-1500x10"} <= set(plan)
