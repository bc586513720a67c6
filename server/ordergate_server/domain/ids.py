"""Ids the server assigns (orders, events, submissions, alerts): time-ordered UUIDs.

A UUIDv7 (RFC 9562) starts with the Unix time in milliseconds, then 74 random bits. Each id
table has a unique index on its id; random (v4) ids land on a random page of that index, so
every order of a batch dirtied pages all over three indexes, each written to the log at
commit, and as the tables grow those pages stop fitting in cache. Ids made one after another
land next to each other instead. bench/README.md has the measurement.

The ids stay unguessable enough to be no help to an attacker (74 random bits a millisecond),
though nothing relies on that: every read is checked against the caller's access. They do tell
when they were made, as the order's created_at does.
"""

from __future__ import annotations

import os
import time

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0b10 << 62
_LOW_62 = (1 << 62) - 1


def new_id() -> str:
    """A new UUIDv7 in its canonical text form (8-4-4-4-12 lower-case hex)."""
    random_bits = int.from_bytes(os.urandom(10)) >> 6  # 74 bits
    value = (
        (time.time_ns() // 1_000_000) << 80
        | _VERSION_7
        | (random_bits >> 62) << 64  # 12 bits: rand_a
        | _VARIANT_RFC
        | random_bits & _LOW_62  # 62 bits: rand_b
    )
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
