"""Retry policy: exponential backoff with full jitter, on UNAVAILABLE only by default.

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
    max_attempts: int = 5
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 5.0
    multiplier: float = 2.0
    retry_codes: frozenset[grpc.StatusCode] = field(
        default_factory=lambda: frozenset({grpc.StatusCode.UNAVAILABLE})
    )

    def backoffs(self) -> Iterator[float]:
        """Sleep before each further attempt: random in [0, min(max, initial * multiplier^n)]."""
        ceiling = self.initial_backoff_s
        for _ in range(self.max_attempts - 1):
            yield random.uniform(0, min(self.max_backoff_s, ceiling))
            ceiling *= self.multiplier


NO_RETRY = RetryPolicy(max_attempts=1)

DEFAULT_RETRY = RetryPolicy()
