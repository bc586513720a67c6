"""AdjustStock and RecordStockCount (manager): audited, idempotent, raising OVERSOLD alerts."""

from __future__ import annotations

import uuid

import grpc
import pytest

from ordergate.v1 import inventory_service_pb2 as pb
from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as opb
from ordergate.v1.inventory_service_pb2_grpc import InventoryServiceStub
from ordergate_server.storage import Database, audit

from ..support import Api, Keys, auth, order_xml, rich_error
from .stock import stock_row


def adjust(
    api: Api,
    key: str,
    delta: int,
    *,
    code: str = "SKU-1001",
    location: str = "STORE-BER",
    request_id: str | None = None,
    reason: str = "POS_SALE",
) -> pb.AdjustStockResponse:
    return InventoryServiceStub(api.channel).AdjustStock(
        pb.AdjustStockRequest(
            request_id=request_id or str(uuid.uuid4()),
            code=code,
            location_code=location,
            delta=delta,
            reason_code=reason,
            note="till 3",
        ),
        metadata=auth(key),
    )


def count(
    api: Api,
    key: str,
    counted: int,
    *,
    code: str = "SKU-1001",
    location: str = "WH-MAIN",
    request_id: str | None = None,
) -> pb.RecordStockCountResponse:
    return InventoryServiceStub(api.channel).RecordStockCount(
        pb.RecordStockCountRequest(
            request_id=request_id or str(uuid.uuid4()),
            code=code,
            location_code=location,
            counted=counted,
            reason="cycle count",
        ),
        metadata=auth(key),
    )


def test_a_count_wins_and_its_variance_is_audited(api: Api, keys: Keys, db: Database) -> None:
    reply = count(api, keys.manager, 497, code="CUP-SET-6")  # an alias names the product
    assert (reply.level.on_hand, reply.variance) == (497, -3)
    assert stock_row(db, "SKU-1001") == (497, 0)
    with db.reader() as conn:
        [entry] = audit.entries_for(conn, "stock/SKU-1001@WH-MAIN")
    assert (entry.actor, entry.role, entry.action, entry.reason) == (
        "floor-manager",
        "manager",
        "stock.count",
        "cycle count",
    )
    assert (entry.before["on_hand"], entry.after["on_hand"]) == (500, 497)


def test_a_retried_correction_changes_nothing_more(api: Api, keys: Keys, db: Database) -> None:
    request_id = str(uuid.uuid4())
    first = adjust(api, keys.manager, -2, request_id=request_id)
    again = adjust(api, keys.manager, -2, request_id=request_id)
    assert not first.replayed
    assert again.replayed
    assert again.level == first.level
    assert stock_row(db, "SKU-1001", "STORE-BER") == (10, 0)


def test_a_store_sale_of_reserved_stock_sends_the_newest_orders_back_as_stock_short(
    api: Api, keys: Keys, db: Database
) -> None:
    # The web takes all 12 cups at the store in three orders (the warehouse is emptied first).
    count(api, keys.manager, 0)
    first = api.submit(order_xml("OS-1", [("SKU-1001", 6)])).order
    second = api.submit(order_xml("OS-2", [("SKU-1001", 4)])).order
    third = api.submit(order_xml("OS-3", [("SKU-1001", 2)])).order
    assert {o.allocation_location for o in (first, second, third)} == {"STORE-BER"}

    sale = adjust(api, keys.manager, -5)  # a walk-in customer buys 5 at the till
    # 5 short: the newest orders are named until they cover it (OS-3 has 2, OS-2 has 4); they go
    # back to the exception queue, their 6 released: 7 on hand, 6 allocated (OS-1's).
    assert list(sale.oversold_order_ids) == [third.id, second.id]
    assert (sale.level.on_hand, sale.level.allocated, sale.level.available) == (7, 6, 1)
    got = api.orders.GetOrder(opb.GetOrderRequest(id=third.id), metadata=auth(keys.shop)).order
    assert got.state == order_pb2.ORDER_STATE_ON_HOLD
    assert [r.code for r in got.hold_reasons] == ["STOCK_SHORT"]
    assert got.stock_hold
    assert not got.allocation_location
    assert got.events[-1].type == "STOCK_SHORT"
    assert "STORE-BER has 5 fewer SKU-1001" in got.events[-1].detail
    untouched = api.orders.GetOrder(
        opb.GetOrderRequest(id=first.id), metadata=auth(keys.shop)
    ).order
    assert [e.type for e in untouched.events] == ["SUBMITTED"]


@pytest.mark.parametrize(
    ("kwargs", "code", "reason"),
    [
        ({"delta": 0}, grpc.StatusCode.INVALID_ARGUMENT, "DELTA_ZERO"),
        ({"delta": 1, "reason": " "}, grpc.StatusCode.INVALID_ARGUMENT, "REASON_MISSING"),
        ({"delta": 1, "code": "NOPE"}, grpc.StatusCode.NOT_FOUND, "PRODUCT_NOT_FOUND"),
        ({"delta": 1, "code": "KIT-1"}, grpc.StatusCode.FAILED_PRECONDITION, "BUNDLE_HAS_NO_STOCK"),
        ({"delta": 1, "location": "MOON"}, grpc.StatusCode.INVALID_ARGUMENT, "LOCATION_UNKNOWN"),
        ({"delta": 1, "request_id": "x"}, grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_INVALID"),
    ],
)
def test_bad_corrections_are_refused(
    api: Api, keys: Keys, kwargs: dict[str, object], code: grpc.StatusCode, reason: str
) -> None:
    options = dict(kwargs)  # the parameters are shared by both databases' runs
    delta = options.pop("delta")
    with pytest.raises(grpc.RpcError) as caught:
        adjust(api, keys.manager, delta, **options)  # type: ignore[arg-type]
    error = rich_error(caught.value)
    assert (error.code, error.reason) == (code, reason)
