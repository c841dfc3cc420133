"""The scenarios: fanout, echo, idle and churn, each bounded in count and time.

Every scenario runs in the generator's event loop against one started server, reads the
server's CPU and RSS from /proc around its measuring window, and returns a flat dict of
figures. Nothing here starts or stops servers (``runner`` does).

Fan-out "as fast as it holds" is closed-loop: the publisher keeps at most ``window``
publications in flight (published minus delivered/N), refilling when half of them arrived, so
the rate found is the one the server sustains without an unbounded queue, and the latency
figures of that mode include the queueing of the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from livehub.bench.clients import (
    CfProbe,
    CfSubscriber,
    Conn,
    EchoClient,
    HttpPublisher,
    PollSubscriber,
    StreamProbe,
    StreamSubscriber,
    WsProbe,
    WsPublisher,
    WsSubscriber,
)
from livehub.bench.mercure import mercure_factory
from livehub.bench.procstat import Snapshot, core_figures, rss_kib
from livehub.bench.servers import Routes
from livehub.bench.socketio import SioProbe, SioPublisher, SioSubscriber
from livehub.bench.stats import RunStats, percentiles
from livehub.bench.wire import http_get_request, http_post_request, make_payload, ws_upgrade_request

SCENARIOS = ("fanout", "echo", "idle", "churn", "rooms")


@dataclass(frozen=True, slots=True)
class Params:
    """Parameters of one scenario run (only the ones a scenario uses go to the result)."""

    scenario: str
    transport: str = "ws"
    subscribers: int = 1000
    rate: float = 0.0
    """Publications per second; 0 means as fast as the server holds (closed loop)."""
    size: int = 100
    duration: float = 10.0
    window: int = 32
    probes: int = 100
    connections: int = 100
    message_size: int = 32
    churn_rate: float = 100.0
    churn_hold_ms: float = 200.0
    concurrency: int = 200
    hold: float = 2.0
    http_pipeline: int = 16
    """POSTs the HTTP publisher may have in flight (1: wait for each response)."""
    read_pause_ms: float = 0.0
    """Counting subscribers read at most once per this many ms (0: whenever data arrives)."""
    cluster: int = 1
    """livehub nodes over one Redis (1: one node, memory broker)."""
    write_delay: float = 0.0
    """livehub's batching window in seconds (``--write-delay``; the peers have none)."""
    workers: int = 0
    """livehub worker processes on one port over a Redis the lab starts (``--workers``; 1:
    one process over Redis; 0: one process, memory broker)."""
    channels: int = 1
    """Rooms of the ``rooms`` scenario (``subscribers`` is then per room)."""
    deflate: bool = False
    """WebSocket subscribers offer permessage-deflate (RFC 7692)."""

    def used(self) -> dict[str, Any]:
        keys = {
            "fanout": ("transport", "subscribers", "rate", "size", "duration", "window", "probes",
                       "read_pause_ms", "http_pipeline", "cluster", "write_delay", "workers"),
            "churn": ("transport", "subscribers", "rate", "size", "duration", "window", "probes",
                      "read_pause_ms", "http_pipeline", "churn_rate", "churn_hold_ms"),
            "rooms": ("transport", "channels", "subscribers", "rate", "size", "duration",
                      "window", "probes", "deflate", "write_delay", "workers"),
            "echo": ("connections", "message_size", "duration"),
            "idle": ("transport", "connections", "concurrency", "hold"),
        }[self.scenario]
        values = asdict(self)
        out = {"scenario": self.scenario}
        out.update({k: values[k] for k in keys})
        return out


class Progress:
    """One stderr line, rewritten in place on a terminal, printed every few seconds otherwise."""

    def __init__(self, label: str, *, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.dirty = False

    def show(self, text: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < (0.5 if self.tty else 5.0):
            return
        self.last = now
        line = f"[{self.label}] {text}"
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + line[:160])
            self.dirty = True
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self, text: str) -> None:
        if not self.enabled:
            return
        if self.tty and self.dirty:
            sys.stderr.write("\r\x1b[2K")
        sys.stderr.write(f"[{self.label}] {text}\n")
        sys.stderr.flush()
        self.dirty = False


