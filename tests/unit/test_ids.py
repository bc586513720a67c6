"""Server-assigned ids: UUIDv7, in the order they were made, carrying their time."""

from __future__ import annotations

import time
import uuid

from ordergate_server.domain.ids import new_id


def test_ids_are_canonical_version_7_uuids() -> None:
    for text in (new_id() for _ in range(2_000)):
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # canonical: lower case, 8-4-4-4-12
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_ids_carry_their_time_and_sort_by_it() -> None:
    before_ms = time.time_ns() // 1_000_000
    first = new_id()
    time.sleep(0.002)
    second = new_id()
    after_ms = time.time_ns() // 1_000_000
    stamp = uuid.UUID(first).int >> 80
    assert before_ms <= stamp <= after_ms
    assert first < second  # made a millisecond apart: in order as text, as in an index


def test_ids_of_the_same_millisecond_differ() -> None:
    ids = [new_id() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)
