"""Retry policy: exponential backoff with jitter, on UNAVAILABLE only by default.

Only calls that are safe to repeat are ever retried: reads, and SubmitOrder / SubmitOrders,
because the SDK always sends a request_id and the server answers a repeated request_id with the
original result instead of a second order.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc


class _Default(enum.Enum):
    DEFAULT = "DEFAULT"


DEFAULT = _Default.DEFAULT
"""Use the client's configured value (for `timeout` and `retry`)."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    multiplier: float = 2.0
    retry_codes: frozenset[grpc.StatusCode] = field(
        default_factory=lambda: frozenset({grpc.StatusCode.UNAVAILABLE})
    )

    def backoffs(self) -> Iterator[float]:
        """Sleep before each further attempt: half the step for sure, half at random, where the
        step is min(max, initial * multiplier^n). The sure half keeps retries from giving up
        before a restarting server or a reconnecting channel is back (0.2 + 0.4 + ... >= 3 s
        over the default six attempts); the random half keeps clients from retrying in step."""
        step = self.initial_backoff_s
        for _ in range(self.max_attempts - 1):
            bounded = min(self.max_backoff_s, step)
            yield bounded / 2 + random.uniform(0, bounded / 2)
            step *= self.multiplier


NO_RETRY = RetryPolicy(max_attempts=1)

DEFAULT_RETRY = RetryPolicy()
