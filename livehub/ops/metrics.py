"""``GET /metrics``: Prometheus text format, every value read at scrape time.

Nothing here runs on the delivery path.  The code keeps plain ``int`` counters where things
happen (the hub per publication and per variant group, a connection per flush, the HTTP layer
per answer, the node per broker operation); ``HubCollector`` reads them when Prometheus
scrapes, so a scrape costs one pass over the live connections and the fan-out pays nothing
for metrics (``docs/operations.md`` has the figures).

Access: with ``metrics_token`` set, a request needs ``Authorization: Bearer <token>`` or basic
auth with the token as password (Prometheus ``authorization`` / ``basic_auth``), or the server
API key; else 401.  Without a token, metrics are open when the server listens on a loopback
address only (development), and refused (401) otherwise and always with ``--production``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections import Counter
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from livehub import ratelog
from livehub.codes import Disconnect
from livehub.core.opstats import BUCKETS
from livehub.errors import Unauthorized
from livehub.ops.health import Server
from livehub.transports.context import ServerContext
from livehub.transports.messages import Request, Response
from livehub.transports.routing import Endpoint, Exchange

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HTTP_REFUSALS = {413: "body", 408: "timeout", 431: "head", 414: "url"}
"""``livehub_http_refused_total`` reasons by status (``docs/limits.md``)."""
WEBSOCKETS = frozenset({"websocket", "uni_websocket"})
INTERNAL_ERRORS = {"websocket-handler": "websocket", "http-handler": "http",
                   "centrifugo-command": "centrifugo", "outgoing-failed": "outgoing"}
"""``livehub_internal_errors_total`` by the rate-limited log kind that reports them."""
SUBSCRIPTION_FAILURES = ("stream-subscribe", "subscription-refused", "server-subscribe",
                         "presence-add")


class HubCollector(Collector):
    """The livehub metrics of one ``App``, read from its counters at scrape time."""

    def __init__(self, app: Server) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        app = self.app
        ctx = app.ctx
        yield from connection_metrics(ctx)
        yield from core_metrics(ctx)
        yield from http_metrics(ctx, app)
        yield from broker_metrics(ctx, app)


def connection_metrics(ctx: ServerContext) -> Iterator[Metric]:
    stats = ctx.stats
    live: Counter[tuple[str, ...]] = Counter()
    messages: Counter[tuple[str, ...]] = Counter()
    sent: Counter[tuple[str, ...]] = Counter()
    for gone, totals in stats.ended_totals.items():
        messages[gone] += totals.messages
        sent[gone] += totals.bytes
    for conn in ctx.connections:
        key = (getattr(conn, "protocol", "other"), getattr(conn, "transport_name", "other"))
        live[key] += 1
        messages[key] += getattr(conn, "sent_messages", 0)
        sent[key] += getattr(conn, "sent_bytes", 0)
    labels = ["protocol", "transport"]
    gauge = GaugeMetricFamily("livehub_connections", "Open long-lived connections (SSE, "
                              "HTTP streaming, WebSocket)", labels=labels)
    opened = CounterMetricFamily("livehub_connections_opened", "Long-lived connections opened",
                                 labels=labels)
    for pair in sorted(set(live) | set(stats.ended_totals)):
        gauge.add_metric(list(pair), live[pair])
        ended = stats.ended_totals.get((pair[0], pair[1]))
        opened.add_metric(list(pair), live[pair] + (0 if ended is None else ended.connections))
    yield gauge
    yield opened
    yield _counter("livehub_messages_sent", "Messages written to long-lived connections "
                   "(publications, replies, heartbeats)", labels, messages)
    yield _counter("livehub_sent_bytes", "Bytes written to long-lived connections",
                   labels, sent)
    yield _counter("livehub_disconnects", "Long-lived connections ended, by close or "
                   "disconnect code (0: the peer went away without one)",
                   [*labels, "code"], {(p, t, str(c)): n for (p, t, c), n in stats.ends.items()})
    slow = sum(n for (_, _, code), n in stats.ends.items() if code == Disconnect.SLOW.code)
    yield CounterMetricFamily("livehub_slow_consumers", "Subscribers closed with 3008 (outgoing "
                              "buffer full)", value=slow)
    ws: Counter[tuple[str, ...]] = Counter()
    for (_, transport, code), n in stats.ends.items():
        if transport in WEBSOCKETS:
            ws[(str(code),)] += n
    yield _counter("livehub_ws_closed", "WebSocket connections ended, by close code (every "
                   "protocol)", ["code"], ws)


def core_metrics(ctx: ServerContext) -> Iterator[Metric]:
    hub = ctx.hub
    node = ctx.node
    yield GaugeMetricFamily("livehub_channels", "Channels with local subscribers",
                            value=hub.channel_count())
    yield GaugeMetricFamily("livehub_subscriptions", "Local subscriptions (per channel)",
                            value=hub.subscription_count())
    yield CounterMetricFamily("livehub_publications", "Publications fanned out by this node",
                              value=hub.publications)
    yield CounterMetricFamily("livehub_deliveries", "Publications written to subscribers "
                              "(fan-out and catch-up)", value=hub.deliveries)
    yield CounterMetricFamily("livehub_resets", "Channels whose continuity was lost (local "
                              "subscribers told to reset)", value=hub.resets)
    yield CounterMetricFamily("livehub_resumes", "Subscriptions that resumed from a position",
                              value=hub.resumes)
    yield CounterMetricFamily("livehub_resume_replayed_publications", "Publications replayed "
                              "to resuming subscriptions", value=hub.resumed_publications)
    yield CounterMetricFamily("livehub_resumes_reset", "Resumes told that history could not "
                              "cover the gap (reset)", value=hub.resumes_reset)
    yield CounterMetricFamily("livehub_resumes_refused", "Resumes over the resume budget "
                              "(answered with a reset)", value=hub.resumes_over_budget)
    yield _counter("livehub_publications_refused", "Publications refused by validation",
                   ["reason"], {(r,): n for r, n in node.publications_refused.items()})
    hits = node.limit_hits
    yield _counter("livehub_limit_hits", "Requests refused by a budget of docs/limits.md "
                   "(applied by a protocol)", ["budget"], {(b,): n for b, n in hits.items()})
    yield _counter("livehub_client_publications_refused", "Client publications refused",
                   ["reason"], {("rate",): hits["client_publish_rate"]})
    yield _counter("livehub_api_refused", "Server API calls refused by a budget", ["reason"],
                   {("broadcast",): hits["api_max_broadcast"],
                    ("batch",): hits["api_max_batch"]})
    yield _counter("livehub_subscriptions_refused", "Subscriptions refused by the channel "
                   "budget", ["reason"], {("channels",): hits["max_channels"]
                                          + hits["client_channel_limit"]})
    seen = ratelog.SEEN
    yield _counter("livehub_log_events", "Occurrences of each kind of rate-limited log line "
                   "(logged or suppressed)", ["kind"], {(k,): n for k, n in seen.items()})
    yield _counter("livehub_internal_errors", "Unexpected errors (a traceback in the log)",
                   ["where"], {(where,): seen[kind] for kind, where in INTERNAL_ERRORS.items()})
    yield CounterMetricFamily("livehub_client_publications_failed", "Client publications that "
                              "failed after they were accepted (broker unavailable)",
                              value=seen["client-publication"])
    yield CounterMetricFamily("livehub_subscriptions_failed", "Subscriptions that failed "
                              "(broker unavailable) or were refused after connect",
                              value=sum(seen[kind] for kind in SUBSCRIPTION_FAILURES))
    broker = node.broker
    evictions = getattr(broker, "evictions", None)
    if evictions is not None:  # the memory broker's history budgets
        yield CounterMetricFamily("livehub_history_evictions", "Publications evicted from "
                                  "history by history_memory or a namespace budget",
                                  value=evictions)
        yield GaugeMetricFamily("livehub_history_bytes", "Bytes of history held (payloads "
                                "plus per-entry overhead)", value=getattr(broker,
                                                                          "history_bytes", 0))
        yield GaugeMetricFamily("livehub_history_publications", "Publications held in history",
                                value=getattr(broker, "stored", 0))
        channel_count = getattr(broker, "channel_count", None)
        if callable(channel_count):
            yield GaugeMetricFamily("livehub_channels_stored", "Channels with state stored in "
                                    "the broker", value=channel_count())


def http_metrics(ctx: ServerContext, app: Server) -> Iterator[Metric]:
    stats = ctx.stats
    yield _counter("livehub_http_responses", "HTTP answers by status (refusals included; "
                   "streams and WebSockets count as connections)", ["status"],
                   {(str(s),): n for s, n in stats.answers.items()})
    yield _counter("livehub_http_refused", "Requests refused by the HTTP layer's budgets",
                   ["reason"], {(reason,): stats.answers[status]
                                for status, reason in HTTP_REFUSALS.items()})
    refused = Counter(stats.auth_refused)
    refused.update(ctx.verifier.refused)
    yield _counter("livehub_auth_refused", "Credentials refused, by reason", ["reason"],
                   {(r,): n for r, n in refused.items()})
    yield GaugeMetricFamily("livehub_http_connections", "HTTP connections not taken over "
                            "(requests, keep-alive)", value=app.http_connection_count)
    admission = app.admission
    if admission is not None:
        yield GaugeMetricFamily("livehub_sockets", "Client sockets counted by the connection "
                                "budget", value=admission.total)
        yield GaugeMetricFamily("livehub_sockets_max", "The connection budget in total "
                                "(max_connections)", value=admission.max_total)
        yield _counter("livehub_connections_refused", "Connections refused by a connection "
                       "budget", ["reason"], {("total",): admission.refused["total"],
                                              ("per_ip",): admission.refused["per_ip"]})
    yield GaugeMetricFamily("livehub_draining", "1 while the server drains (SIGTERM)",
                            value=1 if app.drain.draining else 0)
    yield GaugeMetricFamily("livehub_start_time_seconds", "Unix time the server started",
                            value=app.started_at)


def broker_metrics(ctx: ServerContext, app: Server) -> Iterator[Metric]:
    ops = ctx.node.ops
    hist = HistogramMetricFamily("livehub_broker_operation_seconds", "Latency of broker "
                                 "operations awaited by the node", labels=["op"])
    for op, latency in sorted(ops.latency.items()):
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for bound, n in zip((*BUCKETS, float("inf")), latency.counts, strict=True):
            cumulative += n
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        hist.add_metric([op], buckets, latency.total)
    yield hist
    yield _counter("livehub_broker_errors", "Broker operations that failed", ["op", "error"],
                   {(op, error): n for (op, error), n in ops.errors.items()})
    yield GaugeMetricFamily("livehub_broker_up", "1 when the broker is reachable (as /ready "
                            "last saw it)", value=1 if app.drain.broker_up else 0)
    reconnects = getattr(ctx.node.broker, "reconnects", None)
    if reconnects is not None:
        yield CounterMetricFamily("livehub_redis_reconnects", "Times the Redis pub/sub "
                                  "connection was re-established", value=reconnects)


def _counter(name: str, documentation: str, labels: list[str],
             values: Mapping[tuple[str, ...], int]) -> CounterMetricFamily:
    """A counter family with one sample per labelled value."""
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def registry_for(app: Server) -> CollectorRegistry:
    """A registry of this app's metrics and the process's (CPU, memory, descriptors)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(app))
    ProcessCollector(registry=registry)
    return registry


