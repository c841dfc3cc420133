"""``/health`` (the process is alive), ``/ready`` (it should get traffic) and the SIGTERM drain.

Theory of operation of the drain (``Drain.run``, started by the first SIGTERM or SIGINT):

1. ``/ready`` answers 503 at once, so load balancers and Kubernetes stop sending new clients;
   everything else keeps working for ``drain_delay`` seconds (the time they need to notice).
2. The listening socket is closed (new connections are refused) and idle keep-alive HTTP
   connections are closed; a request being answered gets its answer first.
3. Open long-lived connections are told to reconnect elsewhere, in random order, spread evenly
   over ``drain_window`` seconds so the fleet they move to does not get them all at once: a
   WebSocket gets close 1001 (going away), Centrifugo clients disconnect 3001 (shutdown,
   reconnect), SSE and HTTP streams an in-band ``disconnect`` event (EventSource then reconnects
   with ``Last-Event-ID``, to another node, and resumes from its cursor).
4. The process exits 0 once every connection is gone, or at ``drain_timeout`` seconds after the
   signal, whatever is left (closed then, abruptly).

A second signal skips what remains of steps 1 and 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from typing import Protocol

from livehub.codes import DisconnectInfo
from livehub.transports.admission import Admission
from livehub.transports.context import ServerContext
from livehub.transports.messages import Request, Response
from livehub.transports.routing import Endpoint, Exchange

log = logging.getLogger("livehub.drain")


class Server(Protocol):
    """What operations see of the application (``livehub.app.App``)."""

    ctx: ServerContext
    drain: Drain
    admission: Admission | None
    started_at: float
    shutdown_info: DisconnectInfo

    @property
    def http_connection_count(self) -> int: ...

    def stop_accepting(self) -> None: ...

    async def stop(self, drain: float = 2.0) -> None: ...


@dataclass(eq=False, slots=True)
class Drain:
    """The readiness of one server and its drain."""

    draining: bool = False
    broker_up: bool = True
    """What the last readiness check saw (metrics read it)."""
    hurry: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by a second signal: skip the waits."""

    def ready(self, ctx: ServerContext) -> tuple[bool, str]:
        """Whether the server should get new clients, and why not."""
        self.broker_up = broker_connected(ctx)
        if self.draining:
            return False, "draining"
        if not self.broker_up:
            return False, "broker unavailable"
        return True, "ready"

    async def run(self, app: Server) -> None:
        """Drain ``app`` (module docstring), then stop it."""
        settings = app.ctx.settings
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.drain_timeout
        self.draining = True
        log.info("draining: /ready answers 503; new connections refused in %g s, open ones "
                 "told to reconnect over %g s; exit at the latest in %g s",
                 settings.drain_delay, settings.drain_window, settings.drain_timeout)
        await self._pause(min(settings.drain_delay, settings.drain_timeout))
        app.stop_accepting()
        conns = list(app.ctx.connections)
        random.shuffle(conns)
        window = max(0.0, min(settings.drain_window, deadline - loop.time()))
        start = loop.time()
        log.info("draining: telling %d connections to reconnect elsewhere", len(conns))
        for i, conn in enumerate(conns):
            due = start + window * i / len(conns)
            if due - loop.time() > 0.005 and not self.hurry.is_set():
                await self._pause(due - loop.time())
            if conn in app.ctx.connections:
                conn.close(getattr(conn, "going_away", None) or app.shutdown_info)
        await app.stop(drain=max(0.0, deadline - loop.time()))
        log.info("drained")

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if a second signal says hurry."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.hurry.wait(), seconds)


def broker_connected(ctx: ServerContext) -> bool:
    """Whether the node's broker is reachable (the memory broker always is)."""
    broker = ctx.node.broker
    shards = getattr(broker, "shards", None)
    parts = shards if isinstance(shards, list | tuple) else [broker]
    return all(bool(getattr(part, "connected", True)) for part in parts)


async def health_endpoint(ctx: ServerContext, request: Request,
                          http: Exchange) -> Response:
    """``/health``: 200 while the process runs (liveness), with a few numbers."""
    return Response.json({"status": "ok", "connections": len(ctx.connections),
                          "channels": ctx.hub.channel_count(),
                          "publications": ctx.hub.publications,
                          "deliveries": ctx.hub.deliveries})


def ready_endpoint(drain: Drain) -> Endpoint:
    """``/ready``: 200 when the broker is reachable and the server is not draining, else 503
    with the reason (readiness: whether to send new clients here)."""

    async def endpoint(ctx: ServerContext, request: Request, http: Exchange) -> Response:
        ready, why = drain.ready(ctx)
        response = Response.json({"status": why}, 200 if ready else 503)
        response.headers.append(("cache-control", "no-store"))
        return response

    return endpoint
