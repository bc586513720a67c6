"""Every request field within its range, and every answer within what a client takes: tried as an
attacker with one ordinary key would, against a real server on SQLite and PostgreSQL.

Out-of-range timestamps and durations, enum numbers the contract does not define and text past
its limit are INVALID_ARGUMENT naming the field (they were INTERNAL, or silently "all states",
or a 1 MB note stored); errors never repeat client input unbounded and always reach a client
with gRPC's default limits; a list page never outgrows the client's receive limit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from ordergate.v1 import (
    audit_service_pb2,
    audit_service_pb2_grpc,
    exception_queue_service_pb2,
    exception_queue_service_pb2_grpc,
    fulfillment_service_pb2,
    fulfillment_service_pb2_grpc,
    inventory_service_pb2,
    inventory_service_pb2_grpc,
    order_pb2,
    order_service_pb2,
    pricing_service_pb2,
    pricing_service_pb2_grpc,
)
from ordergate_server.storage import Database

from ..support import Api, Keys, RichError, auth, order_xml, rich_error
from .stock import count


def _refusal(call: Callable[..., Any], request: Message, key: str) -> RichError:
    with pytest.raises(grpc.RpcError) as refused:
        call(request, metadata=auth(key), timeout=30)
    return rich_error(refused.value)


@pytest.fixture
def stubs(api: Api) -> dict[str, Any]:
    return {
        "orders": api.orders,
        "audit": audit_service_pb2_grpc.AuditServiceStub(api.channel),
        "queue": exception_queue_service_pb2_grpc.ExceptionQueueServiceStub(api.channel),
        "fulfillment": fulfillment_service_pb2_grpc.FulfillmentServiceStub(api.channel),
        "inventory": inventory_service_pb2_grpc.InventoryServiceStub(api.channel),
        "pricing": pricing_service_pb2_grpc.PricingServiceStub(api.channel),
    }


_EARLY = Timestamp(seconds=-(10**12))  # before year 1
_LATE = Timestamp(seconds=10**12)  # after year 9999
_BAD_NANOS = Timestamp(seconds=0, nanos=-1)


@pytest.mark.parametrize(
    ("stub", "rpc", "role", "request_", "reason", "field"),
    [
        (
            "audit",
            "ListAuditEntries",
            "manager",
            audit_service_pb2.ListAuditEntriesRequest(start_time=_EARLY),
            "TIMESTAMP_INVALID",
            "start_time",
        ),
        (
            "audit",
            "ListAuditEntries",
            "manager",
            audit_service_pb2.ListAuditEntriesRequest(end_time=_LATE),
            "TIMESTAMP_INVALID",
            "end_time",
        ),
        (
            "pricing",
            "GetCustomerPrices",
            "shop",
            pricing_service_pb2.GetCustomerPricesRequest(
                customer_account="C-1001",
                items=[pricing_service_pb2.PriceQuery(code="SKU-1001", quantity=1)],
                price_time=_BAD_NANOS,
            ),
            "TIMESTAMP_INVALID",
            "price_time",
        ),
        (
            "queue",
            "ListHeldOrders",
            "manager",
            exception_queue_service_pb2.ListHeldOrdersRequest(min_age=Duration(seconds=-1)),
            "DURATION_INVALID",
            "min_age",
        ),
        (
            "queue",
            "ListHeldOrders",
            "manager",
            # 9,000 years: a valid Duration, but "now - min_age" is before year 1
            exception_queue_service_pb2.ListHeldOrdersRequest(
                min_age=Duration(seconds=9_000 * 31_556_952)
            ),
            "DURATION_INVALID",
            "min_age",
        ),
        (
            "fulfillment",
            "TransitionOrder",
            "warehouse",
            fulfillment_service_pb2.TransitionOrderRequest(
                id="x", state=order_pb2.ORDER_STATE_DELIVERED, delivery_time=_LATE
            ),
            "TIMESTAMP_INVALID",
            "delivery_time",
        ),
        (
            "orders",
            "ListOrders",
            "admin",
            order_service_pb2.ListOrdersRequest(state=99),  # type: ignore[arg-type]
            "ENUM_VALUE_UNKNOWN",
            "state",
        ),
        (
            "fulfillment",
            "TransitionOrder",
            "warehouse",
            fulfillment_service_pb2.TransitionOrderRequest(id="x", state=-3),  # type: ignore[arg-type]
            "ENUM_VALUE_UNKNOWN",
            "state",
        ),
        (
            "orders",
            "GetOrder",
            "shop",
            order_service_pb2.GetOrderRequest(id="x" * 10_000),
            "TEXT_TOO_LONG",
            "id",
        ),
        (
            "inventory",
            "GetStockLevels",
            "shop",
            inventory_service_pb2.GetStockLevelsRequest(
                codes=["SKU-1001"], location_codes=[f"L-{i}" for i in range(100_000)]
            ),
            "TOO_MANY_ITEMS",
            "location_codes",
        ),
        (
            "inventory",
            "WatchStockLevels",
            "shop",
            inventory_service_pb2.WatchStockLevelsRequest(codes=["SKU-1001"], after_change_id=-5),
            "VALUE_OUT_OF_RANGE",
            "after_change_id",
        ),
    ],
)
def test_a_field_out_of_its_range_is_a_bad_request_naming_it(
    stubs: dict[str, Any],
    keys: Keys,
    stub: str,
    rpc: str,
    role: str,
    request_: Message,
    reason: str,
    field: str,
) -> None:
    call = getattr(stubs[stub], rpc)
    if rpc.startswith("Watch"):
        with pytest.raises(grpc.RpcError) as refused:
            next(call(request_, metadata=auth(getattr(keys, role)), timeout=30))
        error = rich_error(refused.value)
    else:
        error = _refusal(call, request_, getattr(keys, role))
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
    assert [f for f, _ in error.field_violations] == [field]
    assert "x" * 100 not in error.message  # nothing of a long value is repeated


def test_a_note_is_held_to_its_limit_and_a_refused_one_changes_nothing(
    stubs: dict[str, Any], keys: Keys, db: Database
) -> None:
    def adjust(note: str) -> Any:
        return stubs["inventory"].AdjustStock(
            inventory_service_pb2.AdjustStockRequest(
                request_id=str(uuid.uuid4()),
                code="SKU-1001",
                location_code="WH-MAIN",
                delta=1,
                reason_code="FOUND",
                note=note,
            ),
            metadata=auth(keys.manager),
            timeout=30,
        )

    changes = count(db, "stock_changes")
    with pytest.raises(grpc.RpcError) as refused:
        adjust("n" * 1_000_000)
    error = rich_error(refused.value)
    assert (error.reason, error.field_violations) == (
        "TEXT_TOO_LONG",
        [("note", "at most 2,000 characters")],
    )
    assert count(db, "stock_changes") == changes
    assert adjust("n" * 2_000).level.on_hand == 501  # at the limit: taken


def test_unknown_locations_are_named_a_few_and_counted(stubs: dict[str, Any], keys: Keys) -> None:
    unknown = [f"{'é' * 60}{i:04d}" for i in range(1_000)]
    error = _refusal(
        stubs["inventory"].GetStockLevels,
        inventory_service_pb2.GetStockLevelsRequest(codes=["SKU-1001"], location_codes=unknown),
        keys.shop,
    )
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "LOCATION_UNKNOWN")
    assert error.message.startswith("1,000 unknown location(s): 'éééééééééééééééééééé'… (64 ")
    assert error.message.endswith(" and 997 more.")
    assert error.field_violations == [("location_codes", "1,000 unknown")]
    assert len(error.message.encode()) <= 400


def _many_line_order(n: int) -> str:
    """A held order as large as the native format allows: 1,000 lines of unknown 64-character
    SKUs (about 100 KB as a message, with its 101 hold reasons)."""
    lines = [(f"{'Z' * 58}{i:06d}", 1) for i in range(1_000)]
    return order_xml(f"BIG-{n}", lines)


def test_a_page_of_large_orders_stays_within_what_a_client_receives(api: Api, keys: Keys) -> None:
    """Fifty of these at the default page size were 5 MB: a default client (4 MiB) got
    RESOURCE_EXHAUSTED for ListOrders and ListHeldOrders. A page now stops at 2 MiB, and its
    token resumes where it stopped, so every order is listed exactly once."""
    ids = {api.submit(_many_line_order(n)).order.id for n in range(50)}
    queue = exception_queue_service_pb2_grpc.ExceptionQueueServiceStub(api.channel)

    def every_page(call: Callable[..., Any], request: Any, key: str) -> tuple[list[str], int]:
        listed: list[str] = []
        pages, token = 0, ""
        while True:
            page = call(request(page_token=token), metadata=auth(key), timeout=60)
            assert page.ByteSize() <= 4 * 1024 * 1024
            listed += [order.id for order in page.orders]
            pages, token = pages + 1, page.next_page_token
            if not token:
                return listed, pages

    listed, pages = every_page(
        api.orders.ListOrders, order_service_pb2.ListOrdersRequest, keys.shop
    )
    assert sorted(listed) == sorted(ids)
    assert pages > 1
    held, pages = every_page(
        queue.ListHeldOrders, exception_queue_service_pb2.ListHeldOrdersRequest, keys.manager
    )
    assert sorted(held) == sorted(ids)
    assert pages > 1
