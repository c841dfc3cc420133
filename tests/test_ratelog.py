"""``livehub.ratelog``: at most N lines per period per kind, then one "suppressed" line."""

from __future__ import annotations

import logging

import pytest

from livehub.ratelog import RateLimitedLog


def test_lines_per_kind_per_period(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    rlog = RateLimitedLog(logging.getLogger("t.ratelog"), lines=3, period=10,
                          clock=lambda: now[0])
    with caplog.at_level(logging.INFO, "t.ratelog"):
        for i in range(1000):
            rlog.info("bad-frame", "bad frame %d", i)
            rlog.warning("other", "other %d", i)
        assert [r.getMessage() for r in caplog.records] == [
            "bad frame 0", "other 0", "bad frame 1", "other 1", "bad frame 2", "other 2"]
        caplog.clear()
        now[0] = 10.0
        rlog.info("bad-frame", "bad frame again")
        assert [r.getMessage() for r in caplog.records] == [
            "bad-frame: 997 more similar lines suppressed in 10 s", "bad frame again"]
        caplog.clear()
        rlog.flush()
        assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
            (logging.WARNING, "other: 997 more similar lines suppressed in 10 s")]


def test_tracebacks_are_limited_too(caplog: pytest.LogCaptureFixture) -> None:
    rlog = RateLimitedLog(logging.getLogger("t.ratelog2"), lines=2)
    with caplog.at_level(logging.INFO, "t.ratelog2"):
        for _ in range(50):
            try:
                raise RecursionError("deep")
            except RecursionError:
                rlog.exception("handler", "handler failed")
    assert len(caplog.records) == 2
    assert all(r.exc_info is not None for r in caplog.records)


def test_disabled_levels_cost_nothing(caplog: pytest.LogCaptureFixture) -> None:
    rlog = RateLimitedLog(logging.getLogger("t.ratelog3"), lines=1)
    with caplog.at_level(logging.WARNING, "t.ratelog3"):
        for _ in range(10):
            rlog.info("k", "not shown")
        rlog.flush()
    assert caplog.records == []
