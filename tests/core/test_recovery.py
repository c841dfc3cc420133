"""The resume rules (livehub.core.recovery), as properties over generated streams."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from livehub.core.broker import HistoryResult, Publication
from livehub.core.recovery import (
    ResumeBudget,
    Step,
    fill_from,
    plan_catch_up,
    step,
    unseen,
)
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind

EPOCH = "e1"


def pub(channel: str, offset: int, epoch: str = EPOCH, size: int = 1) -> Publication:
    return Publication(channel, b"x" * size, PayloadKind.TEXT, StreamPosition(epoch, offset),
                       time=float(offset))


positions = st.builds(StreamPosition, st.sampled_from(["e1", "e2"]), st.integers(0, 50))


@given(st.none() | positions, positions)
def test_step_is_exactly_one_of_next_seen_gap(last: StreamPosition | None,
                                              pos: StreamPosition) -> None:
    result = step(last, pos)
    if last is None:
        assert result is Step.NEXT
    elif pos.epoch != last.epoch:
        assert result is Step.GAP
    elif pos.offset == last.offset + 1:
        assert result is Step.NEXT
    elif pos.offset <= last.offset:
        assert result is Step.SEEN
    else:
        assert result is Step.GAP


@given(positions, positions)
def test_fill_reads_after_last_or_from_the_start_of_a_new_epoch(
        last: StreamPosition, pos: StreamPosition) -> None:
    since = fill_from(last, pos)
    assert since == (last if pos.epoch == last.epoch else StreamPosition(pos.epoch, 0))


@given(st.integers(0, 20), st.integers(0, 20), st.integers(1, 20), st.integers(0, 20),
       st.integers(0, 20))
def test_gap_fill_delivers_each_offset_once_in_order(last: int, h_from: int, h_len: int,
                                                     q_from: int, q_len: int) -> None:
    """History read after ``last`` and the queue of live messages overlap arbitrarily: the
    fill delivers every offset after ``last`` that either holds, once, in order."""
    found = [pub("c", o) for o in range(h_from + 1, h_from + 1 + h_len)]
    queued = [pub("c", o) for o in range(q_from + 1, q_from + 1 + q_len)]
    kept = [p.position.offset for p in unseen(StreamPosition(EPOCH, last), [*found, *queued])]
    assert kept == sorted(set(kept)), "no duplicate, offset order"
    assert all(o > last for o in kept)
    covered = {o for o in range(h_from + 1, h_from + 1 + h_len) if o > last}
    assert covered <= set(kept)


@dataclass(frozen=True)
class Channel:
    """A generated channel: offsets 1..top stored, the newest ``kept`` retained, the client at
    ``since`` (None: a new subscriber; epoch "old": a lost stream), live publications
    ``live_from..live_to`` buffered during the history read."""

    name: str
    top: int
    kept: int
    since: StreamPosition | None
    live_from: int
    live_to: int
    size: int
    recent: int = 0
    """``?recent=N`` of a new subscriber: its read returns the newest N retained."""

    def read(self, limit: int) -> HistoryResult:
        first = self.top - self.kept + 1
        top = StreamPosition(EPOCH, self.top)
        s = self.since
        if s is None:
            newest = range(max(first, self.top - min(self.recent, limit) + 1), self.top + 1)
            return HistoryResult([pub(self.name, o, size=self.size) for o in newest], top, True)
        if s.epoch != EPOCH or s.offset > self.top:
            return HistoryResult([], top, False)
        recovered = s.offset + 1 >= first
        offsets = range(max(s.offset + 1, first), self.top + 1)
        return HistoryResult([pub(self.name, o, size=self.size) for o in offsets][:limit],
                             top, recovered)

    def live(self) -> list[Publication]:
        return [pub(self.name, o, size=self.size) for o in range(self.live_from,
                                                                  self.live_to + 1)]


@st.composite
def channels(draw: st.DrawFn, name: str, recent: bool = False) -> Channel:
    top = draw(st.integers(0, 30))
    kept = draw(st.integers(0, top))
    since = draw(st.none() | st.builds(StreamPosition, st.sampled_from([EPOCH, "old"]),
                                       st.integers(0, top)))
    live_from = draw(st.integers(1, top + 1))  # a live publication the read may have counted
    live_to = draw(st.integers(max(top, live_from - 1), top + 5))
    return Channel(name, top, kept, since, live_from, live_to, draw(st.integers(1, 10)),
                   draw(st.integers(0, 40)) if recent else 0)


@given(channels("a"), channels("b"), st.integers(0, 40), st.integers(0, 400))
def test_catch_up_is_lossless_or_reset(a: Channel, b: Channel, max_pubs: int,
                                       max_bytes: int) -> None:
    budget = ResumeBudget(max_publications=max_pubs, max_bytes=max_bytes)
    chans = [a, b]
    since = {c.name: c.since for c in chans if c.since is not None}
    buffered = [*a.live(), *b.live()]
    plan = plan_catch_up(["a", "b"], [c.read(budget.read_limit) for c in chans], since,
                         buffered, budget)
    assert set(plan.over_budget) <= set(plan.resets)
    for c in chans:
        offsets = [p.position.offset for p in plan.writes if p.channel == c.name]
        assert offsets == sorted(set(offsets)), "each publication once, in offset order"
        end = plan.positions[c.name]
        assert end.offset == (offsets[-1] if offsets else plan.start[c.name].offset)
        if c.name in plan.resets or c.since is None:
            assert c.since is not None or c.name not in plan.resets
            # from where it starts, it misses nothing that arrived live
            start = plan.start[c.name].offset
            assert offsets == list(range(start + 1, c.live_to + 1))
            assert start in (c.top, c.live_from - 1)
        else:
            # resumed: everything after the client's position, nothing before
            assert c.since.epoch == EPOCH and c.since.offset >= c.top - c.kept
            assert offsets == list(range(c.since.offset + 1, c.live_to + 1))
    replayed = [p for p in plan.writes if p.position.offset <= _top(chans, p.channel)
                and p.channel not in plan.resets and p.channel in since]
    assert len(replayed) <= max_pubs
    assert sum(len(p.data) for p in replayed) <= max_bytes


def _top(chans: list[Channel], name: str) -> int:
    return next(c.top for c in chans if c.name == name)


@given(channels("a"))
def test_lost_continuity_is_always_announced(a: Channel) -> None:
    """A client whose position history cannot cover is reset, never silently resumed."""
    budget = ResumeBudget()
    since = {} if a.since is None else {"a": a.since}
    plan = plan_catch_up(["a"], [a.read(budget.read_limit)], since, a.live(), budget)
    lost = a.since is not None and (a.since.epoch != EPOCH
                                    or a.since.offset < a.top - a.kept)
    assert ("a" in plan.resets) == lost
    assert plan.over_budget == ()  # the default budget covers every generated replay



@given(channels("a", recent=True), channels("b", recent=True), st.integers(0, 40),
       st.integers(0, 400))
def test_recent_replays_the_newest_within_the_budget_then_live(
        a: Channel, b: Channel, max_pubs: int, max_bytes: int) -> None:
    """``?recent=N``: a channel without a client position replays its newest N retained
    publications (no more than the resumes left of the budget), at their real positions,
    then every live one after them, each once; never a reset."""
    budget = ResumeBudget(max_publications=max_pubs, max_bytes=max_bytes)
    chans = [a, b]
    since = {c.name: c.since for c in chans if c.since is not None}
    plan = plan_catch_up(["a", "b"], [c.read(budget.read_limit) for c in chans], since,
                         [*a.live(), *b.live()], budget)
    count = size = 0
    for c in chans:
        offsets = [p.position.offset for p in plan.writes if p.channel == c.name]
        start = plan.start[c.name].offset
        if c.name not in plan.resets:
            count += sum(1 for o in offsets if o <= c.top)
            size += c.size * sum(1 for o in offsets if o <= c.top)
        if c.since is not None:
            continue
        assert c.name not in plan.resets
        assert offsets == list(range(start + 1, c.live_to + 1)), "contiguous, each once"
        replayed = c.top - start
        # the newest ``replayed`` of the retained ones, at most N; or a live start
        assert 0 <= replayed <= min(c.recent, c.kept) or start == c.live_from - 1
    if all(c.live_from > c.top for c in chans):  # else some of them came live, not replayed
        assert count <= max_pubs and size <= max_bytes


@given(channels("a", recent=True), channels("b", recent=True))
def test_recent_within_the_default_budget_replays_exactly_n(a: Channel, b: Channel) -> None:
    budget = ResumeBudget()
    since = {c.name: c.since for c in (a, b) if c.since is not None}
    plan = plan_catch_up(["a", "b"], [c.read(budget.read_limit) for c in (a, b)], since,
                         [*a.live(), *b.live()], budget)
    for c in (a, b):
        if c.since is None and min(c.recent, c.kept) > 0:
            assert plan.start[c.name].offset == c.top - min(c.recent, c.kept)