@dataclass(slots=True)
class Target:
    """A listening server: its routes, its port and (when we started it) its PID.

    A cluster adds its other nodes (``nodes``: port and PID of each) and the processes whose
    CPU a run reports apart (``aux``: the Redis server). The publisher always uses ``port``.
    """

    routes: Routes
    port: int
    pid: int | None
    nodes: tuple[tuple[int, int | None], ...] = ()
    aux: dict[str, int] = field(default_factory=dict)
    pinned: bool = True
    """The server is alone on CPU 0 (so CPU 0's busy time is the server's core time)."""
    workers: tuple[int, ...] = ()
    """PIDs of the server's worker processes (``serve --workers N``): its CPU is theirs too."""

    @property
    def ports(self) -> list[int]:
        return [self.port, *(port for port, _ in self.nodes)]

    @property
    def server_pids(self) -> list[int]:
        pids = [self.pid, *(pid for _, pid in self.nodes), *self.workers]
        return [pid for pid in pids if pid]

    def snapshot(self) -> Snapshot:
        return Snapshot.take(self.server_pids, self.aux)


async def _open(factory: Callable[[], Conn], port: int, timeout: float = 15.0) -> Conn:
    loop = asyncio.get_running_loop()
    _, proto = await asyncio.wait_for(loop.create_connection(factory, "127.0.0.1", port), timeout)
    await asyncio.wait_for(proto.ready, timeout)
    return proto


