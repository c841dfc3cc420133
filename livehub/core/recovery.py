"""The resume rules, once: what follows a position, what a catch-up writes, what a gap fill keeps.

Pure functions over positions and publications (no asyncio, no broker): the hub's live
fan-out and catch-up, and the Redis broker's gap fill, all decide with these.

Theory of operation
-------------------
A channel is a stream of positions (epoch, offset); offsets of one epoch are 1, 2, 3...  Seen
from a reader at position ``last``, a publication at ``pos`` is exactly one of:

* ``NEXT``: the following offset of the same epoch (or the reader has no position yet): write it;
* ``SEEN``: the same epoch, an offset at or before ``last``: a duplicate, drop it;
* ``GAP``: offsets were skipped, or the epoch changed: something was missed, and the reader
  must be told (a reset notice) or the gap filled from history first.

A *catch-up* (a subscription that resumes from the client's positions) is planned by
``plan_catch_up`` from the history reads and the live publications buffered while they ran:

1. a channel resumes from the client's position when history covers the gap (``recovered``)
   and the replay fits the ``ResumeBudget``; otherwise it is *reset*: it starts from the
   history top (or just before the first buffered live publication the read already counted,
   so that one is still written), and the client is told with a reset notice first;
   a channel without a client position whose read returned publications (``?recent=N``: the
   newest N) replays them, the newest that fit what the resumes left of the budget, starting just
   before the first one kept: the same positions as a resume, so a client that drops later
   resumes from them and a reconnection that brings a position never replays them twice;
2. the replays of every resumed channel, merged across channels by publication time (each
   channel keeps its offset order);
3. then the buffered live publications; every publication that is ``SEEN`` from the position
   reached so far is dropped, so nothing is written twice;
4. the positions reached: the checkpoint.

The budget bounds what one resume may cost (memory of a reply, bytes pinned in a connection's
buffer): beyond it the client gets the same answer as when history does not cover the gap.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from livehub.core.broker import HistoryResult, Publication
from livehub.errors import ConfigError
from livehub.wire.cursor import StreamPosition


class Step(enum.Enum):
    """Where a publication stands relative to a reader's last position."""

    NEXT = 1
    SEEN = 2
    GAP = 3


def step(last: StreamPosition | None, pos: StreamPosition) -> Step:
    """``NEXT``, ``SEEN`` or ``GAP`` for a publication at ``pos`` after ``last``."""
    if last is None:
        return Step.NEXT
    if pos.epoch == last.epoch:
        if pos.offset == last.offset + 1:
            return Step.NEXT
        if pos.offset <= last.offset:
            return Step.SEEN
    return Step.GAP


def fill_from(last: StreamPosition, pos: StreamPosition) -> StreamPosition:
    """Where to read history to fill the gap between ``last`` and a publication at ``pos``:
    after ``last`` in the same epoch, else from the start of the new epoch."""
    return last if pos.epoch == last.epoch else StreamPosition(pos.epoch, 0)


def unseen(last: StreamPosition | None, pubs: Iterable[Publication]) -> list[Publication]:
    """``pubs`` (one channel, offset order) without those already seen from ``last`` or
    earlier in ``pubs``: what a gap fill delivers from history, then from its queue."""
    kept: list[Publication] = []
    for pub in pubs:
        if step(last, pub.position) is Step.SEEN:
            continue
        kept.append(pub)
        last = pub.position
    return kept


@dataclass(frozen=True, slots=True)
class ResumeBudget:
    """What one catch-up may replay: at most ``max_publications`` publications and
    ``max_bytes`` bytes of payload over all its channels.  A channel whose replay would
    exceed it is reset (the client is told it cannot resume, as when history does not cover
    the gap)."""

    max_publications: int = 1000
    max_bytes: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_publications < 0:
            raise ConfigError(f"resume_max_publications must be >= 0, not "
                              f"{self.max_publications}")
        if self.max_bytes < 0:
            raise ConfigError(f"resume_max_bytes must be >= 0, not {self.max_bytes}")

    @property
    def read_limit(self) -> int:
        """How many publications a history read for a catch-up needs at most: one more than
        the budget, to tell "fits" from "exceeds" without reading the whole history."""
        return self.max_publications + 1


