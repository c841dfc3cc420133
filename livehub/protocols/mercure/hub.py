"""``GET`` and ``POST /.well-known/mercure``: Mercure subscribers and publishers on the Node.

Subscribing: the selectors (``topic`` of the 0.x generation, ``match``/``match_urlpattern`` of
1.0; any other ``match*`` parameter is refused with 400) and the subscriber's grant pick an
interned ``MercureVariant``; the stream follows the journal channel through ``Node.subscribe``
from the position ``resume.resolve`` found, on the transports' one ``StreamConnection``
(heartbeats, ``retry:``, the slow-consumer rule, the goodbye), as ``/events`` does.

Publishing: the form becomes an ``Update``; the publisher's grant must allow every topic; each
topic's channel (``topics.TopicMap``) gets the data as an ordinary publication (so ``/events``,
``/ws`` and Centrifugo subscribers of that channel receive it), validated for all channels
before any is stored, and the journal gets one entry with every topic, so a Mercure subscriber
receives the update once however many of its topics it matches.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import uuid
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlsplit

from livehub.codes import Disconnect, DisconnectInfo
from livehub.core.journal import Journal, encode_entry
from livehub.core.presence import ClientInfo
from livehub.errors import BadRequest, ConfigError, Forbidden, LivehubError, NotFound
from livehub.protocols.mercure.resume import LOST, resolve
from livehub.protocols.mercure.selectors import SelectorSet, compile_selectors
from livehub.protocols.mercure.settings import MercureSettings
from livehub.protocols.mercure.subscriptions import Subscriptions, new_subscriber_id
from livehub.protocols.mercure.tokens import MercureAuthorizer, MercureAuthSettings
from livehub.protocols.mercure.topics import TopicMap
from livehub.protocols.mercure.update import KIND, check_text, parse_form, position_id
from livehub.protocols.mercure.variant import mercure_variant
from livehub.ratelog import RateLimitedLog
from livehub.transports.context import ServerContext
from livehub.transports.http import Request, Response
from livehub.transports.routing import Exchange
from livehub.transports.stream import StreamConnection, StreamFraming, open_stream
from livehub.wire import sse

log = logging.getLogger(__name__)
rlog = RateLimitedLog(log)

HUB_PATH = "/.well-known/mercure"
SELECTOR_PARAMS = {"topic": "topic", "match": "match", "match_exact": "match",
                   "matchExact": "match", "match_urlpattern": "match_urlpattern",
                   "matchURLPattern": "match_urlpattern"}
"""Query parameters that carry selectors, and the selector kind of each."""
_HEADER_SAFE = re.compile(r"[\x21-\x7e]{1,1024}")


class MercureConnection(StreamConnection):
    """A Mercure subscriber's stream.  Updates its selectors do not match are encoded by the
    variant as ``b""``, which the hub writes to nobody (``core.hub``), so this class adds no
    work per delivery."""

    __slots__ = ()


class TrackedConnection(MercureConnection):
    """A Mercure stream kept in the active subscriptions (``mercure_subscriptions``)."""

    __slots__ = ("_info", "_subscriptions")

    def __init__(self, ctx: ServerContext, transport: asyncio.Transport, framing: StreamFraming,
                 subscriptions: Subscriptions, info: ClientInfo) -> None:
        super().__init__(ctx, transport, framing)
        self._subscriptions = subscriptions
        self._info = info
        _spawn(subscriptions.opened(info))

    def heartbeat(self, now: float) -> None:
        super().heartbeat(now)
        _spawn(self._subscriptions.refresh(self._info))

    def on_closed(self) -> None:
        super().on_closed()
        _spawn(self._subscriptions.closed(self._info))


_tasks: set[asyncio.Task[None]] = set()


def _spawn(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` without awaiting it; a failure is logged, rate-limited."""
    task = asyncio.get_running_loop().create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_done)


def _done(task: asyncio.Task[None]) -> None:
    _tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        rlog.warning("mercure-subscriptions", "active subscription bookkeeping failed: %s",
                     task.exception())


def _goodbye(info: DisconnectInfo) -> bytes:
    body = json.dumps({"code": info.code, "reason": info.reason,
                       "reconnect": info.reconnect}).encode()
    return sse.event_block(sse.data_lines(body), event="disconnect")


@functools.cache
def sse_framing(retry_ms: int) -> StreamFraming:
    """The SSE framing of a ``retry`` setting, one object shared by every Mercure stream."""
    return StreamFraming(content_type="text/event-stream; charset=utf-8", chunked=False,
                         goodbye=_goodbye, heartbeat=sse.comment("heartbeat"),
                         preamble=sse.retry(retry_ms))


