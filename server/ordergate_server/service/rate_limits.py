"""Abuse limits per API key: a token bucket for calls, a cap on streams open at once.

Per process: with N replicas a key gets up to N times the rate (set the limits per replica).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ErrorKind, ServiceError


@dataclass
class _Bucket:
    tokens: float
    updated: float


class KeyLimits:
    """`rate` calls per second per key, with bursts of up to `burst`; at most `max_streams`
    streaming calls open per key. A zero rate or stream cap turns that limit off."""

    def __init__(
        self,
        rate: float,
        burst: int,
        max_streams: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self.max_streams = max_streams
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._streams: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str) -> None:
        """Spend one call of `key_id`'s budget, or raise RESOURCE_EXHAUSTED with the wait."""
        if self.rate <= 0:
            return
        now = self._clock()
        with self._lock:
            bucket = self._buckets.setdefault(key_id, _Bucket(float(self.burst), now))
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            # A hair of tolerance: a caller back after exactly the advised wait is served, float
            # rounding of the refill notwithstanding.
            if bucket.tokens >= 1 - 1e-9:
                bucket.tokens = max(bucket.tokens - 1, 0.0)
                return
            wait = (1 - bucket.tokens) / self.rate
        raise ServiceError(
            ErrorKind.RESOURCE_EXHAUSTED,
            "RATE_LIMITED",
            f"Too many calls with this API key: the limit is {self.rate:g} per second "
            f"(bursts of {self.burst}); retry in {wait:.2f} s.",
            metadata={"limit_per_second": f"{self.rate:g}", "burst": str(self.burst)},
            retry_after_seconds=wait,
        )

    def open_stream(self, key_id: str) -> None:
        """Count a stream as open for `key_id`, or raise RESOURCE_EXHAUSTED at the cap."""
        if self.max_streams <= 0:
            return
        with self._lock:
            open_now = self._streams.get(key_id, 0)
            if open_now < self.max_streams:
                self._streams[key_id] = open_now + 1
                return
        raise ServiceError(
            ErrorKind.RESOURCE_EXHAUSTED,
            "TOO_MANY_STREAMS",
            f"This API key already has {open_now} streams open, the most allowed; close one first.",
            metadata={"max_streams": str(self.max_streams)},
            retry_after_seconds=1.0,
        )

    def close_stream(self, key_id: str) -> None:
        if self.max_streams <= 0:
            return
        with self._lock:
            left = self._streams.get(key_id, 0) - 1
            if left > 0:
                self._streams[key_id] = left
            else:
                self._streams.pop(key_id, None)
