"""Latency and errors of broker operations, counted in plain ints (read by metrics at scrape).

``Node`` times each broker operation it awaits (``publish``, ``history``...) with one
``time.perf_counter`` pair and ``BrokerOps.observe``: a bisect into fixed buckets and three
additions, no allocation, nothing per delivery.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

BUCKETS: tuple[float, ...] = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                              0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds (seconds) of the latency histogram; one more bucket holds the rest (+Inf)."""


@dataclass(slots=True)
class Latency:
    """One operation's histogram: counts per bucket (not cumulative), sum and count."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    count: int = 0


@dataclass(eq=False, slots=True)
class BrokerOps:
    """Latency by operation and errors by (operation, error class name)."""

    latency: dict[str, Latency] = field(default_factory=dict)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)

    def observe(self, op: str, seconds: float) -> None:
        hist = self.latency.get(op)
        if hist is None:
            hist = self.latency[op] = Latency()
        hist.counts[bisect_left(BUCKETS, seconds)] += 1
        hist.total += seconds
        hist.count += 1

    def error(self, op: str, exc: BaseException) -> None:
        self.errors[(op, type(exc).__name__)] += 1
