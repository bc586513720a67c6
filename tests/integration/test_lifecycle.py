"""Order lifecycle: guarded warehouse transitions with evidence, cancellation, stock effects."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from ordergate.v1 import fulfillment_service_pb2 as fpb
from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1.fulfillment_service_pb2_grpc import FulfillmentServiceStub
from ordergate_server.storage import Database, audit
from ordergate_server.storage import tables as t

from ..support import Api, Keys, auth, order_xml, rich_error
from .stock import stock_row

S = order_pb2


def stock_kinds(db: Database, order_id: str) -> list[str]:
    with db.reader() as conn:
        rows = conn.execute(
            select(t.stock_changes.c.kind)
            .where(t.stock_changes.c.order_id == order_id)
            .order_by(t.stock_changes.c.seq)
        )
        return [kind for (kind,) in rows]


def move(api: Api, keys: Keys, order_id: str, state: int, **evidence: object) -> order_pb2.Order:
    request = fpb.TransitionOrderRequest(id=order_id, state=state, **evidence)  # type: ignore[arg-type]
    reply = FulfillmentServiceStub(api.channel).TransitionOrder(
        request, metadata=auth(keys.warehouse)
    )
    return reply.order


def cancel(api: Api, key: str, order_id: str, reason: str = "customer asked") -> order_pb2.Order:
    return api.orders.CancelOrder(
        pb.CancelOrderRequest(id=order_id, reason=reason), metadata=auth(key)
    ).order


def test_the_whole_way_to_delivery_consumes_the_stock_at_dispatch(
    api: Api, keys: Keys, db: Database
) -> None:
    order = api.submit(order_xml("LC-1", [("SKU-1003", 2)])).order
    assert stock_row(db, "SKU-1003") == (40, 2)
    for state in (S.ORDER_STATE_PICKING, S.ORDER_STATE_PICKED, S.ORDER_STATE_PACKED):
        assert move(api, keys, order.id, state).state == state
    assert stock_row(db, "SKU-1003") == (40, 2)  # still allocated while in the warehouse
    dispatched = move(
        api, keys, order.id, S.ORDER_STATE_DISPATCHED, carrier="DHL", tracking_number="JJD0001"
    )
    assert stock_row(db, "SKU-1003") == (38, 0)  # on hand and allocated both dropped
    assert stock_kinds(db, order.id) == ["ALLOCATION", "DISPATCH"]
    delivered_at = Timestamp()
    delivered_at.FromJsonString("2026-11-25T10:30:00Z")
    delivered = move(api, keys, order.id, S.ORDER_STATE_DELIVERED, delivery_time=delivered_at)
    assert delivered.state == S.ORDER_STATE_DELIVERED
    assert [(e.type, e.actor) for e in delivered.events][1:] == [
        ("PICKING", "dc-scanner"),
        ("PICKED", "dc-scanner"),
        ("PACKED", "dc-scanner"),
        ("DISPATCHED", "dc-scanner"),
        ("DELIVERED", "dc-scanner"),
    ]
    # One shipment of everything: the order's only line, both pieces.
    assert dispatched.events[-1].detail == "carrier DHL, tracking JJD0001: 2 piece(s) of 1 line(s)"
    [shipment] = dispatched.shipments
    assert (shipment.carrier, shipment.tracking_number) == ("DHL", "JJD0001")
    assert [(line.line_number, line.quantity) for line in shipment.lines] == [(1, 2)]
    with db.reader() as conn:
        actions = [e.action for e in audit.entries_for(conn, f"order/{order.id}")]
    assert actions == [
        "order.picking",
        "order.picked",
        "order.packed",
        "order.dispatched",
        "order.delivered",
    ]


def test_an_illegal_step_names_the_allowed_ones(api: Api, keys: Keys) -> None:
    order = api.submit(order_xml("LC-2")).order
    with pytest.raises(grpc.RpcError) as caught:
        move(api, keys, order.id, S.ORDER_STATE_PACKED)
    error = rich_error(caught.value)
    assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ILLEGAL_TRANSITION")
    assert error.metadata["allowed_next_states"] == "PICKING,CANCELLED"


def test_dispatch_and_delivery_need_their_evidence(api: Api, keys: Keys) -> None:
    order = api.submit(order_xml("LC-3")).order
    for state in (S.ORDER_STATE_PICKING, S.ORDER_STATE_PICKED, S.ORDER_STATE_PACKED):
        move(api, keys, order.id, state)
    with pytest.raises(grpc.RpcError) as caught:
        move(api, keys, order.id, S.ORDER_STATE_DISPATCHED, carrier="DHL")
    error = rich_error(caught.value)
    assert (error.reason, [f for f, _ in error.field_violations]) == (
        "EVIDENCE_MISSING",
        ["tracking_number"],
    )
    move(api, keys, order.id, S.ORDER_STATE_DISPATCHED, carrier="DHL", tracking_number="X1")
    with pytest.raises(grpc.RpcError) as caught:
        move(api, keys, order.id, S.ORDER_STATE_DELIVERED)
    assert rich_error(caught.value).field_violations[0][0] == "delivery_time"


def test_a_repeated_transition_is_harmless(api: Api, keys: Keys, db: Database) -> None:
    order = api.submit(order_xml("LC-4", [("SKU-1003", 1)])).order
    move(api, keys, order.id, S.ORDER_STATE_PICKING)
    again = move(api, keys, order.id, S.ORDER_STATE_PICKING)
    assert [e.type for e in again.events] == ["SUBMITTED", "PICKING"]


def test_cancel_releases_the_allocation_and_is_refused_once_picking_started(
    api: Api, keys: Keys, db: Database
) -> None:
    order = api.submit(order_xml("LC-5", [("SKU-1003", 3)])).order
    assert stock_row(db, "SKU-1003") == (40, 3)
    cancelled = cancel(api, keys.shop, order.id)
    assert cancelled.state == S.ORDER_STATE_CANCELLED
    assert not cancelled.allocation_location
    assert stock_row(db, "SKU-1003") == (40, 0)
    assert stock_kinds(db, order.id) == ["ALLOCATION", "RELEASE"]  # what stock watchers see
    assert cancel(api, keys.shop, order.id).events == cancelled.events  # a retry changes nothing

    picked = api.submit(order_xml("LC-6", [("SKU-1003", 1)])).order
    move(api, keys, picked.id, S.ORDER_STATE_PICKING)
    with pytest.raises(grpc.RpcError) as caught:
        cancel(api, keys.manager, picked.id)
    # From PICKING on, only an un-pick leads back (with a reason); cancel is not among them.
    assert rich_error(caught.value).metadata["allowed_next_states"] == "ACCEPTED,PICKED"


def test_cancelling_a_held_order_and_who_may_cancel(api: Api, keys: Keys) -> None:
    held = api.submit(order_xml("LC-7", [("NOPE", 1)])).order
    with pytest.raises(grpc.RpcError) as caught:
        cancel(api, keys.other_shop, held.id)  # another website: not even visible
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        cancel(api, keys.manager, held.id, reason="")
    assert rich_error(caught.value).reason == "EVIDENCE_MISSING"
    assert cancel(api, keys.manager, held.id).state == S.ORDER_STATE_CANCELLED
