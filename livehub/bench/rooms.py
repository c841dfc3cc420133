"""The ``rooms`` scenario: many channels, a few subscribers each (the chat shape), bounded.

``channels`` rooms of ``subscribers`` WebSocket (or SSE) subscribers each, and in every room one
more WebSocket client that publishes there (a member of the room, as in a chat: the peers'
idiomatic room servers broadcast a member's message to its room, livehub's raw ``/ws`` publishes
a client's message to its channel).  Publications go round-robin over the rooms, at a fixed rate
or as fast as the server holds (closed loop: at most ``window`` publications in flight, counted
from every subscriber's deliveries), so the cost per publication, not per delivery, dominates.

Every publication carries its room's own sequence number: probes (spread over the rooms) check
order, gaps and duplicates per room, and every other subscriber is checked by its count against
the publications of its room at the end.  A process here may hold at most ``ulimit -n``
descriptors (20,000 on the machine of docs/benchmarks.md), which bounds rooms x (subscribers + 1).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from livehub.bench.clients import Conn, WsProbe, WsPublisher
from livehub.bench.scenarios import (
    Params,
    Progress,
    Target,
    _cpu_figures,
    _open,
    _open_many,
    _subscriber_factory,
)
from livehub.bench.servers import Routes
from livehub.bench.stats import RunStats, percentiles
from livehub.bench.wire import make_payload, ws_upgrade_request


def room_path(routes: Routes, path: str, k: int) -> str:
    """``path`` with the channel of room ``k`` (``bench:x`` -> ``bench:x.17``)."""
    return path.replace(f"channel={routes.channel}", f"channel={routes.channel}.{k}", 1)


def _room_routes(routes: Routes, k: int) -> Routes:
    subscribe = {t: room_path(routes, p, k) for t, p in routes.subscribe.items()}
    return Routes(subscribe=subscribe, channel=f"{routes.channel}.{k}")


async def rooms(target: Target, p: Params, progress: Progress) -> dict[str, Any]:
    """``channels`` rooms x ``subscribers``, one publishing member per room."""
    st = RunStats()
    routes = target.routes
    if routes.ws_publish is None:
        raise ValueError("the rooms scenario publishes through a WebSocket member of each room")
    n_rooms, per_room = max(1, p.channels), max(1, p.subscribers)
    n = n_rooms * per_room
    # subscriber i is in room i % n_rooms; probe j is in room j % n_rooms: one per room first
    room_of = [i % n_rooms for i in range(n)]
    probes = set(range(min(n, max(1, p.probes))))
    factories: list[Callable[[], Conn]] = [
        _subscriber_factory(_room_routes(routes, room_of[i]), p.transport, target.port, st,
                            probe=i in probes, deflate=p.deflate)
        for i in range(n)
    ]
    subs, connect_us = await _open_many(factories, target.port, p.concurrency,
                                        progress=progress, what="subscribers", st=st)
    pub_st = RunStats()
    publishers: list[WsPublisher] = []
    for k in range(n_rooms):
        request = ws_upgrade_request(room_path(routes, routes.ws_publish, k), target.port)
        pub = await _open(partial(WsPublisher, pub_st, request), target.port)
        assert isinstance(pub, WsPublisher)
        publishers.append(pub)
        progress.show(f"connecting publishers: {k + 1}/{n_rooms}")
    await asyncio.sleep(0.5)  # let every subscription settle on the server

    live = len(subs)
    published = [0] * n_rooms
    total = 0
    size = p.size
    overloaded = False
    s0 = target.snapshot()
    end = s0.t + p.duration

    def publish(count: int) -> None:
        nonlocal total
        t_us = time.monotonic_ns() // 1000
        for _ in range(count):
            k = total % n_rooms
            published[k] += 1
            total += 1
            publishers[k].publish([make_payload(published[k], t_us, size)])

    try:
        if p.rate > 0:
            while (now := time.monotonic()) < end:
                due = min(int((now - s0.t) * p.rate) + 1 - total, 10_000)
                if due > 0:
                    publish(due)
                if total - st.delivered // per_room > p.rate * 5 + p.window + 100:
                    overloaded = True  # more than ~5 s behind: the rate is not sustained
                    break
                await asyncio.sleep(max(0.0, s0.t + total / p.rate - time.monotonic()))
                _show(progress, s0, total, st, p.duration)
        else:
            window = max(1, p.window)
            while time.monotonic() < end:
                room = window - (total - st.delivered // per_room)
                if room > 0:
                    publish(room)
                await asyncio.sleep(0.0005)
                _show(progress, s0, total, st, p.duration)
        give_up = time.monotonic() + 10.0
        while st.delivered < total * per_room and time.monotonic() < give_up:
            await asyncio.sleep(0.002)
        drained = st.delivered >= total * per_room
        s1 = target.snapshot()
    finally:
        for c in [*subs, *publishers]:
            c.close()

    lost = dup = lost_disc = disconnected = 0
    reasons: dict[str, int] = {}
    for i, s in enumerate(subs):
        expected = published[room_of[i]] if len(subs) == n else 0
        if s.server_closed is not None:
            reasons[s.server_closed] = reasons.get(s.server_closed, 0) + 1
            disconnected += 1
            lost_disc += max(0, expected - s.count)
            continue
        if s.probe:
            lost += s.gaps + (max(0, expected - s.last_seq) if drained else 0)
            dup += s.dups
        else:
            if drained:
                lost += max(0, expected - s.count)
            dup += max(0, s.count - expected)
    wall = s1.t - s0.t
    figures: dict[str, Any] = {
        "rooms": n_rooms,
        "subscribers_per_room": per_room,
        "subscribers_connected": live,
        "published": total,
        "publications_per_s": round(total / max(wall, 1e-9), 1),
        "deliveries": st.delivered,
        "expected_deliveries": total * per_room,
        "deliveries_per_s": round(st.delivered / max(wall, 1e-9), 1),
        "drained": drained,
        "undelivered_at_end": total * per_room - st.delivered if not drained else 0,
        "overloaded": overloaded,
        "lost": lost,
        "duplicated": dup,
        "disconnected_by_server": disconnected,
        "closed_by_server": reasons,
        "lost_by_disconnect": lost_disc,
        "latency_ms": percentiles(st.latencies_us, 0.001),
        "probes": sum(1 for s in subs if s.probe),
        "connect_ms": percentiles(connect_us, 0.001),
        "bytes_per_delivery": round(st.bytes_in / st.delivered, 1) if st.delivered else None,
        "errors": {**st.errors, **pub_st.errors},
        "deflate_frames": sum(getattr(s, "inflated", 0) for s in subs if isinstance(s, WsProbe)),
    }
    figures.update(_cpu_figures("delivery", s0, s1, st.delivered, target))
    cpu = figures.get("server_cpu_s")
    if cpu is not None and total:
        figures["server_cpu_us_per_publication"] = round(cpu * 1e6 / total, 2)
    progress.done(
        f"{figures['publications_per_s']:,.0f} publications/s to {n_rooms} rooms x {per_room}, "
        f"{figures['deliveries_per_s']:,.0f} deliveries/s, p99 "
        f"{figures['latency_ms'].get('p99', 0):.1f} ms, lost {lost}, dup {dup}, server "
        f"{figures.get('server_cpu_us_per_publication')} us/publication"
    )
    return figures


def _show(progress: Progress, s0: Any, total: int, st: RunStats, duration: float) -> None:
    elapsed = time.monotonic() - s0.t
    progress.show(f"{elapsed:4.1f}/{duration:.0f}s published {total:,} delivered "
                  f"{st.delivered:,} ({st.delivered / max(elapsed, 1e-9):,.0f}/s)")
