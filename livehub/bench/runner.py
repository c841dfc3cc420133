"""Runs a plan of cases (server x scenario parameters) and writes one JSON result per run.

Each case gets a freshly started server (pinned to the first CPU), the generator runs in this
process (pinned to the others), and the server is stopped by its PID when the case ends,
whatever happened. A result file holds the machine facts, the servers' versions and, per case,
the parameters and the figures of every repetition plus the median one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

from livehub.bench import peers
from livehub.bench.procstat import machine_facts, pin_self, raise_fd_limit
from livehub.bench.scenarios import RUNNERS, Params, Progress, Target
from livehub.bench.servers import (
    REDIS_SPEC,
    SERVERS,
    ServerProcess,
    describe,
    free_port,
    launch_for,
    livehub_cluster_args,
    redis_launch,
)

SCHEMA = "livehub-bench/1"


@dataclass(frozen=True, slots=True)
class Case:
    """One server under one scenario's parameters."""

    server: str
    params: Params
    group: str = ""
    """Cases of the same group are compared with each other (``compare``)."""
    label: str = ""
    """How the case is shown (default: the server's name), e.g. ``livehub w=2ms``."""


def livehub_args(p: Params) -> tuple[str, ...]:
    """Flags of ``livehub serve`` that a case's parameters ask for."""
    return ("--write-delay", repr(p.write_delay)) if p.write_delay else ()


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    """PIDs of the processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            out.append(int(entry.name))
    return out


@dataclass(slots=True)
class Options:
    """How to run cases: where things are, pinning, repetitions, an attached server."""

    cache: Path
    livehub_root: Path
    livehub_python: str = sys.executable
    peer_python: str | None = None
    """Interpreter for the Python peers (default: the cache's virtualenv)."""
    pin: bool = True
    repeat: int = 1
    attach_port: int | None = None
    attach_pid: int | None = None
    quiet: bool = False
    install_peers: bool = True
    profile: bool = False
    """Sample the server with py-spy (when on PATH) during each case, to bench-results/profiles."""
    logs: Path = field(default_factory=lambda: Path("bench-results") / "logs")


def headline(params: Params) -> tuple[str, bool]:
    """The figure a case is judged by, and whether higher is better."""
    if params.scenario == "echo":
        return "round_trips_per_s", True
    if params.scenario == "idle":
        return "rss_kib_per_connection", False
    if params.rate > 0:
        return "latency_ms.p99", False
    return "deliveries_per_s", True


def figure(figures: dict[str, Any], path: str) -> float | None:
    """A figure by dotted path (``latency_ms.p99``), or None."""
    value: Any = figures
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) else None


