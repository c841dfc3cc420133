"""What every endpoint shares: the node, the server settings, the flusher, the token verifier
and live connections (with the expiry of their credentials)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from livehub.codes import Disconnect, DisconnectInfo
from livehub.core.auth import AuthSettings, TokenVerifier
from livehub.core.channels import check_write_delay
from livehub.core.hub import Hub
from livehub.core.limits import TokenBucket
from livehub.core.node import Node
from livehub.errors import ConfigError
from livehub.transports.admission import parse_networks
from livehub.transports.outgoing import Flusher
from livehub.transports.stats import TransportStats


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    host: str = "127.0.0.1"
    """Address to listen on (``0.0.0.0``: every IPv4 interface)."""
    port: int = 8000
    """Port to listen on (0: any free port, printed at start-up)."""
    api_key: str | None = None
    """Key of the server API (``X-API-Key``); unset: a random key is made and logged."""
    insecure_api: bool = False
    """Accept server API calls without a key (development only)."""
    allowed_origins: Sequence[str] = ("*",)
    """Origins allowed for CORS and WebSocket handshakes; ``*`` allows all."""
    cors_credentials: bool = False
    """Allow credentialed CORS requests (cookies) from the listed ``allowed_origins``."""
    heartbeat_interval: float = 15.0
    """Seconds between SSE/stream heartbeats and WebSocket pings (well under 60 s proxies)."""
    pong_timeout: float = 30.0
    """Not used yet: a silent WebSocket peer is closed with 3012 after three heartbeat
    intervals without traffic."""
    sse_retry_ms: int = 2000
    """The SSE ``retry:`` field: milliseconds a browser waits before it reconnects."""
    max_buffer: int = 1024 * 1024
    """Unsent bytes a subscriber may hold before it is disconnected as slow (3008)."""
    write_delay: float = 0.0
    """Batching window in seconds (Centrifugo's ``client.write_delay``): what is written to a
    long-lived connection waits up to this long, so that several publications share one
    ``send()``; 0: written at the end of the loop turn.  A namespace's ``write_delay`` replaces
    it for the connections subscribed there (``transports.outgoing``)."""
    max_channels: int = 64
    """Channels one stream may subscribe to."""
    poll_timeout: float = 25.0
    """Seconds a long-poll waits for news when the request names no ``timeout``."""
    max_poll_timeout: float = 120.0
    """The longest ``timeout`` a long-poll may ask for (400 beyond)."""
    ws_max_message: int = 1024 * 1024
    """Bytes of one WebSocket message from a client, over all its fragments (1009 beyond)."""
    ws_deflate: bool = True
    """Offer permessage-deflate (RFC 7692) to WebSocket clients."""
    ws_compress_rate: int = 8 * 1024 * 1024
    """Bytes per second zlib may inflate and deflate for one WebSocket connection: beyond it
    the connection is closed with 3013 (echoes go out uncompressed instead)."""
    ws_compress_global_rate: int = 64 * 1024 * 1024
    """The same budget for all connections together: 1013 (try again later) beyond it."""
    max_body: int = 1024 * 1024
    """Bytes of one HTTP request body (413 beyond)."""
    head_timeout: float = 10.0
    """Seconds a client has to send a complete request head (408 after)."""
    keepalive_timeout: float = 75.0
    """Seconds an idle keep-alive HTTP connection is kept open (and a client that stopped
    reading our answers is dropped after)."""
    max_connections: int = 0
    """Open client connections in total, long-lived ones included (503 beyond); 0: derived
    from ``ulimit -n`` (the soft limit minus 100)."""
    max_connections_per_ip: int = 1000
    """Open connections per client address (429 beyond); 0: no per-address limit."""
    trusted_proxies: Sequence[str] = ()
    """Proxy addresses or networks (``10.0.0.0/8``) whose ``Forwarded`` / ``X-Forwarded-For``
    headers name the client; from any other peer those headers are ignored."""
    tls_cert: str | None = None
    """A PEM certificate chain: serve ``https://`` and ``wss://`` (ALPN ``h2`` and
    ``http/1.1``) instead of plain HTTP; reloaded on SIGHUP (``transports.tls``)."""
    tls_key: str | None = None
    """The private key of ``tls_cert`` (default: the key is in the ``tls_cert`` file)."""
    h2_max_streams: int = 100
    """Concurrent streams one HTTP/2 connection may open (SETTINGS_MAX_CONCURRENT_STREAMS);
    more are refused with REFUSED_STREAM (RFC 9113 §5.1.2)."""
    echo: bool = True
    """Serve the ``/echo`` WebSocket example."""
    clock: bool = True
    """Publish the time to ``clock_channel`` every second (the landing page's example)."""
    clock_channel: str = "clock"
    """The channel of the clock example."""
    demos: bool = False
    """The demo pages (``/demo/...``), their namespaces and simulated feeds; ``livehub serve``
    turns them on unless ``--production`` or the file configures its own namespaces."""
    demo_market_interval: float = 0.25
    """Seconds between two ticks of the demo's simulated market (0: no market)."""
    demo_match_minute: float = 1.0
    """Seconds per minute of the demo's simulated football matches (0: no matches)."""
    # -- operations (docs/operations.md) --
    metrics_token: str | None = None
    """Bearer token (or basic-auth password) of ``GET /metrics``; without one, metrics are
    open on a loopback host only (``--production``: never)."""
    log_format: str = "text"
    """``text`` or ``json`` (one JSON object per line)."""
    access_log: bool = True
    """One INFO line per HTTP answer and per connection end (logger ``livehub.access``)."""
    access_log_sample: float = 1.0
    """Fraction of successful requests and connection ends logged (refusals: always)."""
    drain_delay: float = 0.0
    """SIGTERM: seconds ``/ready`` answers 503 before new connections are refused
    (``--production``: 5)."""
    drain_window: float = 0.0
    """SIGTERM: seconds over which open connections are told to reconnect elsewhere, spread
    so a fleet does not stampede (``--production``: 10)."""
    drain_timeout: float = 10.0
    """SIGTERM: seconds from the signal until the process exits whatever is left
    (``--production``: 30)."""

    def __post_init__(self) -> None:
        if self.max_connections < 0 or self.max_connections_per_ip < 0:
            raise ConfigError("max_connections and max_connections_per_ip must be >= 0 "
                              "(0: automatic / no limit)")
        parse_networks(self.trusted_proxies)  # ConfigError for what is not an address
        check_write_delay(self.write_delay)
        if self.tls_key and not self.tls_cert:
            raise ConfigError("tls_key needs tls_cert (the certificate chain it belongs to)")
        if self.h2_max_streams < 1:
            raise ConfigError("h2_max_streams must be >= 1")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format must be text or json, not {self.log_format!r}")
        if not 0.0 <= self.access_log_sample <= 1.0:
            raise ConfigError("access_log_sample must be between 0 and 1")
        if min(self.drain_delay, self.drain_window, self.drain_timeout) < 0:
            raise ConfigError("drain_delay, drain_window and drain_timeout must be >= 0")


HEARTBEAT_SLICE = 2000
"""Connections a tick handles per loop turn.  A heartbeat is a ping or comment written (about
7 us with its ``send()``), so one turn over every connection would hold the loop for C x 7 us
(0.14 s for 20,000 connections, 7 s for a million in one process: publications wait that long
once per ``heartbeat_interval``); a slice is about 14 ms (issue 15, docs/capacity.md)."""


class LongLived(Protocol):
    """A long-lived connection the server keeps track of (heartbeats, drain)."""

    def heartbeat(self, now: float) -> None: ...

    def close(self, info: DisconnectInfo) -> None: ...


@dataclass(eq=False, slots=True)
class ServerContext:
    node: Node
    settings: ServerSettings
    flusher: Flusher
    connections: dict[LongLived, float] = field(default_factory=dict)
    """Live long-lived connections and when each opened (``time.monotonic``)."""
    started: float = 0.0
    compression: TokenBucket = field(default_factory=lambda: TokenBucket(0, 0, now=0.0))
    """The process-wide compression budget (``transports.compression``)."""
    auth: AuthSettings = field(default_factory=AuthSettings)
    verifier: TokenVerifier = field(default_factory=lambda: TokenVerifier(AuthSettings()))
    expiries: dict[LongLived, tuple[float, DisconnectInfo]] = field(default_factory=dict)
    """Connections whose credentials expire: the Unix time they do and the code to close with
    (see ``tick``)."""
    owners: dict[LongLived, str] = field(default_factory=dict)
    """The user of each long-lived connection a protocol registered with ``own`` (anonymous
    ones are not kept), so that disconnecting a user reaches every protocol's connections."""
    stats: TransportStats = field(default_factory=TransportStats)
    """Counters read by metrics, and the access log."""

    @classmethod
    def create(cls, node: Node, settings: ServerSettings,
               auth: AuthSettings | None = None) -> ServerContext:
        loop = asyncio.get_running_loop()
        now = loop.time()
        auth = auth or AuthSettings()
        stats = TransportStats(access_log=settings.access_log, sample=settings.access_log_sample)
        return cls(node, settings, Flusher(loop, write_delay=settings.write_delay), started=now,
                   stats=stats,
                   compression=TokenBucket(settings.ws_compress_global_rate,
                                           settings.ws_compress_global_rate, now=now), auth=auth,
                   verifier=TokenVerifier(auth))

    @property
    def hub(self) -> Hub:
        """The node's hub (local subscriptions and fan-out)."""
        return self.node.hub

    def expire(self, conn: LongLived, at: float | None,
               info: DisconnectInfo = Disconnect.EXPIRED) -> None:
        """Close ``conn`` with ``info`` (3005 connection expired, 3006 subscription expired)
        once Unix time ``at`` has passed."""
        if at is not None:
            self.expiries[conn] = (at, info)

    def own(self, conn: LongLived, user: str) -> None:
        """Record that ``conn`` belongs to ``user`` (nothing for an anonymous connection)."""
        if user:
            self.owners[conn] = user

    def disconnect_user(self, user: str, info: DisconnectInfo) -> int:
        """Close every live connection registered for ``user`` with ``info`` (the server API
        ``disconnect``); how many were closed."""
        closed = 0
        for conn, owner in list(self.owners.items()):
            if owner == user:
                del self.owners[conn]
                if conn in self.connections:
                    conn.close(info)
                    closed += 1
        return closed

    async def tick(self, now: float, wall: float) -> None:
        """The periodic work of every connection: heartbeats (loop time ``now``), and closing
        the ones whose credentials expired by Unix time ``wall`` (so expiry is exact to one
        heartbeat interval and costs no timer per connection).  The heartbeats go
        ``HEARTBEAT_SLICE`` connections per loop turn (see there)."""
        conns = list(self.connections)
        live = self.connections
        for start in range(0, len(conns), HEARTBEAT_SLICE):
            if start:
                await asyncio.sleep(0)  # the slice's pings are written; other work goes on
            for conn in conns[start:start + HEARTBEAT_SLICE]:
                if conn in live:  # not closed while an earlier slice waited
                    conn.heartbeat(now)
        for conn, (at, info) in list(self.expiries.items()):
            if conn not in self.connections:
                del self.expiries[conn]
            elif at <= wall:
                del self.expiries[conn]
                conn.close(info)
        for conn in [c for c in self.owners if c not in self.connections]:
            del self.owners[conn]
