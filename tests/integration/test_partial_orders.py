"""Partial orders, manual holds and un-picks, on SQLite and PostgreSQL, against a real server.

Lines are cancelled or cut down before they ship, releasing their stock at once; an order with
nothing left is cancelled; a held order is judged again on what is left. A stock-held order is
accepted short in one step. A manager holds an accepted order (its stock kept) and releases it
back to where it was; the warehouse un-picks with a reason.
"""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import select

from ordergate.v1 import exception_queue_service_pb2 as qpb
from ordergate.v1 import fulfillment_service_pb2 as fpb
from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1.exception_queue_service_pb2_grpc import ExceptionQueueServiceStub
from ordergate.v1.fulfillment_service_pb2_grpc import FulfillmentServiceStub
from ordergate_server.storage import Database, audit
from ordergate_server.storage import tables as t

from ..support import Api, Keys, auth, order_xml, rich_error
from .stock import stock_row
from .test_stock_holds import _set_stock

S = order_pb2


def _cancel_lines(api: Api, key: str, order_id: str, keep: dict[int, int]) -> order_pb2.Order:
    return api.orders.CancelOrderLines(
        pb.CancelOrderLinesRequest(
            id=order_id,
            lines=[S.LineQuantity(line_number=n, quantity=q) for n, q in keep.items()],
            reason="customer called",
        ),
        metadata=auth(key),
    ).order


def _move(api: Api, keys: Keys, order_id: str, state: int, note: str = "") -> order_pb2.Order:
    return (
        FulfillmentServiceStub(api.channel)
        .TransitionOrder(
            fpb.TransitionOrderRequest(id=order_id, state=state, note=note),  # type: ignore[arg-type]
            metadata=auth(keys.warehouse),
        )
        .order
    )


def _kept(order: order_pb2.Order) -> list[tuple[int, int, int]]:
    return [(line.line_number, line.quantity, line.cancelled_quantity) for line in order.lines]


def test_cutting_lines_releases_their_stock_at_once(api: Api, keys: Keys, db: Database) -> None:
    order = api.submit(order_xml("P-1", [("SKU-1003", 4), ("SKU-1004", 2)])).order
    assert order.state == S.ORDER_STATE_ACCEPTED
    before_3, before_4 = stock_row(db, "SKU-1003"), stock_row(db, "SKU-1004")

    cut = _cancel_lines(api, keys.manager, order.id, {1: 1})  # keep 1 of 4
    assert cut.state == S.ORDER_STATE_ACCEPTED
    assert _kept(cut) == [(1, 4, 3), (2, 2, 0)]
    assert stock_row(db, "SKU-1003") == (before_3[0], before_3[1] - 3)
    assert stock_row(db, "SKU-1004") == before_4
    assert cut.events[-1].type == "LINES_CANCELLED"
    assert _cancel_lines(api, keys.operations, order.id, {1: 1}).events == cut.events  # a retry

    # Picking started: lines can still be cut, the order no longer cancelled whole.
    _move(api, keys, order.id, S.ORDER_STATE_PICKING)
    gone = _cancel_lines(api, keys.operations, order.id, {1: 0, 2: 0})
    assert gone.state == S.ORDER_STATE_CANCELLED
    assert stock_row(db, "SKU-1003") == (before_3[0], before_3[1] - 4)
    assert stock_row(db, "SKU-1004") == (before_4[0], before_4[1] - 2)
    with db.reader() as conn:
        actions = [e.action for e in audit.entries_for(conn, f"order/{order.id}")]
    assert actions.count("order.cancel_lines") == 2


def test_impossible_cuts_are_refused_by_line(api: Api, keys: Keys) -> None:
    order = api.submit(order_xml("P-2", [("SKU-1003", 2)])).order
    with pytest.raises(grpc.RpcError) as refused:
        _cancel_lines(api, keys.manager, order.id, {1: 3, 9: 0})
    error = rich_error(refused.value)
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "LINES_INVALID")
    assert sorted(f for f, _ in error.field_violations) == [
        "lines[line_number=1].quantity",
        "lines[line_number=9]",
    ]
    with pytest.raises(grpc.RpcError) as denied:
        _cancel_lines(api, keys.shop, order.id, {1: 1})  # a website key: not its decision
    assert rich_error(denied.value).reason == "ROLE_NOT_ALLOWED"


def test_a_held_order_goes_through_once_the_line_it_was_held_for_is_cancelled(
    api: Api, keys: Keys, db: Database
) -> None:
    held = api.submit(order_xml("P-3", [("SKU-1003", 1), ("NOPE", 1)])).order
    assert [(r.code, r.field) for r in held.hold_reasons] == [("SKU_UNKNOWN", "lines[1].sku")]
    through = _cancel_lines(api, keys.operations, held.id, {2: 0})
    assert through.state == S.ORDER_STATE_ACCEPTED
    assert through.allocation_location == "WH-MAIN"
    assert not through.hold_reasons