async def _open_many(factories: list[Callable[[], Conn]], port: int | list[int], concurrency: int,
                     *,
                     progress: Progress, what: str, st: RunStats) -> tuple[list[Conn], array[int]]:
    """Open every connection, at most ``concurrency`` at a time; return them and connect times."""
    sem = asyncio.Semaphore(concurrency)
    conns: list[Conn | None] = [None] * len(factories)
    times: array[int] = array("q")
    done = 0
    ports = port if isinstance(port, list) else [port] * len(factories)

    async def one(i: int) -> None:
        nonlocal done
        async with sem:
            t0 = time.monotonic_ns()
            try:
                conns[i] = await _open(factories[i], ports[i])
            except (OSError, TimeoutError, ConnectionError, RuntimeError) as exc:
                st.error(f"connect: {type(exc).__name__}: {exc}"[:120])
                return
            times.append((time.monotonic_ns() - t0) // 1000)
            done += 1
            progress.show(f"connecting {what}: {done}/{len(factories)}")

    await asyncio.gather(*(one(i) for i in range(len(factories))))
    return [c for c in conns if c is not None], times


def _subscriber_factory(routes: Routes, transport: str, port: int, st: RunStats, *,
                        probe: bool, deflate: bool = False) -> Callable[[], Conn]:
    path = routes.subscribe[transport]
    if transport == "ws":
        request = ws_upgrade_request(path, port, deflate=deflate)
        cls_ws = WsProbe if probe else WsSubscriber
        return lambda: cls_ws(st, request)
    if transport in ("sse", "stream"):
        accept = "text/event-stream" if transport == "sse" else "application/x-ndjson"
        request = http_get_request(path, port, accept)
        cls_stream = StreamProbe if probe else StreamSubscriber
        return lambda: cls_stream(st, request)
    if transport == "poll":
        return lambda: _ReadyPoll(st, path, port, probe=probe)
    if transport == "mercure":
        return mercure_factory(path, port, st, probe=probe)
    if transport == "socketio":
        request = ws_upgrade_request(path, port)
        cls_sio = SioProbe if probe else SioSubscriber
        return lambda: cls_sio(st, request)
    if transport == "centrifugo-ws":
        request = ws_upgrade_request(path, port)
        cls_cf = CfProbe if probe else CfSubscriber
        channel = routes.channel
        return lambda: cls_cf(st, request, channel)
    raise ValueError(f"no client for transport {transport!r}")


class _ReadyPoll(PollSubscriber):
    """A long-poll subscriber counts as connected once its first request is sent."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self.ready.done():
            self.ready.set_result(None)


def _publisher_factory(routes: Routes, transport: str, port: int, st: RunStats,
                       pipeline: int = 1) -> Callable[[], Conn]:
    how = routes.publisher_for(transport)
    if how == "ws" and transport == "socketio":
        assert routes.ws_publish is not None
        request = ws_upgrade_request(routes.ws_publish, port)
        return lambda: SioPublisher(st, request)
    if how == "ws":
        assert routes.ws_publish is not None
        request = ws_upgrade_request(routes.ws_publish, port)
        return lambda: WsPublisher(st, request)
    if how == "http":
        assert routes.http_publish is not None
        path, body, headers = routes.http_publish, routes.http_body, routes.http_headers
        return lambda: HttpPublisher(
            st, lambda p: http_post_request(path, port, body(p), headers), pipeline
        )
    raise ValueError(f"this server cannot publish to {transport!r} subscribers")


def _cpu_figures(prefix: str, s0: Snapshot, s1: Snapshot, units: int,
                 target: Target) -> dict[str, Any]:
    pid = target.pid
    wall = max(s1.t - s0.t, 1e-9)
    out: dict[str, Any] = {
        "wall_s": round(wall, 3),
        "gen_cpu_s": round(s1.gen_cpu - s0.gen_cpu, 3),
        "gen_cpu_util": round((s1.gen_cpu - s0.gen_cpu) / wall, 3),
        f"gen_cpu_us_per_{prefix}": _per(s1.gen_cpu - s0.gen_cpu, units, 1e6),
        f"loopback_bytes_per_{prefix}": _per(s1.lo_bytes - s0.lo_bytes, units, 1.0),
        "cores": core_figures(s0.cores, s1.cores),
    }
    cores = out["cores"]
    busy = sum(c["busy_s"] for c in cores.values())
    soft = sum(c["softirq"] for c in cores.values()) * wall
    own = (s1.gen_cpu - s0.gen_cpu) + (s1.server_cpu - s0.server_cpu if pid else 0.0)
    own += sum(s1.aux_cpu.get(k, 0.0) - v for k, v in s0.aux_cpu.items())
    kernel = soft + (s1.ksoftirqd - s0.ksoftirqd)
    out["kernel_net_cpu_util"] = round(kernel / wall, 3)
    # CPU used by anything else on the machine during the window (other users' jobs): a run
    # with a large figure here was disturbed and its throughput is not to be trusted.
    out["foreign_cpu_util"] = round(max(0.0, busy - kernel - own) / wall, 3)
    server_core = cores.get("cpu0")
    if pid and server_core and target.pinned and not target.nodes:
        # The server is pinned to CPU 0 and alone there: this is its time plus the kernel's
        # loopback work done on that core (softirq), which /proc/PID/stat does not show.
        out[f"server_core_us_per_{prefix}"] = _per(server_core["busy_s"], units, 1e6)
    for name, before in s0.aux_cpu.items():
        aux = s1.aux_cpu.get(name, before) - before
        out[f"{name}_cpu_util"] = round(aux / wall, 3)
        out[f"{name}_cpu_us_per_{prefix}"] = _per(aux, units, 1e6)
    if target.workers:
        # [parent, worker 1, worker 2, ...]: each process's share of one core
        out["server_process_cpu_util"] = [round((b - a) / wall, 3)
                                          for a, b in zip(s0.node_cpu, s1.node_cpu, strict=True)]
    if pid:
        # sends per unit: below 1 per delivery when several messages share one write
        out[f"server_writes_per_{prefix}"] = _per(s1.server_writes - s0.server_writes, units, 1.0)
        out["server_cpu_s"] = round(s1.server_cpu - s0.server_cpu, 3)
        out["server_cpu_util"] = round((s1.server_cpu - s0.server_cpu) / wall, 3)
        out[f"server_cpu_us_per_{prefix}"] = _per(s1.server_cpu - s0.server_cpu, units, 1e6)
        out["server_rss_kib"] = sum(rss_kib(p) for p in target.server_pids)
    return out


def _with_latencies(factory: Callable[[], Conn], lat: array[int]) -> Callable[[], Conn]:
    def make() -> Conn:
        conn = factory()
        if conn.probe:
            conn.node_latencies = lat
        return conn
    return make


def _cluster_figures(s0: Snapshot, s1: Snapshot, units: int, target: Target, *, published: int,
                     node_lat: list[array[int]], node_of: list[int],
                     subs: list[Conn]) -> dict[str, Any]:
    """Per node: subscribers, CPU per delivery of the whole run, probe latency; and Redis."""
    wall = max(s1.t - s0.t, 1e-9)
    nodes = []
    for k, port in enumerate(target.ports):
        cpu = (s1.node_cpu[k] - s0.node_cpu[k]) if k < len(s0.node_cpu) else None
        nodes.append({
            "port": port,
            "subscribers": node_of.count(k),
            "publisher": k == 0,
            "cpu_s": round(cpu, 3) if cpu is not None else None,
            "cpu_util": round(cpu / wall, 3) if cpu is not None else None,
            "latency_ms": percentiles(node_lat[k], 0.001),
        })
    out: dict[str, Any] = {"nodes": nodes, "subscribers_connected": len(subs)}
    for name, before in s0.aux_cpu.items():
        cpu = s1.aux_cpu.get(name, before) - before
        out[f"{name}_cpu_s"] = round(cpu, 3)
        out[f"{name}_cpu_util"] = round(cpu / wall, 3)
        out[f"{name}_cpu_us_per_delivery"] = _per(cpu, units, 1e6)
        # Redis sees each publication once per node, whatever the number of subscribers.
        out[f"{name}_cpu_us_per_publication"] = _per(cpu, published, 1e6)
    return out


def _reasons(conns: list[Conn] | list[EchoClient]) -> dict[str, int]:
    """How many connections the server closed, by the code and reason it gave."""
    out: dict[str, int] = {}
    for c in conns:
        if c.server_closed is not None:
            out[c.server_closed] = out.get(c.server_closed, 0) + 1
    return out


def _per(total: float, units: int, scale: float) -> float | None:
    return round(total * scale / units, 3) if units else None


async def fanout(target: Target, p: Params, progress: Progress,
                 side: Callable[[], Awaitable[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """N subscribers on one channel, one publisher at a fixed rate or as fast as it holds."""
    st = RunStats()
    n = p.subscribers
    stride = max(1, n // max(1, p.probes))
    # In a cluster the first N/K subscribers go to the first node, the next N/K to the second,
    # ...: blocks, so the evenly spread probes land on every node alike.
    ports = target.ports
    node_of = [i * len(ports) // n for i in range(n)]
    node_lat: list[array[int]] = [array("q") for _ in ports]
    factories = [
        _subscriber_factory(target.routes, p.transport, ports[node_of[i]], st,
                            probe=i % stride == 0)
        for i in range(n)
    ]
    if len(ports) > 1:
        factories = [_with_latencies(f, node_lat[node_of[i]]) for i, f in enumerate(factories)]
    conns, connect_us = await _open_many(factories, [ports[k] for k in node_of], p.concurrency,
                                         progress=progress, what="subscribers", st=st)
    subs = conns
    pub_st = RunStats()
    pub = await _open(
        _publisher_factory(target.routes, p.transport, target.port, pub_st, p.http_pipeline),
        target.port,
    )
    assert isinstance(pub, WsPublisher | HttpPublisher | SioPublisher)
    await asyncio.sleep(0.5)  # let every subscription settle on the server

    live = len(subs)
    n_probes = sum(1 for s in subs if s.probe) or 1
    ticker: asyncio.Task[None] | None = None
    if p.read_pause_ms > 0:
        st.pause_reads = True
        ticker = asyncio.ensure_future(_resume_every(st, p.read_pause_ms / 1000))
    seq = 0
    overloaded = False
    size = p.size
    side_task = asyncio.ensure_future(side()) if side is not None else None
    s0 = target.snapshot()
    end = s0.t + p.duration
    try:
        if p.rate > 0:
            while True:
                now = time.monotonic()
                if now >= end:
                    break
                due = min(int((now - s0.t) * p.rate) + 1 - seq, 10_000)
                if due > 0:
                    t_us = time.monotonic_ns() // 1000
                    pub.publish([make_payload(seq + k + 1, t_us, size) for k in range(due)])
                    seq += due
                if seq - st.probe_delivered // n_probes > p.rate * 5 + p.window + 100:
                    overloaded = True  # more than ~5 s behind: the rate is not sustained
                    break
                await asyncio.sleep(max(0.0, s0.t + seq / p.rate - time.monotonic()))
                _show(progress, s0, seq, st, p.duration)
        else:
            window = max(1, p.window)
            while time.monotonic() < end and live:
                room = window - (seq - st.probe_delivered // n_probes)
                if room > 0:
                    t_us = time.monotonic_ns() // 1000
                    pub.publish([make_payload(seq + k + 1, t_us, size) for k in range(room)])
                    seq += room
                await st.wait_probes((seq - window // 2) * n_probes,
                                     min(2.0, max(0.01, end - time.monotonic())))
                _show(progress, s0, seq, st, p.duration)
        t_pub_end = time.monotonic()
        drained = await st.wait_probes(seq * n_probes, 10.0)
        give_up = time.monotonic() + 5.0
        while st.delivered < seq * live and time.monotonic() < give_up:
            await asyncio.sleep(0.002)
        drained = drained and st.delivered >= seq * live
        s1 = target.snapshot()
    finally:
        if ticker is not None:
            ticker.cancel()
            st.pause_reads = False
            st.resume_paused()
        side_figures: dict[str, Any] = {}
        if side_task is not None:
            side_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                side_figures = await side_task
        for c in [*subs, pub]:
            c.close()

    lost = dup = lost_disc = 0
    disconnected = 0
    close_reasons: dict[str, int] = {}
    for s in subs:
        if s.server_closed is not None:
            close_reasons[s.server_closed] = close_reasons.get(s.server_closed, 0) + 1
            disconnected += 1
            lost_disc += max(0, seq - s.count)
            continue
        if s.probe:
            # A gap is loss for sure; a missing tail is loss only once the run has drained.
            lost += s.gaps + (max(0, seq - s.last_seq) if drained else 0)
            dup += s.dups
        else:
            if drained:
                lost += max(0, seq - s.count)
            dup += max(0, s.count - seq)
    wall = s1.t - s0.t
    figures: dict[str, Any] = {
        "subscribers_connected": live,
        "published": seq,
        "publishes_per_s": round(seq / max(t_pub_end - s0.t, 1e-9), 1),
        "deliveries": st.delivered,
        "expected_deliveries": seq * live,
        "deliveries_per_s": round(st.delivered / max(wall, 1e-9), 1),
        "drained": drained,
        "undelivered_at_end": seq * live - st.delivered if not drained else 0,
        "overloaded": overloaded,
        "lost": lost,
        "duplicated": dup,
        "disconnected_by_server": disconnected,
        "closed_by_server": close_reasons,
        "lost_by_disconnect": lost_disc,
        "latency_ms": percentiles(st.latencies_us, 0.001),
        "probes": sum(1 for s in subs if s.probe),
        "connect_ms": percentiles(connect_us, 0.001),
        "bytes_per_delivery": _per(st.bytes_in, st.delivered, 1.0),
        "errors": {**st.errors, **pub_st.errors},
    }
    figures.update(_cpu_figures("delivery", s0, s1, st.delivered, target))
    if len(ports) > 1:
        figures["cluster"] = _cluster_figures(s0, s1, st.delivered, target, published=seq,
                                              node_lat=node_lat, node_of=node_of, subs=subs)
    gen_us = figures.get("gen_cpu_us_per_delivery")
    if gen_us is not None:
        # How long the generator's one core needs to read one publication from every
        # subscriber: a floor under the latency tail this lab can show at this N.
        figures["gen_read_all_ms"] = round(gen_us * live / 1000, 2)
    if side_figures:
        figures["churn"] = side_figures
    progress.done(
        f"{figures['deliveries_per_s']:,.0f} deliveries/s, p99 "
        f"{figures['latency_ms'].get('p99', 0):.1f} ms, lost {lost}, dup {dup}, server "
        f"{figures.get('server_cpu_us_per_delivery')} us/delivery, gen cpu "
        f"{figures['gen_cpu_util']:.0%}"
    )
    return figures


async def _resume_every(st: RunStats, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        st.resume_paused()


def _show(progress: Progress, s0: Snapshot, seq: int, st: RunStats, duration: float) -> None:
    elapsed = time.monotonic() - s0.t
    progress.show(
        f"{elapsed:4.1f}/{duration:.0f}s published {seq:,} delivered {st.delivered:,} "
        f"({st.delivered / max(elapsed, 1e-9):,.0f}/s)"
    )


async def churn(target: Target, p: Params, progress: Progress) -> dict[str, Any]:
    """Fan-out at a fixed rate while other subscribers connect and disconnect continuously."""
    churn_st = RunStats()
    connect_us: array[int] = array("q")
    counts = {"opened": 0, "failed": 0}
    factory = _subscriber_factory(target.routes, p.transport, target.port, churn_st, probe=False)
    tasks: set[asyncio.Task[None]] = set()
    hold = p.churn_hold_ms / 1000

    async def one() -> None:
        t0 = time.monotonic_ns()
        try:
            conn = await _open(factory, target.port, 10.0)
        except (OSError, TimeoutError, ConnectionError, RuntimeError):
            counts["failed"] += 1
            return
        connect_us.append((time.monotonic_ns() - t0) // 1000)
        counts["opened"] += 1
        try:
            await asyncio.sleep(random.uniform(0, 2 * hold))
        finally:
            conn.close()

    async def side() -> dict[str, Any]:
        t0 = time.monotonic()
        started = 0
        try:
            while True:
                due = int((time.monotonic() - t0) * p.churn_rate) + 1 - started
                for _ in range(max(0, min(due, 1000))):
                    if len(tasks) < 5000:
                        task = asyncio.ensure_future(one())
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                        started += 1
                await asyncio.sleep(max(0.0, t0 + started / p.churn_rate - time.monotonic()))
        except asyncio.CancelledError:
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        wall = time.monotonic() - t0
        return {
            "started": started,
            "opened": counts["opened"],
            "failed": counts["failed"],
            "opened_per_s": round(counts["opened"] / max(wall, 1e-9), 1),
            "connect_ms": percentiles(connect_us, 0.001),
            "deliveries_to_churning": churn_st.delivered,
            "errors": churn_st.errors,
        }

    return await fanout(target, p, progress, side)


async def echo(target: Target, p: Params, progress: Progress) -> dict[str, Any]:
    """C WebSocket connections, each sending a message and waiting for its reply."""
    assert target.routes.echo is not None
    st = RunStats()
    request = ws_upgrade_request(target.routes.echo, target.port)
    message = (b"%d," % 0).ljust(p.message_size, b"x")
    factories: list[Callable[[], Conn]] = [
        lambda: EchoClient(st, request, message) for _ in range(p.connections)
    ]
    conns, _ = await _open_many(factories, target.port, p.concurrency,
                                progress=progress, what="echo clients", st=st)
    clients = [c for c in conns if isinstance(c, EchoClient)]
    await asyncio.sleep(0.2)
    s0 = target.snapshot()
    for c in clients:
        c.start()
    end = s0.t + p.duration
    while (left := end - time.monotonic()) > 0:
        await asyncio.sleep(min(0.5, left))
        elapsed = time.monotonic() - s0.t
        progress.show(f"{elapsed:4.1f}/{p.duration:.0f}s round trips {st.delivered:,} "
                      f"({st.delivered / max(elapsed, 1e-9):,.0f}/s)")
    for c in clients:
        c.running = False
    s1 = target.snapshot()
    await asyncio.sleep(0.1)
    for c in clients:
        c.close()
    wall = s1.t - s0.t
    trips = sum(c.round_trips for c in clients)
    figures: dict[str, Any] = {
        "connections_open": len(clients),
        "round_trips": trips,
        "round_trips_per_s": round(trips / max(wall, 1e-9), 1),
        "rtt_ms": percentiles(st.latencies_us, 0.001),
        "disconnected_by_server": sum(1 for c in clients if c.server_closed is not None),
        "closed_by_server": _reasons(clients),
        "errors": st.errors,
    }
    figures.update(_cpu_figures("round_trip", s0, s1, trips, target))
    progress.done(
        f"{figures['round_trips_per_s']:,.0f} round trips/s, rtt p99 "
        f"{figures['rtt_ms'].get('p99', 0):.2f} ms, server "
        f"{figures.get('server_cpu_us_per_round_trip')} us/round trip, gen cpu "
        f"{figures['gen_cpu_util']:.0%}"
    )
    return figures


async def idle(target: Target, p: Params, progress: Progress) -> dict[str, Any]:
    """Open C idle subscribers; server RSS per connection and connect rate."""
    st = RunStats()
    await asyncio.sleep(0.3)
    rss0 = rss_kib(target.pid) if target.pid else 0
    factories = [
        _subscriber_factory(target.routes, p.transport, target.port, st, probe=False)
        for _ in range(p.connections)
    ]
    s0 = target.snapshot()
    conns, connect_us = await _open_many(factories, target.port, p.concurrency,
                                         progress=progress, what="idle connections", st=st)
    s1 = target.snapshot()
    await asyncio.sleep(p.hold)
    rss1 = rss_kib(target.pid) if target.pid else 0
    still = sum(1 for c in conns if not c.lost_connection)
    reasons = _reasons(conns)
    for c in conns:
        c.close()
    opened = len(conns)
    figures: dict[str, Any] = {
        "connections_open": opened,
        "connections_still_open": still,
        "closed_by_server": reasons,
        "connect_per_s": round(opened / max(s1.t - s0.t, 1e-9), 1),
        "connect_ms": percentiles(connect_us, 0.001),
        "errors": st.errors,
    }
    figures.update(_cpu_figures("connection", s0, s1, opened, target))
    if target.pid:
        figures["server_rss_before_kib"] = rss0
        figures["server_rss_after_kib"] = rss1
        figures["rss_kib_per_connection"] = round((rss1 - rss0) / opened, 2) if opened else None
    progress.done(
        f"{opened:,} connections at {figures['connect_per_s']:,.0f}/s, "
        f"{figures.get('rss_kib_per_connection')} KiB per connection"
    )
    return figures


async def rooms(target: Target, p: Params, progress: Progress) -> dict[str, Any]:
    """Many channels, a few subscribers each (``livehub.bench.rooms``)."""
    from livehub.bench.rooms import rooms as run_rooms  # noqa: PLC0415 - it builds on this module

    return await run_rooms(target, p, progress)


RUNNERS: dict[str, Callable[[Target, Params, Progress], Awaitable[dict[str, Any]]]] = {
    "fanout": fanout,
    "echo": echo,
    "idle": idle,
    "churn": churn,
    "rooms": rooms,
}
