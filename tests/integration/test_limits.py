"""Limits on a real server: per key, the call rate (RESOURCE_EXHAUSTED with RetryInfo) and the
number of streams open at once; per process, the calls in flight (UNAVAILABLE, SERVER_BUSY)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from ordergate.v1 import order_pb2, order_service_pb2_grpc
from ordergate.v1 import order_service_pb2 as pb
from ordergate_server.storage import Database

from ..support import (
    Api,
    Keys,
    ServerThread,
    auth,
    order_xml,
    rich_error,
    scrape,
    wait_until,
    writes_held,
)


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


def _wait_for_in_flight(server: ServerThread, calls: int) -> None:
    """Until /metrics shows `calls` in flight (within 10 s). Read over HTTP: a probing RPC
    would take a slot itself."""
    wait_until(
        lambda: scrape(server)[("ordergate_rpcs_in_flight", ())] == calls,
        f"{calls} calls in flight",
    )


def _orders_sent(api: Api, prefix: str) -> list[Any]:
    """Three orders sent without waiting for their answers (PREFIX-0..2); their futures."""
    return [
        api.orders.SubmitOrder.future(
            pb.SubmitOrderRequest(
                request_id=str(uuid.uuid4()), order_xml=order_xml(f"{prefix}-{n}").encode()
            ),
            metadata=auth(api.key),
            timeout=30,
        )
        for n in range(3)
    ]


def test_calls_past_the_cap_in_flight_are_refused_as_busy_and_lose_nothing(
    db: Database, keys: Keys
) -> None:
    server = ServerThread(db, max_concurrent_rpcs=3, metrics_listen="127.0.0.1:0")
    late = str(uuid.uuid4())
    try:
        with grpc.insecure_channel(server.target) as channel:
            api = Api(channel, keys.shop)
            with writes_held(db):
                # All three in flight, waiting for the write lock.
                waiting = _orders_sent(api, "BUSY")

                _wait_for_in_flight(server, 3)
                with pytest.raises(grpc.RpcError) as refused_read:
                    _list(channel, keys.shop)
                busy = rich_error(refused_read.value)
                assert busy.code == grpc.StatusCode.UNAVAILABLE  # retried by every gRPC client
                assert busy.reason == "SERVER_BUSY"
                assert busy.metadata == {"max_concurrent_rpcs": "3"}
                with pytest.raises(grpc.RpcError) as refused_order:
                    api.submit(order_xml("BUSY-late"), request_id=late)
                assert rich_error(refused_order.value).reason == "SERVER_BUSY"
                assert _retry_delay(refused_order.value) > 0

                # Load balancers still get an answer; a watch (no work while it waits) opens.
                health = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
                assert health.status == health_pb2.HealthCheckResponse.SERVING
                watch: Any = api.orders.WatchOrderEvents(
                    pb.WatchOrderEventsRequest(), metadata=auth(keys.manager)
                )
                time.sleep(0.3)
                assert watch.running()
                watch.cancel()

            answers = [call.result() for call in waiting]  # the lock is free: they complete
            _wait_for_in_flight(server, 0)  # their slots are free again
            assert all(a.order.state == order_pb2.ORDER_STATE_ACCEPTED for a in answers)
            listed = api.orders.ListOrders(pb.ListOrdersRequest(), metadata=auth(keys.shop))
            # The refused submission was not stored; sent again, it is, once.
            assert sorted(o.client_order_id for o in listed.orders) == [
                "BUSY-0",
                "BUSY-1",
                "BUSY-2",
            ]
            again = api.submit(order_xml("BUSY-late"), request_id=late)
            assert again.order.state == order_pb2.ORDER_STATE_ACCEPTED
    finally:
        server.stop()


def test_a_cap_of_zero_refuses_nothing(db: Database, keys: Keys) -> None:
    """ORDERGATE_MAX_CONCURRENT_RPCS=0 turns the cap off: with calls waiting on the write lock,
    another call is still served."""
    server = ServerThread(db, max_concurrent_rpcs=0, metrics_listen="127.0.0.1:0")
    try:
        with grpc.insecure_channel(server.target) as channel:
            api = Api(channel, keys.shop)
            with writes_held(db):
                waiting = _orders_sent(api, "OPEN")
                _wait_for_in_flight(server, 3)  # still counted, for /metrics
                _list(channel, keys.shop)
            assert all(
                call.result().order.state == order_pb2.ORDER_STATE_ACCEPTED for call in waiting
            )
    finally:
        server.stop()


def test_a_burst_of_calls_is_served_or_refused_as_busy_never_cancelled(
    db: Database, keys: Keys
) -> None:
    """3,000 calls at once on one connection, three times what gRPC holds for a process by
    default before it answers CANCELLED: each is served, or refused SERVER_BUSY (retried)."""
    server = ServerThread(db, rate_limit_per_second=0, max_concurrent_rpcs=64)

    async def burst() -> Counter[str]:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = order_service_pb2_grpc.OrderServiceStub(channel)

            async def one() -> str:
                try:
                    await stub.ListOrders(
                        pb.ListOrdersRequest(page_size=1), metadata=auth(keys.shop), timeout=120
                    )
                except grpc.aio.AioRpcError as error:
                    detailed = rpc_status.from_call(error) is not None  # type: ignore[arg-type]
                    reason = rich_error(error).reason if detailed else "(no details)"
                    return f"{error.code().name} {reason}"
                return "OK"

            return Counter(await asyncio.gather(*(one() for _ in range(3000))))

    try:
        answers = asyncio.run(burst())
    finally:
        server.stop()
    assert set(answers) <= {"OK", "UNAVAILABLE SERVER_BUSY"}, answers
    assert answers["OK"] > 0