def test_accept_short_takes_what_one_location_has_and_cancels_the_rest(
    api: Api, keys: Keys, db: Database
) -> None:
    _set_stock(api, keys, "SKU-1003", 3)
    held = api.submit(order_xml("P-4", [("SKU-1003", 5), ("SKU-1004", 1)])).order
    assert held.stock_hold
    short = (
        ExceptionQueueServiceStub(api.channel)
        .AcceptShort(
            qpb.AcceptShortRequest(id=held.id, reason="customer takes what is there"),
            metadata=auth(keys.operations),
        )
        .order
    )
    assert short.state == S.ORDER_STATE_ACCEPTED
    assert _kept(short) == [(1, 5, 2), (2, 1, 0)]
    assert stock_row(db, "SKU-1003") == (3, 3)
    assert short.events[-1].type == "ACCEPTED_SHORT"
    with pytest.raises(grpc.RpcError) as again:
        ExceptionQueueServiceStub(api.channel).AcceptShort(
            qpb.AcceptShortRequest(id=held.id, reason="again"), metadata=auth(keys.operations)
        )
    assert rich_error(again.value).reason == "NOT_STOCK_HELD"


def test_accept_short_with_nothing_anywhere_is_refused(api: Api, keys: Keys) -> None:
    _set_stock(api, keys, "SKU-1003", 0)
    held = api.submit(order_xml("P-5", [("SKU-1003", 5)])).order
    with pytest.raises(grpc.RpcError) as refused:
        ExceptionQueueServiceStub(api.channel).AcceptShort(
            qpb.AcceptShortRequest(id=held.id, reason="x"), metadata=auth(keys.manager)
        )
    assert rich_error(refused.value).reason == "NOTHING_AVAILABLE"


def test_a_manual_hold_keeps_the_stock_and_release_returns_it_where_it_was(
    api: Api, keys: Keys, db: Database
) -> None:
    order = api.submit(order_xml("P-6", [("SKU-1003", 2)])).order
    _move(api, keys, order.id, S.ORDER_STATE_PICKING)
    _move(api, keys, order.id, S.ORDER_STATE_PICKED)
    stock = stock_row(db, "SKU-1003")
    queue = ExceptionQueueServiceStub(api.channel)
    held = queue.HoldOrder(
        qpb.HoldOrderRequest(id=order.id, reason="address check with the customer"),
        metadata=auth(keys.manager),
    ).order
    assert held.state == S.ORDER_STATE_ON_HOLD
    assert [r.code for r in held.hold_reasons] == ["MANUAL_HOLD"]
    assert held.held_from == S.ORDER_STATE_PICKED
    assert held.allocation_location == "WH-MAIN"
    assert stock_row(db, "SKU-1003") == stock  # the stock stays with it
    # A client's new document for the same order does not replace a manager's hold.
    with pytest.raises(grpc.RpcError) as refused:
        api.submit(order_xml("P-6", [("SKU-1003", 1)]))
    assert rich_error(refused.value).reason == "DUPLICATE_ORDER_ID"
    listed = queue.ListHeldOrders(
        qpb.ListHeldOrdersRequest(reason_code="MANUAL_HOLD"), metadata=auth(keys.operations)
    ).orders
    assert [o.id for o in listed] == [order.id]

    back = queue.ReleaseOrder(
        qpb.ReleaseOrderRequest(id=order.id, reason="customer confirmed"),
        metadata=auth(keys.manager),
    ).order
    assert back.state == S.ORDER_STATE_PICKED
    assert back.held_from == S.ORDER_STATE_UNSPECIFIED
    assert stock_row(db, "SKU-1003") == stock
    # Cancelling a manually held order releases what it kept.
    again = queue.HoldOrder(
        qpb.HoldOrderRequest(id=order.id, reason="fraud check"), metadata=auth(keys.manager)
    ).order
    assert again.state == S.ORDER_STATE_ON_HOLD
    api.orders.CancelOrder(
        pb.CancelOrderRequest(id=order.id, reason="fraud"), metadata=auth(keys.manager)
    )
    assert stock_row(db, "SKU-1003") == (stock[0], stock[1] - 2)


def test_unpick_goes_back_to_accepted_with_a_reason(api: Api, keys: Keys, db: Database) -> None:
    order = api.submit(order_xml("P-7", [("SKU-1003", 1)])).order
    _move(api, keys, order.id, S.ORDER_STATE_PICKING)
    with pytest.raises(grpc.RpcError) as refused:
        _move(api, keys, order.id, S.ORDER_STATE_ACCEPTED)
    error = rich_error(refused.value)
    assert (error.reason, [f for f, _ in error.field_violations]) == ("EVIDENCE_MISSING", ["note"])
    back = _move(api, keys, order.id, S.ORDER_STATE_ACCEPTED, note="wrong bin, pick again")
    assert back.state == S.ORDER_STATE_ACCEPTED
    assert (back.events[-1].type, back.events[-1].detail) == ("UNPICKED", "wrong bin, pick again")
    assert back.allocation_location == "WH-MAIN"
    with db.reader() as conn:
        kinds = conn.execute(
            select(t.stock_changes.c.kind).where(t.stock_changes.c.order_id == order.id)
        ).scalars()
        assert list(kinds) == ["ALLOCATION"]  # an un-pick moves no stock
