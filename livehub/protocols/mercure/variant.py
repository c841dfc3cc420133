"""The Mercure wire variant: journal entries as SSE events, filtered by a subscriber's selectors.

Theory of operation (fan-out cost)
----------------------------------
Every Mercure subscriber of a node follows the one journal channel, so the hub hands each
journal publication to every Mercure *variant* once.  A variant is interned per distinct
(selector set, private grant) pair: subscribers with identical selectors share one, so each
distinct set is evaluated once per update (and the selectors cache their matches), and the
hub's group writes the same ``bytes`` to all of them.  Decoding the journal entry and building
the SSE event happen once per publication for all variants (``_Current``); a variant only
decides "this set matches or not" and returns the shared bytes or ``b""`` (written nowhere).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from livehub.core.broker import Publication
from livehub.core.journal import BadEntry, decode_entry
from livehub.protocols.mercure.topics import TopicMap
from livehub.protocols.mercure.update import Update, event_bytes, from_entry, position_id
from livehub.ratelog import RateLimitedLog
from livehub.transports.framing import intern
from livehub.wire import sse
from livehub.wire.cursor import StreamPosition

log = logging.getLogger(__name__)
rlog = RateLimitedLog(log)


class Matcher(Protocol):
    def matches_any(self, topics: Sequence[str]) -> bool: ...


class Receiver(Protocol):
    """A subscriber's grant: whether a private update about ``topics`` may reach it (the
    permission model decides: ``core.permissions.may_receive``)."""

    def may_receive(self, topics: Sequence[str]) -> bool: ...


class _Current:
    """The update being fanned out right now, decoded once, and its event bytes."""

    __slots__ = ("event", "pub", "update")

    def __init__(self) -> None:
        self.pub: Publication | None = None
        self.update: Update | None = None
        self.event = b""

    def get(self, pub: Publication, topics: TopicMap) -> tuple[Update | None, bytes]:
        if pub is not self.pub:
            self.pub = pub
            self.update = decode(pub, topics)
            if self.update is not None:
                event_id = self.update.update_id or position_id(pub.position)
                self.event = event_bytes(self.update, event_id)
        return self.update, self.event


def decode(pub: Publication, topics: TopicMap) -> Update | None:
    """The update of a journal publication (None: not an entry, or of an unmapped channel)."""
    try:
        entry = decode_entry(pub.data)
    except BadEntry as exc:
        rlog.warning("mercure-entry", "journal %r holds something that is not an entry: %s",
                     pub.channel, exc)
        return None
    if entry.meta:
        return from_entry(entry, None, False)
    found = topics.topic(entry.channel)
    if found is None:
        return None
    return from_entry(entry, (found[0],), found[1])


_current = _Current()


class MercureVariant:
    """SSE events of the updates that ``selectors`` match (private ones: that ``grant`` may
    receive too)."""

    __slots__ = ("__weakref__", "channel", "grant", "selectors", "topics")

    def __init__(self, channel: str, topics: TopicMap, selectors: Matcher,
                 grant: Receiver) -> None:
        self.channel = channel
        self.topics = topics
        self.selectors = selectors
        self.grant = grant

    def encode(self, pub: Publication, positions: Mapping[str, StreamPosition]) -> bytes:
        update, event = _current.get(pub, self.topics)
        if update is None or not self.selectors.matches_any(update.topics):
            return b""
        if update.private and not self.grant.may_receive(update.topics):
            return b""
        return event

    def encode_reset(self, channels: Sequence[str],
                     positions: Mapping[str, StreamPosition]) -> bytes:
        body = json.dumps({"reason": "history does not cover the gap; continuing live"})
        return sse.event_block(sse.data_lines(body.encode()), event="reset",
                               event_id=position_id(positions[self.channel]))

    def encode_checkpoint(self, positions: Mapping[str, StreamPosition]) -> bytes:
        return sse.id_only(position_id(positions[self.channel]))


def mercure_variant(channel: str, topics: TopicMap, key: object, selectors: Matcher,
                    grant: Receiver) -> MercureVariant:
    """The variant of a selector set and grant (``key`` names both: grants with the same key
    receive the same private updates), shared while in use."""
    return intern(("mercure", channel, id(topics), key), MercureVariant,
                  lambda: MercureVariant(channel, topics, selectors, grant))
