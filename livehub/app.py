"""The HTTP application: routes, CORS, heartbeats, the built-in examples, start and drain.

This is the only module of ``livehub.server`` that knows every endpoint; it adapts requests to
the endpoint functions and owns the listening socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass, field
from functools import partial

from livehub import admin as admin_dashboard
from livehub.admin import AdminSettings
from livehub.codes import Disconnect, DisconnectInfo
from livehub.core.auth import AuthSettings
from livehub.core.node import Node
from livehub.demos import endpoints as demo_endpoints
from livehub.demos import feeds as demo_feeds
from livehub.errors import ConfigError, Forbidden, LivehubError, MethodNotAllowed, NotFound
from livehub.ops import metrics
from livehub.ops.health import Drain, health_endpoint, ready_endpoint
from livehub.protocols.api_input import check_api_key
from livehub.protocols.centrifugo import CentrifugoSettings, install
from livehub.protocols.centrifugo.node import CentrifugoNode
from livehub.protocols.mercure import MercureAuthSettings, MercureHub, MercureSettings
from livehub.protocols.mercure import install as install_mercure
from livehub.protocols.plain import pages
from livehub.protocols.plain.poll import poll_endpoint
from livehub.protocols.plain.streams import sse_endpoint, stream_endpoint
from livehub.protocols.plain.ws import channel_endpoint, echo_endpoint
from livehub.transports.admission import Admission, ConnectionLimits, Lease
from livehub.transports.context import ServerContext, ServerSettings
from livehub.transports.h2 import Http2Connection, switch
from livehub.transports.http import HttpConnection, HttpLimits, Request, Response
from livehub.transports.routing import Endpoint, Exchange, Handler, Precheck
from livehub.transports.tls import ServerTls
from livehub.wire.payload import PayloadKind

log = logging.getLogger(__name__)


def is_api(path: str) -> bool:
    """The server API (``/api``, ``/api/<method>``) and the admin dashboard (``/admin...``):
    never readable cross-origin."""
    return (path == "/api" or path.startswith("/api/") or path == "/admin"
            or path.startswith("/admin/"))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_settings(settings: ServerSettings) -> None:
    """Refuse settings that combine into a hole (``ConfigError``: the server does not start)."""
    origins = settings.allowed_origins
    if settings.cors_credentials and "*" in origins:
        raise ConfigError("cors_credentials needs explicit allowed_origins: credentials are "
                          "never allowed for any origin (*)")
    if settings.cors_credentials and "null" in origins:
        raise ConfigError("cors_credentials with the 'null' origin is refused: any sandboxed "
                          "page or local file sends it")
    if settings.insecure_api and not is_loopback(settings.host):
        raise ConfigError(f"insecure_api is only allowed on a loopback address (127.0.0.1, ::1),"
                          f" not on {settings.host}")


@dataclass(eq=False)
class App:
    """Routes requests to endpoints and runs the periodic work of the server."""

    ctx: ServerContext
    routes: dict[str, tuple[frozenset[str], Endpoint]] = field(default_factory=dict)
    prechecks: dict[str, Precheck] = field(default_factory=dict)
    admission: Admission | None = None
    _server: asyncio.AbstractServer | None = None
    _http: set[HttpConnection | Http2Connection] = field(default_factory=set)
    """HTTP connections not (yet) taken over and HTTP/2 connections, so that ``stop`` can
    close idle keep-alives."""
    tls: ServerTls | None = None
    """The certificate, when the server speaks TLS (``tls_cert``); ``reload_tls`` on SIGHUP."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    centrifugo: CentrifugoNode | None = None
    drain: Drain = field(default_factory=Drain)
    """Readiness and the SIGTERM drain (``livehub.ops.health``)."""
    started_at: float = field(default_factory=time.time)
    shutdown_info: DisconnectInfo = Disconnect.SHUTDOWN
    mercure: MercureHub | None = None

    @classmethod
    def create(cls, node: Node, settings: ServerSettings, *,
               centrifugo: CentrifugoSettings | None = None,
               auth: AuthSettings | None = None,
               admin: AdminSettings | None = None, demo_secret: str | None = None,
               production: bool = False,
               mercure: MercureSettings | None = None,
               mercure_auth: MercureAuthSettings | None = None) -> App:
        check_settings(settings)
        if settings.demos:  # the demo login makes tokens only with a secret of its own
            auth, demo_secret = demo_endpoints.with_demo_secret(auth or AuthSettings(),
                                                                demo_secret)
        app = cls(ServerContext.create(node, settings, auth))
        get = frozenset({"GET", "HEAD"})
        app.route("/events", get, sse_endpoint)
        app.route("/stream", get, stream_endpoint)
        app.route("/poll", get, poll_endpoint)
        app.route("/ws", get, channel_endpoint)
        # Centrifugo client transports and the server API (/api/<method>, incl. publish)
        app.centrifugo = install(app, centrifugo or CentrifugoSettings())
        if mercure is not None and mercure.mercure:
            # the Mercure hub at /.well-known/mercure (docs/mercure.md)
            app.mercure = install_mercure(app, mercure, mercure_auth)
        app.route("/health", get, health_endpoint)
        app.route("/ready", get, ready_endpoint(app.drain))
        app.route("/metrics", get, metrics.endpoint(
            app, token=settings.metrics_token, api_key=check_api_key,
            open_=not production and is_loopback(settings.host)))
        if admin is not None:
            admin_dashboard.install(app, app.centrifugo, admin)
        if settings.echo:
            app.route("/echo", get, echo_endpoint)
        for path in pages.pages(demos=settings.demos):
            app.route(path, get, pages.page_endpoint)
        if settings.demos:
            for path, methods, endpoint in demo_endpoints.routes(demo_secret):
                app.route(path, methods, endpoint)
        return app

    def route(self, path: str, methods: frozenset[str], endpoint: Endpoint, *,
              precheck: Precheck | None = None) -> None:
        self.routes[path] = (methods, endpoint)
        if precheck is not None:
            self.prechecks[path] = precheck

    def find(self, request: Request) -> Handler:
        if request.method == "OPTIONS":
            return self._preflight
        found = self.routes.get(request.path)
        if found is None:
            found = self._prefix_route(request.path)
        if found is None:
            raise NotFound(f"no such endpoint: {request.path}")
        methods, endpoint = found
        if request.method not in methods:
            raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}",
                                   allow=", ".join(sorted(methods)))
        return partial(endpoint, self.ctx)

    def _prefix_route(self, path: str) -> tuple[frozenset[str], Endpoint] | None:
        """The route ``<prefix>/*`` that serves ``path`` (the longest prefix wins)."""
        best: tuple[frozenset[str], Endpoint] | None = None
        length = 0
        for pattern, found in self.routes.items():
            if pattern.endswith("/*") and path.startswith(pattern[:-1]) and len(pattern) > length:
                best, length = found, len(pattern)
        return best

    def precheck(self, request: Request) -> None:
        """Judge a request from its head (route, method, the route's precheck): what a
        client that sent ``Expect: 100-continue`` learns before it sends the body."""
        self.find(request)
        check = self.prechecks.get(request.path)
        if check is not None:
            check(self.ctx, request)

    def extra_headers(self, request: Request) -> list[tuple[str, str]]:
        """Headers every answer to ``request`` gets: CORS, and the Mercure discovery link on
        the pages livehub serves."""
        headers = self.cors_headers(request)
        if self.mercure is not None and request.path in pages.PAGES:
            headers.extend(self.mercure.discovery)
        return headers

    # -- CORS ----------------------------------------------------------------------------------

    def cors_headers(self, request: Request) -> list[tuple[str, str]]:
        """CORS headers of a response: the exact origin when listed (with credentials when
        configured), ``*`` (never with credentials) when any origin may read, nothing for the
        server API or other origins."""
        origin = request.headers.get("origin")
        if origin is None or is_api(request.path):
            return []
        allowed = self.ctx.settings.allowed_origins
        if origin in allowed and origin != "*":
            headers = [("access-control-allow-origin", origin), ("vary", "Origin")]
            if self.ctx.settings.cors_credentials:
                headers.append(("access-control-allow-credentials", "true"))
            return headers
        if "*" in allowed:
            return [("access-control-allow-origin", "*")]
        return []

    async def _preflight(self, request: Request, http: Exchange) -> Response:
        if request.path not in self.routes and self._prefix_route(request.path) is None:
            raise NotFound(f"no such endpoint: {request.path}")
        if is_api(request.path):
            raise Forbidden("the server API is not available to cross-origin pages")
        response = Response(204, content_type="text/plain")
        if request.headers.get("origin") and self.cors_headers(request):
            response.headers += [
                ("access-control-allow-methods", "GET, POST, OPTIONS"),
                ("access-control-allow-headers",
                 "Content-Type, Authorization, Last-Event-ID"),
                ("access-control-max-age", "600")]
        return response

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, sock: socket.socket | None = None) -> None:
        """Connect the node, listen (on ``sock`` if given) and start the periodic work."""
        await self.ctx.node.start()
        await self.listen(sock)
        self.start_tasks()

    async def listen(self, sock: socket.socket | None = None) -> None:
        """Serve HTTP on ``sock`` (or on the settings' host and port); the node must be
        started already (an embedded hub listens next to its ASGI mount)."""
        loop = asyncio.get_running_loop()
        settings = self.ctx.settings
        limits = HttpLimits(max_body=settings.max_body, head_timeout=settings.head_timeout,
                            keepalive_timeout=settings.keepalive_timeout)
        self.admission = admission = Admission(ConnectionLimits(
            max_connections=settings.max_connections,
            max_connections_per_ip=settings.max_connections_per_ip,
            trusted_proxies=settings.trusted_proxies))
        log.debug("connection budgets: %d in total, %s per client address",
                  admission.max_total, admission.max_per_ip or "no limit")

        def to_http2(transport: asyncio.Transport, lease: Lease | None,
                     refused: Response | None, data: bytes) -> None:
            conn = Http2Connection(
                self.find, max_head=limits.max_head, max_url=limits.max_url,
                max_body=limits.max_body, head_timeout=limits.head_timeout,
                keepalive_timeout=limits.keepalive_timeout,
                max_streams=settings.h2_max_streams, extra_headers=self.cors_headers,
                on_done=self._http.discard, lease=lease, refused=refused,
                on_answer=self.ctx.stats.answered)
            self._http.add(conn)
            switch(conn, transport, data)

        def factory() -> HttpConnection:
            conn = HttpConnection(self.find, limits=limits, extra_headers=self.extra_headers,
                                  on_done=self._http.discard, precheck=self.precheck,
                                  admission=admission, http2=to_http2,
                                  on_answer=self.ctx.stats.answered)
            self._http.add(conn)
            return conn

        context = handshake_timeout = None
        if settings.tls_cert:
            self.tls = ServerTls.load(settings.tls_cert, settings.tls_key)
            context = self.tls.context
            # a handshake that stalls is dropped after the time a request head gets
            handshake_timeout = settings.head_timeout
        if sock is not None:
            self._server = await loop.create_server(
                factory, sock=sock, backlog=4096, ssl=context,
                ssl_handshake_timeout=handshake_timeout)
        else:
            self._server = await loop.create_server(
                factory, settings.host, settings.port, backlog=4096, reuse_address=True,
                ssl=context, ssl_handshake_timeout=handshake_timeout)

    def start_tasks(self) -> None:
        """Start the periodic work: heartbeats and expiry of every connection, the clock, the
        demos' simulated feeds."""
        loop = asyncio.get_running_loop()
        settings = self.ctx.settings
        self._tasks.append(loop.create_task(self._heartbeats()))
        if settings.clock:
            self._tasks.append(loop.create_task(self._clock()))
        if settings.demos and settings.demo_market_interval > 0:
            self._tasks.append(loop.create_task(
                demo_feeds.run_market(self.ctx.node, settings.demo_market_interval)))
        if settings.demos and settings.demo_match_minute > 0:
            self._tasks.append(loop.create_task(
                demo_feeds.run_matches(self.ctx.node, settings.demo_match_minute)))

    def stop_listening(self) -> None:
        """Stop accepting and close idle HTTP connections of the listener; the node, its
        long-lived connections and the periodic work go on (``stop`` ends those)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for http in list(self._http):
            http.shutdown()

    def reload_tls(self) -> None:
        """Read the certificate and key again (SIGHUP): new connections use them; if they
        cannot serve, say why and keep the running ones."""
        if self.tls is None:
            log.info("SIGHUP: no TLS certificate to reload (tls_cert is not set)")
            return
        error = self.tls.reload()
        if error is not None:
            log.error("TLS certificate not reloaded, the previous one stays: %s", error.message)
        else:
            log.info("TLS certificate reloaded from %s", self.tls.cert)

    @property
    def port(self) -> int:
        sockets = getattr(self._server, "sockets", None)
        assert sockets, "server not started"
        port: int = sockets[0].getsockname()[1]
        return port

    @property
    def http_connection_count(self) -> int:
        """HTTP connections not taken over (being answered or idle keep-alive)."""
        return len(self._http)

    def stop_accepting(self) -> None:
        """Refuse new connections (close the listening socket) and close idle keep-alive
        connections; requests being answered get their answer, then their connection closes."""
        if self._server is not None:
            self._server.close()
        for http in list(self._http):
            http.shutdown()

    async def stop(self, drain: float = 2.0) -> None:
        """Stop accepting, tell every connection we are going away, wait up to ``drain``
        seconds for them to close (then drop the rest), close the broker.

        ``Server.wait_closed`` cannot be the wait: uvloop's (and CPython's before 3.12)
        returns at once, with accepted connections still open.
        """
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for http in list(self._http):
            http.shutdown()
        if self.centrifugo is not None:
            self.centrifugo.close()
        for conn in list(self.ctx.connections):
            conn.close(Disconnect.SHUTDOWN)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain
        while (self._http or self.ctx.connections) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for http in list(self._http):
            http.abort()
        for conn in list(self.ctx.connections):
            abort = getattr(getattr(conn, "transport", None), "abort", None)
            if callable(abort):
                abort()
        await asyncio.sleep(0)  # let the loop release the closed sockets
        await self.ctx.node.close()

    async def _heartbeats(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.ctx.settings.heartbeat_interval
        while True:
            await asyncio.sleep(interval)
            await self.ctx.tick(loop.time(), time.time())
            if self.admission is not None:
                self.admission.sweep()

    async def _clock(self) -> None:
        """The built-in ``clock`` channel: the ISO time, once a second."""
        node = self.ctx.node
        channel = self.ctx.settings.clock_channel
        while True:
            now = datetime.datetime.now(datetime.UTC)
            try:
                await node.publish(channel, now.isoformat(timespec="seconds").encode(),
                                  PayloadKind.TEXT)
            except LivehubError as exc:
                log.warning("clock publish failed: %s", exc.message)
            # wake just after the next wall-clock second (not the loop's monotonic second,
            # whose phase is arbitrary): each tick then shows the next second, none twice
            await asyncio.sleep(1.0 - (time.time() % 1.0) + 0.005)