class MercureHub:
    """The Mercure endpoints of one server and what they share."""

    def __init__(self, ctx: ServerContext, settings: MercureSettings,
                 auth: MercureAuthSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.topics = TopicMap(settings.mercure_topics, settings.mercure_namespace)
        self.journal = Journal(settings.mercure_journal, self.topics.namespaces)
        for ns in self.topics.namespaces:
            if ns and ns not in ctx.node.namespaces.namespaces:
                raise ConfigError(f"the Mercure hub maps topics to namespace {ns!r}, which is "
                                  f"not configured: add [namespaces.{ns}] (or --no-mercure)")
        try:
            ctx.node.add_journal(self.journal)
        except LivehubError as exc:
            raise ConfigError(f"mercure_journal: {exc.message} (configure its namespace, "
                              "or --no-mercure)") from None
        self.discovery: tuple[tuple[str, str], ...] = (
            (("link", f'<{settings.mercure_hub_url}>; rel="mercure"'),)
            if settings.mercure_discovery else ())
        """The discovery header (Mercure "Discovery") the app adds to the pages it serves."""
        self.subscriptions = (
            Subscriptions(ctx.node, self.journal, ttl=3 * ctx.settings.heartbeat_interval + 1)
            if settings.mercure_subscriptions else None)
        self.authorizer = MercureAuthorizer.for_context(ctx, auth)

    async def endpoint(self, ctx: ServerContext, request: Request,
                       http: Exchange) -> Response | None:
        if request.method == "POST":
            return await self.publish(ctx, request, http)
        return await self.subscribe(ctx, request, http)

    # -- subscribing -----------------------------------------------------------------------

    def selectors(self, request: Request) -> list[tuple[str, str]]:
        """The (kind, text) selectors of a subscribe request, deduplicated; 400 for a bad one."""
        found: dict[tuple[str, str], None] = {}
        for name, values in request.query.items():
            kind = SELECTOR_PARAMS.get(name)
            if kind is None:
                if name.lower().startswith("match"):
                    raise BadRequest(f"unknown selector parameter {name[:40]!r} (match, "
                                     "match_urlpattern, topic)")
                continue
            for text in values:
                check_text(text, "a selector")
                found[(kind, text)] = None
        if not found:
            raise BadRequest("at least one topic, match or match_urlpattern parameter is "
                             "required")
        if len(found) > self.settings.mercure_max_selectors:
            raise BadRequest(f"at most {self.settings.mercure_max_selectors} selectors")
        return sorted(found)

    async def subscribe(self, ctx: ServerContext, request: Request,
                        http: Exchange) -> Response | None:
        """``GET /.well-known/mercure?topic=...`` (or ``match=``...): an SSE stream of updates."""
        pairs = self.selectors(request)
        base = f"http://{request.headers.get('host') or 'localhost'}{HUB_PATH}"
        selectors = SelectorSet.of(compile_selectors(
            pairs, base=base, limit=self.settings.mercure_max_selectors))
        grant = await self.authorizer.subscriber(request)
        framing = sse_framing(ctx.settings.sse_retry_ms)
        if request.method == "HEAD":
            return framing.head_response()
        text = (request.headers.get("last-event-id") or request.arg("last_event_id")
                or request.arg("lastEventID"))
        channel = self.journal.channel
        resume = await resolve(ctx.node, channel, text)
        header = resume.header
        if not _HEADER_SAFE.fullmatch(header):
            # an id that cannot be a header value (non-ASCII): the same place, as a position
            found = resume.since
            header = "earliest" if found is None or found == LOST else position_id(found)
        variant = mercure_variant(channel, self.topics,
                                  (tuple(pairs), grant.subscribe, grant.principal.insecure),
                                  selectors, grant)
        subs = self.subscriptions
        if subs is None:
            conn: MercureConnection = open_stream(
                http, request, framing, lambda transport: MercureConnection(ctx, transport,
                                                                            framing),
                headers=[("last-event-id", header)])
        else:
            info = subs.info(str(uuid.uuid4()), grant.principal.user or new_subscriber_id(),
                             [text for _, text in pairs], grant.payload)
            conn = open_stream(
                http, request, framing, lambda transport: TrackedConnection(
                    ctx, transport, framing, subs, info),
                headers=[("last-event-id", header)])
        ctx.expire(conn, grant.expire_at)  # an expired token ends the stream (3005)
        since = None if resume.since is None else {channel: resume.since}
        try:
            conn.subscription = await ctx.node.subscribe(conn, variant, [channel], since=since)
        except LivehubError as exc:
            rlog.warning("mercure-subscribe", "mercure subscribe failed: %s", exc.message)
            conn.close(Disconnect.SERVER_ERROR)
            return None
        if conn.closed:
            ctx.node.unsubscribe(conn.subscription)
        return None

    # -- publishing --------------------------------------------------------------------------

    async def publish(self, ctx: ServerContext, request: Request,
                      http: Exchange) -> Response:
        """``POST /.well-known/mercure``: publish an update; its id as ``text/plain``."""
        grant = await self.authorizer.publisher(request)
        update = parse_form(request.body, request.headers.get("content-type"),
                            max_topics=self.settings.mercure_max_topics)
        for topic in update.topics:
            path = urlsplit(topic).path
            if path == HUB_PATH or path.startswith(HUB_PATH + "/"):
                raise Forbidden(f"topics under {HUB_PATH} are the hub's own")
        grant.check_publish(update.topics)
        node = ctx.node
        channels = list(dict.fromkeys(self.topics.channel(topic, private=update.private)
                                      for topic in update.topics))
        for channel in channels:
            node.check_publication(channel, update.data, KIND, event=update.type)
        await asyncio.gather(*(node.publish(channel, update.data, KIND, event=update.type,
                                            journal=False) for channel in channels))
        entry = encode_entry(channels[0], update.data, KIND, event=update.type,
                             entry_id=update.update_id, meta=update.meta())
        await node.append(self.journal, entry)
        assert update.update_id is not None
        return Response(200, update.update_id.encode())

    # -- active subscriptions ---------------------------------------------------------------

    async def subscriptions_endpoint(self, ctx: ServerContext, request: Request,
                                     http: Exchange) -> Response:
        """``GET /.well-known/mercure/subscriptions[/{topic}[/{subscriber}]]`` (JSON-LD)."""
        subs = self.subscriptions
        if subs is None:
            raise NotFound("the subscriptions API is off (mercure_subscriptions)")
        grant = await self.authorizer.subscriber(request)
        if not grant.may_receive((request.path,)):
            raise Forbidden(f"the token does not allow subscribing to {request.path[:100]!r}")
        return await subs.answer(request.path)
