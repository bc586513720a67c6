"""Per-key abuse limits on a real server: the call rate (RESOURCE_EXHAUSTED with RetryInfo) and
the number of streams open at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1 import order_service_pb2_grpc
from ordergate_server.storage import Database

from ..support import Keys, ServerThread, auth, rich_error


def _list(channel: grpc.Channel, key: str) -> None:
    order_service_pb2_grpc.OrderServiceStub(channel).ListOrders(
        pb.ListOrdersRequest(), metadata=auth(key), timeout=10
    )


def _retry_delay(error: grpc.RpcError) -> float:
    status: status_pb2.Status | None = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return float(info.retry_delay.ToTimedelta().total_seconds())
    raise AssertionError("no RetryInfo detail")


@pytest.fixture
def limited(db: Database, keys: Keys) -> Iterator[ServerThread]:
    server = ServerThread(db, rate_limit_per_second=4.0, rate_limit_burst=3, max_streams_per_key=2)
    yield server
    server.stop()


def test_a_key_over_its_rate_is_told_when_to_retry(limited: ServerThread, keys: Keys) -> None:
    with grpc.insecure_channel(limited.target) as channel:
        for _ in range(3):  # the burst
            _list(channel, keys.shop)
        with pytest.raises(grpc.RpcError) as refused:
            _list(channel, keys.shop)

        error = rich_error(refused.value)
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.reason == "RATE_LIMITED"
        assert error.metadata["limit_per_second"] == "4"
        delay = _retry_delay(refused.value)
        assert 0 < delay <= 0.25 + 0.01  # one token at 4 per second

        _list(channel, keys.other_shop)  # another key has its own budget
        time.sleep(delay + 0.02)
        _list(channel, keys.shop)  # after the advised wait, the key is served again


def test_a_key_may_hold_only_so_many_streams(limited: ServerThread, keys: Keys) -> None:
    with grpc.insecure_channel(limited.target) as channel:
        stub = order_service_pb2_grpc.OrderServiceStub(channel)

        def watch(key: str) -> Any:  # a call that is both an iterator and a grpc.Future
            return stub.WatchOrderEvents(pb.WatchOrderEventsRequest(), metadata=auth(key))

        first, second = watch(keys.manager), watch(keys.manager)
        time.sleep(0.3)  # both are open on the server
        third = watch(keys.manager)
        with pytest.raises(grpc.RpcError) as refused:
            next(iter(third))
        assert rich_error(refused.value).reason == "TOO_MANY_STREAMS"
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        other_key = watch(keys.admin)  # the cap is per key
        time.sleep(0.3)
        assert other_key.running()

        first.cancel()
        time.sleep(0.3)  # the server has seen the cancellation and freed the slot
        fourth = watch(keys.manager)
        time.sleep(0.3)
        assert fourth.running()
        for stream in (second, other_key, fourth):
            stream.cancel()
