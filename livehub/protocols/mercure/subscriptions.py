"""Active subscriptions (Mercure "Active Subscriptions"): subscription events and the API.

When ``mercure_subscriptions`` is on, every Mercure stream is kept in the presence of the
journal channel (so every node's API sees the subscriptions of the whole cluster, refreshed on
each heartbeat, gone with the connection or after three missed heartbeats), and its opening and
closing publish one private update per selector, topic
``/.well-known/mercure/subscriptions/{selector}/{subscriber}`` (both percent-encoded), JSON-LD::

    {"@context": "https://mercure.rocks/", "id": <topic>, "type": "Subscription",
     "topic": <selector>, "subscriber": <id>, "active": true|false, "payload": <token payload>}

The events go to the journal only (no channel holds them), so Mercure subscribers allowed
their topic receive them, and resume over them, like any update.  ``GET
/.well-known/mercure/subscriptions[/{selector}[/{subscriber}]]`` answers the active ones as
``application/ld+json`` to a subscriber allowed that URL.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from urllib.parse import quote, unquote

from livehub.core.journal import Journal, encode_entry
from livehub.core.node import Node
from livehub.core.presence import ClientInfo
from livehub.errors import LivehubError, NotFound
from livehub.protocols.mercure.update import KIND, Update, position_id
from livehub.ratelog import RateLimitedLog
from livehub.transports.http import Response

log = logging.getLogger(__name__)
rlog = RateLimitedLog(log)

PREFIX = "/.well-known/mercure/subscriptions"
CONTEXT = "https://mercure.rocks/"


def event_topic(selector: str, subscriber: str) -> str:
    return f"{PREFIX}/{quote(selector, safe='')}/{quote(subscriber, safe='')}"


def document(selector: str, subscriber: str, active: bool, payload: object) -> dict[str, object]:
    """The JSON-LD of one subscription (without ``@context``)."""
    doc: dict[str, object] = {"id": event_topic(selector, subscriber), "type": "Subscription",
                              "topic": selector, "subscriber": subscriber, "active": active}
    if payload is not None:
        doc["payload"] = payload
    return doc


def new_subscriber_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


class Subscriptions:
    """Subscription events and the subscriptions of the cluster (the journal's presence)."""

    def __init__(self, node: Node, journal: Journal, ttl: float) -> None:
        self.node = node
        self.journal = journal
        self.ttl = ttl

    def info(self, client: str, subscriber: str, selectors: Sequence[str],
             payload: object) -> ClientInfo:
        return ClientInfo(client=client, user=subscriber, chan_info=json.dumps(
            {"selectors": list(selectors), "payload": payload}).encode())

    async def opened(self, info: ClientInfo) -> None:
        await self.node.add_presence(self.journal.channel, info, ttl=self.ttl)
        await self._events(info, active=True)

    async def refresh(self, info: ClientInfo) -> None:
        await self.node.add_presence(self.journal.channel, info, ttl=self.ttl)

    async def closed(self, info: ClientInfo) -> None:
        try:
            await self.node.remove_presence(self.journal.channel, info.client)
            await self._events(info, active=False)
        except LivehubError as exc:
            rlog.warning("mercure-subscriptions", "subscription end not recorded: %s",
                         exc.message)

    async def _events(self, info: ClientInfo, *, active: bool) -> None:
        selectors, payload = _decode(info)
        for selector in selectors:
            doc = {"@context": CONTEXT, **document(selector, info.user, active, payload)}
            topic = str(doc["id"])
            update = Update((topic,), json.dumps(doc).encode(), private=True,
                            update_id=new_subscriber_id())
            await self.node.append(self.journal, encode_entry(
                self.journal.channel, update.data, KIND, entry_id=update.update_id,
                meta=update.meta()))

    async def answer(self, path: str) -> Response:
        """The JSON-LD answer of the API for ``path`` (under ``PREFIX``)."""
        parts = [unquote(p) for p in path[len(PREFIX):].strip("/").split("/") if p]
        if len(parts) > 2:
            raise NotFound(f"no such resource: {path[:100]}")
        found: list[dict[str, object]] = []
        for info in (await self.node.presence_of(self.journal.channel)).values():
            selectors, payload = _decode(info)
            found.extend(document(s, info.user, True, payload) for s in selectors
                         if (not parts or parts[0] == s)
                         and (len(parts) < 2 or parts[1] == info.user))
        top = await self.node.top(self.journal.channel)
        last = position_id(top) if top.offset else "earliest"
        if len(parts) == 2:
            if not found:
                raise NotFound("no such active subscription")
            body: dict[str, object] = {"@context": CONTEXT, **found[0], "lastEventID": last}
        else:
            body = {"@context": CONTEXT, "id": path.rstrip("/"), "type": "Subscriptions",
                    "lastEventID": last, "subscriptions": found}
        return Response(200, json.dumps(body).encode(), "application/ld+json")


def _decode(info: ClientInfo) -> tuple[list[str], object]:
    try:
        value = json.loads(info.chan_info or b"{}")
        return [str(s) for s in value.get("selectors", ())], value.get("payload")
    except (ValueError, AttributeError):
        return [], None
