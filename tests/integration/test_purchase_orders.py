"""Purchase orders and receipts, on SQLite and PostgreSQL, against a real server: what is on
order shows in stock levels with its earliest date; receipts raise sellable stock (damaged
pieces go to quarantine, never allocated) in the same transaction, record variances with who and
why, re-check held orders, and race submits without overselling or losing a piece."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from sqlalchemy import func, select

from ordergate.v1 import inbound_service_pb2 as ibp
from ordergate.v1 import inventory_service_pb2 as ipb
from ordergate.v1 import order_pb2
from ordergate.v1.inbound_service_pb2_grpc import InboundServiceStub
from ordergate.v1.inventory_service_pb2_grpc import InventoryServiceStub
from ordergate_server.storage import Database, audit
from ordergate_server.storage import tables as t

from ..support import Api, Keys, auth, order_xml, rich_error
from .goods_in import create_po, get_order, level, receive, until_state
from .stock import stock_row

ACCEPTED, ON_HOLD = order_pb2.ORDER_STATE_ACCEPTED, order_pb2.ORDER_STATE_ON_HOLD
PO = ibp
HANDLE = "Fragile: porcelain, this side up"  # SKU-2001 needs special-handling instructions


def test_what_is_on_order_shows_per_location_with_the_earliest_date(api: Api, keys: Keys) -> None:
    create_po(api, keys.admin, "PO-1", (("SKU-2001", 10, "2026-12-20"),))
    create_po(
        api, keys.manager, "PO-2", (("SKU-2001", 4, "2026-12-15"), ("SKU-1002", 7, "2027-01-05"))
    )
    create_po(api, keys.admin, "PO-3", (("SKU-2001", 3, "2026-12-01"),), location="STORE-BER")
    main = level(api, keys.storefront, "SKU-2001")
    assert (main.on_hand, main.on_order, main.next_expected_date) == (25, 14, "2026-12-15")
    store = level(api, keys.storefront, "SKU-2001", "STORE-BER")
    assert (store.on_hand, store.on_order, store.next_expected_date) == (0, 3, "2026-12-01")
    total = (
        InventoryServiceStub(api.channel)
        .GetStockLevels(ipb.GetStockLevelsRequest(codes=["SKU-2001"]), metadata=auth(keys.shop))
        .items[0]
        .total
    )
    assert (total.on_order, total.next_expected_date, total.available) == (17, "2026-12-01", 25)


def test_the_same_purchase_order_again_is_answered_and_other_content_refused(
    api: Api, keys: Keys
) -> None:
    first = create_po(api, keys.admin)
    again = create_po(api, keys.admin)
    assert (first.replayed, again.replayed) == (False, True)
    assert level(api, keys.admin, "SKU-2001").on_order == 10  # counted once
    with pytest.raises(grpc.RpcError) as refused:
        create_po(api, keys.admin, lines=(("SKU-2001", 11, "2026-12-20"),))
    assert (refused.value.code(), rich_error(refused.value).reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "PURCHASE_ORDER_EXISTS",
    )


def test_partial_receipts_damaged_to_quarantine_then_received_in_full(
    api: Api, keys: Keys, db: Database
) -> None:
    create_po(
        api, keys.admin, lines=(("SKU-2001", 10, "2026-12-20"), ("SKU-1003", 5, "2026-12-22"))
    )
    first = receive(api, keys.warehouse, "PO-1", {1: (6, 1)})
    assert first.purchase_order.state == PO.PURCHASE_ORDER_STATE_PARTLY_RECEIVED
    [line1, line2] = first.purchase_order.lines
    assert (line1.received_quantity, line1.damaged_quantity, line1.open_quantity) == (6, 1, 3)
    assert line2.open_quantity == 5
    stock = level(api, keys.warehouse, "SKU-2001")
    # Good pieces are sellable; the damaged one is on hand in quarantine, never available.
    assert (stock.on_hand, stock.quarantine, stock.available, stock.on_order) == (31, 1, 31, 3)
    [damaged] = first.purchase_order.variances
    assert (damaged.kind, damaged.quantity, damaged.actor) == ("DAMAGED", 1, "dc-scanner")

    second = receive(api, keys.warehouse, "PO-1", {1: (3, 0), 2: (5, 0)})
    assert second.purchase_order.state == PO.PURCHASE_ORDER_STATE_RECEIVED
    assert [line.open_quantity for line in second.purchase_order.lines] == [0, 0]
    assert level(api, keys.warehouse, "SKU-2001").on_order == 0
    got = (
        InboundServiceStub(api.channel)
        .GetPurchaseOrder(
            ibp.GetPurchaseOrderRequest(po_number="PO-1"), metadata=auth(keys.finance)
        )
        .purchase_order
    )
    assert [len(r.lines) for r in got.receipts] == [1, 2]
    with db.reader() as conn:
        kinds = conn.execute(
            select(t.stock_changes.c.kind, t.stock_changes.c.quarantine_delta).where(
                t.stock_changes.c.kind == "RECEIPT"
            )
        ).all()
        entries = audit.entries_for(conn, "purchase_order/PO-1")
    assert sorted(kinds) == [("RECEIPT", 0), ("RECEIPT", 0), ("RECEIPT", 1)]
    assert [e.action for e in entries] == [
        "purchase_order.create",
        "purchase_order.receipt",
        "purchase_order.receipt",
    ]


def test_an_over_receipt_needs_a_reason_and_is_a_variance(api: Api, keys: Keys) -> None:
    create_po(api, keys.admin)
    with pytest.raises(grpc.RpcError) as refused:
        receive(api, keys.warehouse, "PO-1", {1: (12, 0)})
    error = rich_error(refused.value)
    assert (error.code, error.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "VARIANCE_REASON_MISSING",
    )
    assert error.field_violations[0][0] == "lines[0].variance_reason"
    assert level(api, keys.admin, "SKU-2001").on_hand == 25  # nothing applied

    done = receive(api, keys.warehouse, "PO-1", {1: (12, 0)}, reason="supplier sent a full case")
    [over] = done.purchase_order.variances
    assert (over.kind, over.quantity, over.reason, over.actor) == (
        "OVER",
        2,
        "supplier sent a full case",
        "dc-scanner",
    )
    assert over.receipt_id == done.receipt.receipt_id
    assert level(api, keys.admin, "SKU-2001").on_hand == 37


def test_closing_short_records_the_shortfall_and_stops_receipts(api: Api, keys: Keys) -> None:
    create_po(api, keys.admin)
    receive(api, keys.warehouse, "PO-1", {1: (4, 0)})
    stub = InboundServiceStub(api.channel)
    with pytest.raises(grpc.RpcError) as no_reason:
        stub.ClosePurchaseOrder(
            ibp.ClosePurchaseOrderRequest(po_number="PO-1"), metadata=auth(keys.admin)
        )
    assert rich_error(no_reason.value).reason == "REASON_MISSING"
    closed = stub.ClosePurchaseOrder(
        ibp.ClosePurchaseOrderRequest(po_number="PO-1", reason="supplier out of stock"),
        metadata=auth(keys.admin),
    ).purchase_order
    assert closed.state == PO.PURCHASE_ORDER_STATE_CLOSED
    [under] = closed.variances
    assert (under.kind, under.quantity, under.reason) == ("UNDER", 6, "supplier out of stock")
    assert level(api, keys.admin, "SKU-2001").on_order == 0
    with pytest.raises(grpc.RpcError) as late:
        receive(api, keys.warehouse, "PO-1", {1: (1, 0)})
    assert (late.value.code(), rich_error(late.value).reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "PURCHASE_ORDER_NOT_OPEN",
    )
    listed = stub.ListPurchaseOrders(
        ibp.ListPurchaseOrdersRequest(state=PO.PURCHASE_ORDER_STATE_CLOSED),
        metadata=auth(keys.operations),
    )
    assert [o.po_number for o in listed.purchase_orders] == ["PO-1"]


def test_a_retried_receipt_is_applied_once(api: Api, keys: Keys) -> None:
    create_po(api, keys.admin)
    request_id = str(uuid.uuid4())
    first = receive(api, keys.warehouse, "PO-1", {1: (5, 0)}, request_id=request_id)
    again = receive(api, keys.warehouse, "PO-1", {1: (5, 0)}, request_id=request_id)
    assert (first.replayed, again.replayed) == (False, True)
    assert again.receipt.receipt_id == first.receipt.receipt_id
    assert level(api, keys.admin, "SKU-2001").on_hand == 30


def test_a_receipt_releases_an_order_held_for_stock(api: Api, keys: Keys) -> None:
    held = api.submit(order_xml("WAITS", [("SKU-2001", 30)], special_handling=HANDLE)).order
    assert held.state == ON_HOLD
    create_po(api, keys.admin)
    receive(api, keys.warehouse, "PO-1", {1: (5, 0)})
    until_state(api, keys.shop, held.id, ACCEPTED)
    assert level(api, keys.admin, "SKU-2001").allocated == 30


def test_quarantine_is_never_allocated(api: Api, keys: Keys) -> None:
    create_po(api, keys.admin)
    receive(api, keys.warehouse, "PO-1", {1: (0, 10)}, reason="water damage")
    stock = level(api, keys.admin, "SKU-2001")
    assert (stock.on_hand, stock.quarantine, stock.available) == (25, 10, 25)
    assert (
        api.submit(order_xml("TOO-MANY", [("SKU-2001", 30)], special_handling=HANDLE)).order.state
        == ON_HOLD
    )
    assert (
        api.submit(order_xml("FITS", [("SKU-2001", 25)], special_handling=HANDLE)).order.state
        == ACCEPTED
    )


def test_corrections_and_counts_name_the_bucket(api: Api, keys: Keys, db: Database) -> None:
    stub = InventoryServiceStub(api.channel)
    added = stub.AdjustStock(
        ipb.AdjustStockRequest(
            request_id=str(uuid.uuid4()),
            code="SKU-2001",
            location_code="WH-MAIN",
            delta=4,
            reason_code="RETURNED_UNCHECKED",
            bucket=ipb.STOCK_BUCKET_QUARANTINE,
        ),
        metadata=auth(keys.manager),
    )
    assert (added.level.on_hand, added.level.quarantine, added.level.available) == (25, 4, 25)
    counted = stub.RecordStockCount(
        ipb.RecordStockCountRequest(
            request_id=str(uuid.uuid4()),
            code="SKU-2001",
            location_code="WH-MAIN",
            counted=1,
            reason="quarantine shelf count",
            bucket=ipb.STOCK_BUCKET_QUARANTINE,
        ),
        metadata=auth(keys.manager),
    )
    assert (counted.variance, counted.level.quarantine, counted.level.on_hand) == (-3, 1, 25)
    with pytest.raises(grpc.RpcError) as below_zero:
        stub.AdjustStock(
            ipb.AdjustStockRequest(
                request_id=str(uuid.uuid4()),
                code="SKU-2001",
                location_code="WH-MAIN",
                delta=-2,
                reason_code="LOST",
                bucket=ipb.STOCK_BUCKET_QUARANTINE,
            ),
            metadata=auth(keys.manager),
        )
    assert rich_error(below_zero.value).reason == "VALUE_OUT_OF_RANGE"
    with db.reader() as conn:
        entries = audit.entries_for(conn, "stock/SKU-2001@WH-MAIN")
    assert [e.after["bucket"] for e in entries] == ["QUARANTINE", "QUARANTINE"]


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({"lines": (("NOPE", 1, "2026-12-20"),)}, "PRODUCT_NOT_FOUND", "lines[0].code"),
        ({"lines": (("KIT-1", 1, "2026-12-20"),)}, "BUNDLE_HAS_NO_STOCK", "lines[0].code"),
        ({"lines": (("SKU-2001", 1, "20.12.2026"),)}, "DATE_INVALID", "lines[0].expected_date"),
        ({"lines": (("SKU-2001", 0, "2026-12-20"),)}, "QUANTITY_INVALID", "lines[0].quantity"),
        (
            {"lines": (("SKU-2001", 2**40, "2026-12-20"),)},
            "VALUE_OUT_OF_RANGE",
            "lines[0].quantity",
        ),
        ({"lines": (("SKU-2001", -1, "2026-12-20"),)}, "QUANTITY_INVALID", "lines[0].quantity"),
        ({"lines": ()}, "LINES_INVALID", "lines"),
        ({"location": "NOWHERE"}, "LOCATION_UNKNOWN", "location_code"),
        ({"po_number": " "}, "FIELD_MISSING", "po_number"),
        ({"po_number": "P" * 65}, "TEXT_TOO_LONG", "po_number"),
        ({"po_number": "PO\t1"}, "VALUE_INVALID", "po_number"),
        ({"supplier": ""}, "FIELD_MISSING", "supplier"),
    ],
)
def test_bad_purchase_orders_are_refused_by_field(
    api: Api, keys: Keys, db: Database, change: dict[str, object], reason: str, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        create_po(api, keys.admin, **change)  # type: ignore[arg-type]
    error = rich_error(refused.value)
    assert error.reason == reason
    assert error.field_violations[0][0] == field
    with db.reader() as conn:
        assert conn.execute(select(func.count()).select_from(t.purchase_orders)).scalar_one() == 0


def test_roles_decide_who_orders_and_who_receives(api: Api, keys: Keys) -> None:
    for key in (keys.warehouse, keys.shop, keys.storefront):
        with pytest.raises(grpc.RpcError) as refused:
            create_po(api, key)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    create_po(api, keys.manager)
    for key in (keys.shop, keys.finance, keys.operations):
        with pytest.raises(grpc.RpcError) as refused:
            receive(api, key, "PO-1")
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (
        receive(api, keys.admin, "PO-1", {1: (1, 0)}).purchase_order.lines[0].received_quantity == 1
    )


def test_receipts_racing_submits_never_oversell_nor_lose_a_piece(
    api: Api, keys: Keys, db: Database
) -> None:
    """25 SKU-2001 on hand; 10 receipts of 5 and 60 one-piece orders at once. Every piece
    received is on hand, allocation never exceeds it, and every order is accepted once the
    re-checks have run (75 pieces for 60 orders)."""
    create_po(api, keys.admin, lines=(("SKU-2001", 50, "2026-12-20"),))

    def submit(n: int) -> str:
        return api.submit(
            order_xml(f"RACE-{n}", [("SKU-2001", 1)], special_handling=HANDLE)
        ).order.id

    def receipt(n: int) -> None:
        receive(api, keys.warehouse, "PO-1", {1: (5, 0)})

    with ThreadPoolExecutor(max_workers=8) as pool:
        orders = [pool.submit(submit, n) for n in range(60)]
        receipts = [pool.submit(receipt, n) for n in range(10)]
        ids = [f.result() for f in orders]
        for f in receipts:
            f.result()
    for order_id in ids:
        until_state(api, keys.shop, order_id, ACCEPTED, seconds=30)
    assert stock_row(db, "SKU-2001") == (75, 60)
    with db.reader() as conn:
        c = t.stock_changes.c
        received, allocated = conn.execute(
            select(func.sum(c.on_hand_delta), func.sum(c.allocated_delta)).where(
                c.sku == "SKU-2001", c.location == "WH-MAIN"
            )
        ).one()
    assert (received, allocated) == (50, 60)  # the log adds up to the record
    assert get_order(api, keys.shop, ids[0]).state == ACCEPTED
