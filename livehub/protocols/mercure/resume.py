"""Where a Mercure subscriber resumes: its ``Last-Event-ID`` as one position in the journal.

A subscriber follows one journal channel, so its resume point is one ``StreamPosition``; the
hub's catch-up (``Node.subscribe(since=...)``, the rules of ``core.recovery``) replays what
follows it, filtered by the subscriber's variant, then goes live without a gap.  This module
only turns the client's text into that position and chooses the ``Last-Event-ID`` response
header (Mercure "Reconciliation"):

* no id: start live; the header names the journal's newest position;
* ``earliest``: everything the journal keeps; the header is ``earliest``;
* a hub id ``#<offset>~<epoch>`` (checkpoints, resets, publications without a Mercure id): that
  position; the header echoes it;
* an update id: the journal is scanned (newest first) for the entry with that id; found, the
  header echoes it; not found (expired, evicted, unknown), the header is ``earliest`` and the
  position is one of no stream, so the catch-up says in-band, with livehub's ``reset`` event,
  that history could not cover it, and the subscriber continues live.
"""

from __future__ import annotations

from dataclasses import dataclass

from livehub.core.journal import has_id, id_prefix
from livehub.core.node import Node
from livehub.protocols.mercure.update import parse_position_id, position_id
from livehub.wire.cursor import StreamPosition

EARLIEST = "earliest"
LOST = StreamPosition("lost", 0)
"""A position of no stream: its history read says "not recovered", so the client is told."""


@dataclass(frozen=True, slots=True)
class Resume:
    since: StreamPosition | None
    header: str


async def resolve(node: Node, journal: str, text: str | None) -> Resume:
    """The resume position of ``text`` in ``journal`` and the ``Last-Event-ID`` header."""
    if not text:
        top = await node.top(journal)
        return Resume(None, position_id(top) if top.offset else EARLIEST)
    if text == EARLIEST:
        result = await node.history(journal)
        if result.publications:
            first = result.publications[0].position
            return Resume(StreamPosition(first.epoch, first.offset - 1), EARLIEST)
        return Resume(result.top, EARLIEST)
    position = parse_position_id(text)
    if position is not None:
        return Resume(position, text)
    prefix = id_prefix(text)
    result = await node.history(journal)
    for pub in reversed(result.publications):
        if has_id(pub.data, prefix):
            return Resume(pub.position, text)
    return Resume(LOST, EARLIEST)
