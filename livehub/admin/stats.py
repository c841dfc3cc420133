"""What the dashboard shows: live connections by transport and protocol, channels with their
subscribers and positions, the node's counters (read at request time; nothing is kept)."""

from __future__ import annotations

import time
from collections import Counter

from livehub.errors import LivehubError, ServerError, Unavailable
from livehub.protocols.centrifugo import api
from livehub.protocols.centrifugo.node import CentrifugoNode
from livehub.transports.context import ServerContext

MAX_CHANNELS = 200
"""Channels listed (the most subscribed first)."""


def connections(ctx: ServerContext) -> dict[str, object]:
    """This node's live connections: in total, by transport, by protocol (long-polls are
    requests, not connections)."""
    conns = list(ctx.connections)
    # the labels of metrics and logs (``Outgoing.transport_name``, ``Outgoing.protocol``)
    by_transport = Counter(getattr(c, "transport_name", "other") for c in conns)
    by_protocol = Counter(getattr(c, "protocol", "other") for c in conns)
    for name in ("websocket", "sse", "http_stream"):
        by_transport.setdefault(name, 0)
    return {"total": len(conns), "by_transport": dict(sorted(by_transport.items())),
            "by_protocol": dict(sorted(by_protocol.items()))}


async def channels(ctx: ServerContext, node: CentrifugoNode
                   ) -> tuple[list[dict[str, object]], bool]:
    """Channels with subscribers on any node (server API ``channels``), the most subscribed
    first, each with the position of its newest publication (from which the page derives a
    rate: publications per second between two looks): known to this node's hub, else asked
    of the broker, until the broker fails once (then unknown); and whether the broker
    answered (when it cannot, the other nodes cannot be asked: this node's channels only)."""
    broker_ok = True
    try:
        answer = await api.call(node, "channels", {})
        found = answer.get("result", {})
        raw = found.get("channels", {}) if isinstance(found, dict) else {}
        counts = {name: int(info["num_clients"]) for name, info in raw.items()}
    except Unavailable:  # the other nodes cannot be asked: this node's channels only
        counts = node.local_channels(None)
        broker_ok = False
    listed = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    rows: list[dict[str, object]] = []
    for name, subscribers in listed[:MAX_CHANNELS]:
        position = ctx.hub.position(name)
        if position is None and broker_ok:
            try:
                position = await ctx.node.top(name)
            except (Unavailable, ServerError):
                broker_ok = False  # the broker cannot answer now: do not wait once per channel
            except LivehubError:
                position = None  # e.g. a namespace this node does not configure
        rows.append({"channel": name, "subscribers": subscribers,
                     "offset": None if position is None else position.offset,
                     "epoch": None if position is None else position.epoch})
    return rows, broker_ok


async def snapshot(ctx: ServerContext, node: CentrifugoNode) -> dict[str, object]:
    """Everything the dashboard refreshes at once."""
    nodes = await api.call(node, "info", {})
    result = nodes.get("result", {})
    rows, broker_ok = await channels(ctx, node)
    return {"time": time.time(), "node": node.name, "broker_ok": broker_ok,
            "connections": connections(ctx),
            "publications": ctx.hub.publications, "deliveries": ctx.hub.deliveries,
            "channels": rows,
            "nodes": result.get("nodes", []) if isinstance(result, dict) else []}
