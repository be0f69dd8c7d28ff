"""Exact delays of the rate limiters, as client-go and golang.org/x/time/rate compute them."""

from __future__ import annotations

import math

import pytest

from pkg.runtime.clock import FakeClock
from pkg.runtime.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    default_controller_rate_limiter,
)


def test_exponential_doubles_from_base_per_item() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter()
    assert [limiter.when("a") for _ in range(5)] == [0.005, 0.01, 0.02, 0.04, 0.08]
    assert limiter.num_requeues("a") == 5
    assert limiter.when("b") == 0.005, "items back off independently"
    assert limiter.num_requeues("b") == 1


def test_exponential_caps_at_max_delay() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("a") for _ in range(20)]
    assert delays[17] == 0.005 * 2**17 == 655.36
    assert delays[18:] == [1000.0, 1000.0]


def test_exponential_survives_float_overflow() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(0.001, 30.0)
    for _ in range(1100):
        delay = limiter.when("a")
    assert delay == 30.0


def test_exponential_forget_resets() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(1.0, 100.0)
    limiter.when("a")
    limiter.when("a")
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == 1.0


def test_bucket_burst_then_one_token_per_interval() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(10, 100, clock=clock)
    assert [limiter.when(i) for i in range(100)] == [0.0] * 100
    # Each reservation past the burst waits for one more 100 ms token.
    assert [limiter.when(i) for i in range(3)] == pytest.approx([0.1, 0.2, 0.3])


def test_bucket_refills_with_time_up_to_burst() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(10, 100, clock=clock)
    for i in range(103):
        limiter.when(i)  # balance: -3 tokens
    clock.step(1.0)  # +10 tokens
    assert [limiter.when(i) for i in range(7)] == [0.0] * 7
    assert limiter.when("x") == pytest.approx(0.1)
    clock.step(3600)
    assert [limiter.when(i) for i in range(100)] == [0.0] * 100, "refill stops at the burst"
    assert limiter.when("x") == pytest.approx(0.1)


def test_bucket_delay_counts_from_now() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(2, 1, clock=clock)
    assert limiter.when("a") == 0.0
    assert limiter.when("a") == 0.5
    clock.step(0.25)
    assert limiter.when("a") == 0.75  # two tokens owed, a quarter second already paid


def test_bucket_ignores_items_and_forget() -> None:
    limiter = BucketRateLimiter(1, 1, clock=FakeClock())
    limiter.when("a")
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("b") == 1.0


def test_bucket_validation_and_infinite_rate() -> None:
    with pytest.raises(ValueError):
        BucketRateLimiter(0, 1)
    with pytest.raises(ValueError):
        BucketRateLimiter(1, 0)
    unlimited = BucketRateLimiter(math.inf, 1)
    assert [unlimited.when(i) for i in range(1000)] == [0.0] * 1000


def test_max_of_takes_the_longest_and_consults_every_limiter() -> None:
    clock = FakeClock()
    bucket = BucketRateLimiter(1, 1, clock=clock)
    limiter: MaxOfRateLimiter[str] = MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.5, 10.0), bucket)
    assert limiter.when("a") == 0.5  # exponential wins; the bucket still spends its token
    assert limiter.when("b") == 1.0  # bucket wins
    assert limiter.when("a") == 2.0  # bucket owes 2 tokens; exponential at 1.0
    assert limiter.num_requeues("a") == 2
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert MaxOfRateLimiter[str]().when("a") == 0.0


def test_default_controller_rate_limiter() -> None:
    clock = FakeClock()
    limiter = default_controller_rate_limiter(clock=clock)
    assert [limiter.when("a") for _ in range(3)] == [0.005, 0.01, 0.02]
    assert [limiter.when(i) for i in range(97)] == [0.005] * 97  # 100 tokens spent
    assert limiter.when("b") == pytest.approx(0.1)  # the overall bucket now dominates
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0


def test_default_controller_rate_limiter_is_configurable() -> None:
    limiter = default_controller_rate_limiter(
        base_delay=1.0, max_delay=3.0, qps=1, burst=1, clock=FakeClock()
    )
    assert [limiter.when("a") for _ in range(4)] == [1.0, 2.0, 3.0, 3.0]
