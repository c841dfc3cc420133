"""The ``mercure`` transport of the load lab: EventSource-like subscribers on
``/.well-known/mercure`` (issue 11), counted like the ``sse`` ones, so that the fan-out per
delivery of a Mercure hub can be set beside ``/events`` on the same server and publisher.

The subscriber selects one topic with the 0.x ``?topic=`` parameter; ``MERCURE_CONFIG`` maps
that topic to the lab's channel (``bench:x``), so the one publisher of every transport (the
server API) reaches it through livehub's topic <-> channel mapping.  What differs from ``sse`` on
the wire: the hub's event ids of updates published outside Mercure are journal positions
(``id: #12~epoch``), whose ``#`` is no payload mark, so these clients count marks in ``data``
lines only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

from livehub.bench.clients import Conn, ProbeMixin
from livehub.bench.stats import RunStats
from livehub.bench.wire import MARK, http_get_request, parse_marks

MERCURE_TOPIC = "x"
MERCURE_PATH = f"/.well-known/mercure?topic={quote(MERCURE_TOPIC, safe='')}"
MERCURE_CONFIG = """
[mercure]
# the hub on, its topics (x: the lab's channel bench:x) and its journal in the lab's namespace
# (the centrifugo section's client_insecure lets subscribers in without a token)
mercure = true
mercure_namespace = "bench"
mercure_journal = "bench:$journal"
"""
_ID_MARK = b"id: " + MARK
_KEEP = len(_ID_MARK) - 1
"""Bytes of a read kept to find an ``id: #`` split between two reads."""
_now_ns = time.monotonic_ns


class MercureSubscriber(Conn):
    """Counts updates by their payload marks, less the ``#`` of ``id: #...`` lines."""

    def __init__(self, st: RunStats, request: bytes) -> None:
        super().__init__(st, request)
        self.count = 0
        self.tail = b""

    def on_body(self, data: bytes) -> None:
        joined = self.tail + data
        self.tail = data[-_KEEP:]
        self.tally(data.count(MARK) - joined.count(_ID_MARK), len(data))


class MercureProbe(ProbeMixin, Conn):
    """A Mercure subscriber that parses the marks of every ``data`` line, whole lines only."""

    probe = True

    def __init__(self, st: RunStats, request: bytes) -> None:
        super().__init__(st, request)
        self.count = 0
        self.carry = b""
        self.marks: list[tuple[int, int]] = []

    def on_body(self, data: bytes) -> None:
        now = _now_ns() // 1000
        buf = self.carry + data
        end = buf.rfind(b"\n") + 1
        self.carry = buf[end:]
        marks = self.marks
        for line in buf[:end].split(b"\n"):
            if line.startswith(b"data:"):
                parse_marks(line, 0, len(line), marks)
        c = len(marks)
        self.count += c
        self.check(marks, now)
        marks.clear()
        self.tally_probe(c, len(data))


def mercure_factory(path: str, port: int, st: RunStats, *, probe: bool) -> Callable[[], Conn]:
    """A maker of ``mercure`` subscribers of ``path`` on ``port``."""
    request = http_get_request(path, port, "text/event-stream")
    cls = MercureProbe if probe else MercureSubscriber
    return lambda: cls(st, request)
