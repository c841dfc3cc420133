"""The budgets that keep a node bounded under abuse (``[limits]`` settings, docs/limits.md).

Every budget here has a default, a setting (``[limits]`` in the TOML file, ``LIVEHUB_<NAME>``,
``--<name>``), a documented answer for the client that exceeds it and a metric name; the table
in ``docs/limits.md`` lists them all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from livehub.core.recovery import ResumeBudget
from livehub.errors import ConfigError
from livehub.wire.validation import MAX_DEPTH, PublicationRules


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_publication_size: int = 1024 * 1024
    """Bytes of one publication's payload, from any protocol (after inflation)."""
    max_json_depth: int = MAX_DEPTH
    """Nesting of any JSON a peer sends: publication data, API bodies, client commands."""
    history_memory: int = 256 * 1024 * 1024
    """Bytes of history over all channels of the memory broker; past it the oldest
    publications of any channel are evicted first (Redis: bound by Redis ``maxmemory``)."""

    client_publish_rate: float = 100.0
    """Publications per second one client connection may make, on average (raw ``/ws``
    messages, Centrifugo ``publish``); 0: unlimited."""
    client_publish_burst: int = 200
    """Publications one client connection may make at once above the average rate."""
    api_max_broadcast: int = 1000
    """Channels of one server API ``broadcast``."""
    api_max_batch: int = 1000
    """Commands of one server API ``batch``."""
    resume_max_publications: int = 1000
    """Publications one resume (SSE ``Last-Event-ID``, ``/poll`` cursor, ``/ws?since=``,
    Centrifugo recovery) may replay over all its channels; beyond it the client is told it
    cannot resume (a reset), as when history does not cover the gap."""
    resume_max_bytes: int = 4 * 1024 * 1024
    """Payload bytes one resume may replay; beyond it, a reset (as above)."""

    def __post_init__(self) -> None:
        if self.max_publication_size < 1:
            raise ConfigError("max_publication_size must be >= 1, not "
                              f"{self.max_publication_size}")
        if self.client_publish_rate < 0 or self.client_publish_burst < 1:
            raise ConfigError("client_publish_rate must be >= 0 and client_publish_burst >= 1")
        if self.api_max_broadcast < 1 or self.api_max_batch < 1:
            raise ConfigError("api_max_broadcast and api_max_batch must be >= 1")
        if self.history_memory < 0:
            raise ConfigError(f"history_memory must be >= 0, not {self.history_memory}")
        if not 1 <= self.max_json_depth <= 500:
            raise ConfigError(f"max_json_depth must be in 1..500, not {self.max_json_depth}")
        self.resume_budget  # noqa: B018 - raises ConfigError for a bad budget

    @property
    def resume_budget(self) -> ResumeBudget:
        return ResumeBudget(self.resume_max_publications, self.resume_max_bytes)

    def publish_bucket(self) -> TokenBucket | None:
        """A new connection's budget of client publications (None: unlimited)."""
        if self.client_publish_rate <= 0:
            return None
        return TokenBucket(self.client_publish_rate, self.client_publish_burst)

    @property
    def publication_rules(self) -> PublicationRules:
        return PublicationRules(max_size=self.max_publication_size,
                                max_depth=self.max_json_depth)


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved, refilled lazily (no timer).

    ``take`` spends one token if there is one (client publications).  ``in_debt`` and
    ``spend`` let a caller spend more than it holds, once, then wait for the refill
    (compression bytes: one message of any allowed size always gets through).
    """

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, *, now: float | None = None) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic() if now is None else now

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self, now: float | None = None) -> bool:
        self._refill(time.monotonic() if now is None else now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def in_debt(self, now: float) -> bool:
        """Refill to ``now``; whether nothing may be spent yet."""
        self._refill(now)
        return self._tokens <= 0

    def spend(self, n: float) -> None:
        self._tokens -= n

    @property
    def full(self) -> bool:
        """Whether the bucket held its whole burst at the last refill (a caller may forget
        it: a new bucket would be the same)."""
        return self._tokens >= self.burst
