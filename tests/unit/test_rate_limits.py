"""The token bucket and stream cap, on a clock the test turns."""

from __future__ import annotations

import pytest

from ordergate_server.service.errors import ServiceError
from ordergate_server.service.rate_limits import KeyLimits


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limits = KeyLimits(rate=10, burst=5, max_streams=0, clock=clock)
    for _ in range(5):
        limits.take("k")
    with pytest.raises(ServiceError) as refused:
        limits.take("k")
    assert refused.value.reason == "RATE_LIMITED"
    assert refused.value.retry_after_seconds == pytest.approx(0.1)

    clock.now += 0.1  # one token back
    limits.take("k")
    with pytest.raises(ServiceError):
        limits.take("k")
    clock.now += 60  # never more than the burst
    for _ in range(5):
        limits.take("k")
    with pytest.raises(ServiceError):
        limits.take("k")


def test_zero_turns_the_limits_off() -> None:
    limits = KeyLimits(rate=0, burst=1, max_streams=0, clock=Clock())
    for _ in range(10_000):
        limits.take("k")
        limits.open_stream("k")


def test_streams_are_counted_per_key_and_released() -> None:
    limits = KeyLimits(rate=0, burst=1, max_streams=2, clock=Clock())
    limits.open_stream("a")
    limits.open_stream("a")
    limits.open_stream("b")
    with pytest.raises(ServiceError) as refused:
        limits.open_stream("a")
    assert refused.value.reason == "TOO_MANY_STREAMS"
    limits.close_stream("a")
    limits.open_stream("a")
