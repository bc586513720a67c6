"""Datetimes into protobuf Timestamps exactly as protobuf's own FromDatetime puts them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from ordergate_server.api.convert import timestamp


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 24, 9, 30, 15, 123456, tzinfo=UTC),
        datetime(2026, 11, 24, 9, 30, tzinfo=UTC),  # a whole second
        datetime(2026, 6, 1, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2026, 6, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # before the epoch
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 11, 24, 9, 30, 15, 1),  # naive: UTC, as FromDatetime takes it
    ],
)
def testtimestamp_matches_protobufs_own_conversion(value: datetime) -> None:
    expected = Timestamp()
    expected.FromDatetime(value)
    assert timestamp(value) == expected


def test_no_datetime_is_notimestamp() -> None:
    assert timestamp(None) is None
