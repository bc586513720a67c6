"""The retry policy's backoff schedule (no server needed)."""

from __future__ import annotations

from ordergate import NO_RETRY, RetryPolicy


def test_backoff_grows_is_jittered_and_bounded() -> None:
    policy = RetryPolicy(max_attempts=6, initial_backoff_s=0.2, max_backoff_s=1.0, multiplier=2)
    schedules = [list(policy.backoffs()) for _ in range(50)]
    assert all(len(s) == 5 for s in schedules)  # five sleeps between six attempts
    steps = [0.2, 0.4, 0.8, 1.0, 1.0]
    for schedule in schedules:
        for sleep, step in zip(schedule, steps, strict=True):
            assert step / 2 <= sleep <= step
    assert len({tuple(s) for s in schedules}) > 1  # jitter: clients do not retry in step


def test_no_retry_means_one_attempt() -> None:
    assert list(NO_RETRY.backoffs()) == []
