"""The compression budget's token buckets (transports.compression), with explicit clocks."""

from __future__ import annotations

import pytest

from livehub.core.limits import TokenBucket
from livehub.errors import OverBudget
from livehub.transports.compression import CompressionBudget


def test_one_message_may_take_the_bucket_into_debt_then_it_refills() -> None:
    bucket = TokenBucket(1000, 1000, now=0.0)
    assert not bucket.in_debt(0.0)
    bucket.spend(5000)  # one message larger than the whole burst still goes through
    assert bucket.in_debt(1.0)  # -4000 + 1000
    assert bucket.in_debt(4.0)  # exactly 0: nothing to spend yet
    assert not bucket.in_debt(4.5)


def test_refill_is_capped_at_one_second_of_rate() -> None:
    bucket = TokenBucket(1000, 1000, now=0.0)
    assert not bucket.in_debt(100.0)
    bucket.spend(1001)
    assert bucket.in_debt(100.0)


def test_own_bucket_answers_3013_and_the_shared_one_1013() -> None:
    shared = TokenBucket(10_000, 10_000, now=0.0)
    a = CompressionBudget(1000, shared, now=0.0)
    a.inflated(1500, 0.0)
    with pytest.raises(OverBudget) as own:
        a.inflated(1, 0.1)
    assert own.value.close_code == 3013 and "1000 bytes per second" in own.value.message
    b = CompressionBudget(100_000, shared, now=0.0)
    b.inflated(20_000, 0.1)
    with pytest.raises(OverBudget) as busy:
        b.inflated(1, 0.2)
    assert busy.value.close_code == 1013 and "try again later" in busy.value.message


def test_deflating_is_allowed_only_out_of_debt() -> None:
    shared = TokenBucket(10_000, 10_000, now=0.0)
    budget = CompressionBudget(1000, shared, now=0.0)
    assert budget.may_deflate(0.0)
    budget.deflated(2000)
    assert not budget.may_deflate(0.5)
    assert budget.may_deflate(1.5)