@dataclass(frozen=True, slots=True)
class CatchUp:
    """What to write to a resuming subscription, in this order."""

    resets: tuple[str, ...]
    """Channels whose continuity is lost: a reset notice, carrying ``start``, comes first."""
    start: Mapping[str, StreamPosition]
    """Positions of every channel before ``writes``."""
    writes: tuple[Publication, ...]
    """Replayed then buffered live publications, deduplicated, each ``NEXT`` or ``GAP``."""
    positions: Mapping[str, StreamPosition]
    """Positions after ``writes``: the checkpoint."""
    over_budget: tuple[str, ...] = ()
    """The channels of ``resets`` that history covered but the ``ResumeBudget`` did not."""


def plan_catch_up(channels: Sequence[str], results: Sequence[HistoryResult],
                  since: Mapping[str, StreamPosition], buffered: Sequence[Publication],
                  budget: ResumeBudget) -> CatchUp:
    """Plan a catch-up (see the module docstring).

    ``results[i]`` is the history read of ``channels[i]`` after ``since[channels[i]]``; a
    channel not in ``since`` replays what its read returned (the newest publications, for
    ``recent``; none when read with limit 0) and starts from its top otherwise.  ``buffered``
    are the live publications that arrived during the reads, in arrival order.
    """
    first_live: dict[str, StreamPosition] = {}
    for pub in buffered:
        first_live.setdefault(pub.channel, pub.position)
    start: dict[str, StreamPosition] = {}
    resets: list[str] = []
    replays: list[Sequence[Publication]] = []
    over_budget: list[str] = []
    count = size = 0
    recent: list[tuple[str, HistoryResult]] = []
    for name, result in zip(channels, results, strict=True):
        client = since.get(name)
        pubs = result.publications
        if client is None:
            recent.append((name, result))
            continue
        if result.recovered:
            more = sum(len(p.data) for p in pubs)
            if (count + len(pubs) <= budget.max_publications
                    and size + more <= budget.max_bytes):
                count += len(pubs)
                size += more
                start[name] = client
                replays.append(pubs)
                continue
            over_budget.append(name)
        resets.append(name)
        start[name] = _live_start(result.top, first_live.get(name))
    for name, result in recent:  # after the resumes: what is left of the budget
        kept = _newest_within(result.publications, budget.max_publications - count,
                              budget.max_bytes - size)
        if kept:
            count += len(kept)
            size += sum(len(p.data) for p in kept)
            first = kept[0].position
            start[name] = StreamPosition(first.epoch, first.offset - 1)
            replays.append(kept)
        else:
            start[name] = _live_start(result.top, first_live.get(name))
    positions = dict(start)
    writes: list[Publication] = []
    for pub in (*_by_time(replays), *buffered):
        if step(positions.get(pub.channel), pub.position) is Step.SEEN:
            continue
        positions[pub.channel] = pub.position
        writes.append(pub)
    return CatchUp(tuple(resets), start, tuple(writes), positions, tuple(over_budget))


def _newest_within(pubs: Sequence[Publication], count: int, size: int
                   ) -> Sequence[Publication]:
    """The newest of ``pubs`` (offset order) that fit ``count`` publications and ``size``
    bytes of payload, oldest first."""
    first = len(pubs)
    while first > 0 and len(pubs) - first < count and len(pubs[first - 1].data) <= size:
        first -= 1
        size -= len(pubs[first].data)
    return pubs[first:]


def _by_time(replays: Sequence[Sequence[Publication]]) -> Iterable[Publication]:
    """Replays of several channels merged by time; ``heapq.merge`` keeps each channel's
    offset order even if the wall clock stepped back."""
    if len(replays) > 1:
        return heapq.merge(*replays, key=_publication_time)
    return replays[0] if replays else ()


def _publication_time(pub: Publication) -> float:
    return pub.time


def _live_start(top: StreamPosition, first_live: StreamPosition | None) -> StreamPosition:
    """Where a subscription that replays nothing (no position, or a reset) starts: the
    history top, or just before the first live publication buffered during the history read
    when the read already counted it (that publication came after the subscription started
    and was not replayed, so it must still be written)."""
    if (first_live is not None and first_live.epoch == top.epoch
            and first_live.offset <= top.offset):
        return StreamPosition(top.epoch, first_live.offset - 1)
    return top