def check_access(ctx: ServerContext, request: Request, *, token: str | None, open_: bool,
                 api_key: Callable[[ServerContext, Request], None]) -> None:
    """The metrics access rule (module docstring); raises ``Unauthorized`` (401)."""
    if token is None and open_:
        return
    given = bearer_or_password(request.headers.get("authorization", ""))
    if token is not None and given is not None and hmac.compare_digest(given.encode(),
                                                                       token.encode()):
        return
    if "x-api-key" in request.headers:
        api_key(ctx, request)  # raises Unauthorized when wrong
        return
    ctx.stats.auth_refused["metrics"] += 1
    if token is None:
        raise Unauthorized("metrics need credentials: set metrics_token (LIVEHUB_METRICS_TOKEN)"
                           " and send it as a Bearer token, or send the API key")
    raise Unauthorized("metrics need the metrics token (Authorization: Bearer <token>)")


def bearer_or_password(header: str) -> str | None:
    """The token of ``Bearer <token>``, or the password of ``Basic <user:password>``."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def endpoint(app: Server, *, token: str | None, open_: bool,
             api_key: Callable[[ServerContext, Request], None]
             ) -> Endpoint:
    """The ``/metrics`` handler of ``app`` (a coroutine function for the router)."""
    registry = registry_for(app)

    async def metrics_endpoint(ctx: ServerContext, request: Request,
                               http: Exchange) -> Response:
        check_access(ctx, request, token=token, open_=open_, api_key=api_key)
        return Response(200, generate_latest(registry), CONTENT_TYPE,
                        headers=[("cache-control", "no-store")])

    return metrics_endpoint
