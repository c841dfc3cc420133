"""Log lines a peer can trigger, rate-limited so that no client can flood the log.

Every refusal of bad input (a malformed frame, a protocol violation, an unexpected failure while
handling a request) is worth one log line, but a client sending thousands of them must not
write thousands of lines, nor thousands of tracebacks.  ``RateLimitedLog`` lets through at most
``lines`` lines per ``period`` seconds per *kind* (a fixed string naming what happened), counts
the rest, and when a new period starts says once how many were suppressed::

    rlog = RateLimitedLog(logging.getLogger(__name__))
    rlog.info("ws-violation", "websocket %s failed: %d %s", peer, code, reason)

No timer: the "suppressed" line is written by the first call of the next period (or by
``flush``).  Kinds are a small fixed set chosen by the code, never taken from the peer.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping

LINES = 10
PERIOD = 10.0

SEEN: Counter[str] = Counter()
"""Every occurrence of every kind in this process, logged or suppressed (metrics:
``livehub_log_events_total``)."""


class RateLimitedLog:
    """A logger wrapper allowing ``lines`` lines per ``period`` seconds per kind."""

    __slots__ = ("_clock", "_kinds", "lines", "logger", "period")

    def __init__(self, logger: logging.Logger, *, lines: int = LINES, period: float = PERIOD,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.lines = lines
        self.period = period
        self._clock = clock
        self._kinds: dict[str, list[float]] = {}
        """kind -> [period start, lines written in it, lines suppressed in it, level]"""

    def log(self, level: int, kind: str, msg: str, *args: object,
            exc_info: bool | BaseException | None = None,
            extra: Mapping[str, object] | None = None) -> None:
        SEEN[kind] += 1
        if not self.logger.isEnabledFor(level):
            return
        now = self._clock()
        state = self._kinds.get(kind)
        if state is None or now - state[0] >= self.period:
            if state is not None:
                self._report(kind, state)
            state = self._kinds[kind] = [now, 0, 0, level]
        if state[1] >= self.lines:
            state[2] += 1
            state[3] = max(state[3], level)
            return
        state[1] += 1
        self.logger.log(level, msg, *args, exc_info=exc_info, extra=extra)

    def info(self, kind: str, msg: str, *args: object) -> None:
        self.log(logging.INFO, kind, msg, *args)

    def warning(self, kind: str, msg: str, *args: object) -> None:
        self.log(logging.WARNING, kind, msg, *args)

    def exception(self, kind: str, msg: str, *args: object) -> None:
        """An unexpected error with its traceback (call from an ``except`` block)."""
        self.log(logging.ERROR, kind, msg, *args, exc_info=True)

    def flush(self) -> None:
        """Report what was suppressed so far (e.g. at shutdown)."""
        for kind, state in self._kinds.items():
            self._report(kind, state)
            state[2] = 0

    def _report(self, kind: str, state: list[float]) -> None:
        if state[2]:
            self.logger.log(int(state[3]), "%s: %d more similar lines suppressed in %.0f s",
                            kind, int(state[2]), self.period)