def _median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    scored = [(figure(r, key), i) for i, r in enumerate(runs)]
    valid = sorted((v, i) for v, i in scored if v is not None)
    if not valid:
        return runs[0]
    return runs[valid[(len(valid) - 1) // 2][1]]


def _summary(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [v for v in (figure(r, key) for r in runs) if v is not None]
    if not values:
        return {}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


async def _run_one(case: Case, opts: Options, versions: dict[str, str],
                   label: str) -> dict[str, Any]:
    spec = SERVERS[case.server]
    progress = Progress(label, enabled=not opts.quiet)
    runner = RUNNERS[case.params.scenario]
    if opts.attach_port is not None:
        target = Target(spec.routes, opts.attach_port, opts.attach_pid)
        return await runner(target, case.params, progress)
    if case.params.cluster > 1 or case.params.workers > 0:
        return await _run_cluster(case, opts, progress)
    cpus = {0} if opts.pin and (os.cpu_count() or 1) > 1 else None
    for attempt in range(3):
        # free_port() only finds a port free now: another process may take it before the
        # server binds it (a busy shared machine), so a start that lost the race is retried
        port = free_port()
        launch = launch_for(spec, port, opts.cache, opts.livehub_root,
                            livehub_python=opts.livehub_python, peer_python=opts.peer_python,
                            extra=livehub_args(case.params))
        server = ServerProcess(spec, launch, port, opts.logs / f"{spec.name}.log", cpus)
        progress.show(f"starting {spec.name} on port {port}", force=True)
        try:
            server.start()
            break
        except RuntimeError as exc:
            if attempt == 2 or "in use" not in str(exc).lower():
                raise
    profiler: subprocess.Popen[bytes] | None = None
    try:
        here = str(Path(sys.executable).parent)
        spy = shutil.which("py-spy") or shutil.which("py-spy", path=here)
        if opts.profile and spec.runtime != "node" and spy:
            out = opts.logs.parent / "profiles" / f"{case.group}-{spec.name}-{server.pid}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            profiler = subprocess.Popen(
                [spy, "record", "--pid", str(server.pid), "--nonblocking", "--format",
                 "raw", "--duration", str(int(case.params.duration + 30)), "--output", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        target = Target(spec.routes, port, server.pid, pinned=cpus is not None)
        figures = await asyncio.wait_for(
            runner(target, case.params, progress), timeout=case.params.duration + 180.0
        )
        figures["server_alive_after"] = server.alive()
        return figures
    finally:
        server.stop()  # py-spy ends when the process it samples is gone
        if profiler is not None:
            try:
                profiler.wait(10)
            except subprocess.TimeoutExpired:
                profiler.terminate()
                profiler.wait(5)


async def _run_cluster(case: Case, opts: Options, progress: Progress) -> dict[str, Any]:
    """K livehub nodes (or one ``serve --workers N``) over one fresh redis-server, none of
    them pinned.

    The Redis prefix is unique to the run, so nothing of an earlier run is read back. Every
    process the lab started here is stopped by its PID, nodes first, Redis last (a node with
    workers stops its workers by their PIDs).
    """
    spec = SERVERS[case.server]
    if spec.runtime != "livehub":
        raise ValueError("--cluster runs livehub nodes only")
    redis_port = free_port()
    redis = ServerProcess(REDIS_SPEC, redis_launch(redis_port, opts.logs / "redis"), redis_port,
                          opts.logs / "redis.log", None)
    nodes: list[ServerProcess] = []
    try:
        progress.show(f"starting redis-server on port {redis_port}", force=True)
        redis.start()
        prefix = f"bench-{os.getpid()}-{redis_port}"
        for k in range(case.params.cluster):
            port = free_port()
            n_workers = case.params.workers
            launch = launch_for(spec, port, opts.cache, opts.livehub_root,
                                livehub_python=opts.livehub_python,
                                extra=(*livehub_cluster_args(redis_port, prefix),
                                       *livehub_args(case.params),
                                       *(("--workers", str(n_workers)) if n_workers > 1
                                         else ())))
            node = ServerProcess(spec, launch, port, opts.logs / f"{spec.name}-node{k}.log", None)
            nodes.append(node)
            progress.show(f"starting {spec.name} node {k} on port {port}", force=True)
            node.start()
        first = nodes[0]
        workers: list[int] = []
        if case.params.workers > 1:
            # the parent answers nothing itself: wait for every worker to listen
            deadline = time.monotonic() + 30.0
            while len(workers) < case.params.workers and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                workers = [pid for pid in _children(first.pid) if "spawn_main" in _cmdline(pid)]
            await asyncio.sleep(1.0)
        target = Target(spec.routes, first.port, first.pid,
                        nodes=tuple((n.port, n.pid) for n in nodes[1:]),
                        aux={"redis": redis.pid}, pinned=False, workers=tuple(workers))
        figures = await asyncio.wait_for(
            RUNNERS[case.params.scenario](target, case.params, progress),
            timeout=case.params.duration + 180.0,
        )
        figures["server_alive_after"] = all(n.alive() for n in nodes) and redis.alive()
        figures.setdefault("cluster", {})["redis_prefix"] = prefix
        if workers:
            figures["cluster"]["worker_pids"] = workers
        return figures
    finally:
        for node in nodes:
            node.stop()
        redis.stop()


async def _run_all(cases: list[Case], opts: Options,
                   versions: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for index, case in enumerate(cases, 1):
        spec = SERVERS[case.server]
        p = case.params
        key, higher = headline(p)
        runs: list[dict[str, Any]] = []
        error = ""
        for rep in range(opts.repeat):
            what = p.transport if p.scenario != "echo" else "ws"
            size = (p.subscribers if p.scenario in ("fanout", "churn") else
                    p.channels * p.subscribers if p.scenario == "rooms" else p.connections)
            label = f"{index}/{len(cases)} {p.scenario} {what} {case.label or case.server} n={size}"
            if opts.repeat > 1:
                label += f" run {rep + 1}/{opts.repeat}"
            try:
                runs.append(await _run_one(case, opts, versions, label))
            except (RuntimeError, OSError, TimeoutError, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                print(f"[{label}] failed: {error}", file=sys.stderr)
                break
            await asyncio.sleep(0.5)  # let the kernel settle closed sockets between runs
        entry: dict[str, Any] = {
            "group": case.group,
            "server": case.server,
            "label": case.label or case.server,
            "server_info": describe(spec, versions, opts.livehub_root),
            "params": p.used(),
            "headline": {"figure": key, "higher_is_better": higher,
                         **_summary(runs, key)},
        }
        if runs:
            entry["figures"] = _median_run(runs, key)
            entry["runs"] = runs
        if error:
            entry["error"] = error
        out.append(entry)
    return out


def run_cases(command: str, argv: list[str], cases: list[Case], opts: Options) -> dict[str, Any]:
    """Run every case and return the result document (not yet written)."""
    raise_fd_limit()
    versions: dict[str, str] = {}
    if any(SERVERS[c.server].runtime != "livehub" for c in cases) and opts.attach_port is None:
        if opts.install_peers:
            need_node = any(SERVERS[c.server].runtime == "node" for c in cases)
            need_py = opts.peer_python is None and any(
                SERVERS[c.server].runtime == "python" for c in cases)
            versions = peers.install(opts.cache, node=need_node, python=need_py)
        else:
            versions = peers.installed_versions(opts.cache)
    pinned = False
    if opts.pin and (os.cpu_count() or 1) > 1:
        pinned = pin_self(set(range(1, os.cpu_count() or 1)))
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    results = uvloop.run(_run_all(cases, opts, versions))
    cluster = max((c.params.cluster for c in cases), default=1)
    return {
        "schema": SCHEMA,
        "command": command,
        "argv": argv,
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - t0, 1),
        "machine": machine_facts(),
        "pinning": {"server_cpus": [0] if pinned else None,
                    "generator_cpus": sorted(os.sched_getaffinity(0)) if pinned else None},
        "cluster": {"nodes": cluster, "broker": "redis", "pinned": False} if cluster > 1 else None,
        "generator": {"processes": 1, "event_loop": "uvloop",
                      "python": sys.version.split()[0]},
        "versions": versions,
        "cases": results,
    }


def write_result(doc: dict[str, Any], out: Path | None, command: str) -> Path:
    """Write ``doc`` as JSON to ``out`` or to ``bench-results/<command>-<time>.json``."""
    if out is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("bench-results") / f"{command}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    return out
