"""Shipments are data, on SQLite and PostgreSQL, against a real server: split shipments with
their lines, PARTLY_DISPATCHED until everything not cancelled has shipped, each shipment moving
on by itself, the order DELIVERED when all are; a shipment without a tracking number only when
flagged, and alerted after a day without one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from ordergate.v1 import fulfillment_service_pb2 as fpb
from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1.fulfillment_service_pb2_grpc import FulfillmentServiceStub
from ordergate_server.service import shipments
from ordergate_server.storage import Database
from ordergate_server.storage import tables as t

from ..support import Api, Keys, auth, order_xml, rich_error
from .stock import stock_row
from .test_partial_orders import _cancel_lines, _move

S = order_pb2


def _packed(api: Api, keys: Keys, order_id: str) -> None:
    for state in (S.ORDER_STATE_PICKING, S.ORDER_STATE_PICKED, S.ORDER_STATE_PACKED):
        _move(api, keys, order_id, state)


def _ship(
    api: Api, keys: Keys, order_id: str, lines: dict[int, int] | None = None, **handover: object
) -> fpb.CreateShipmentResponse:
    request = fpb.CreateShipmentRequest(
        request_id=str(handover.pop("request_id", uuid.uuid4())),
        order_id=order_id,
        carrier=str(handover.pop("carrier", "DHL")),
        lines=[S.LineQuantity(line_number=n, quantity=q) for n, q in (lines or {}).items()],
        **handover,  # type: ignore[arg-type]
    )
    return FulfillmentServiceStub(api.channel).CreateShipment(
        request, metadata=auth(keys.warehouse)
    )


def _update(api: Api, keys: Keys, shipment_id: str, **fields: object) -> fpb.UpdateShipmentResponse:
    return FulfillmentServiceStub(api.channel).UpdateShipment(
        fpb.UpdateShipmentRequest(shipment_id=shipment_id, **fields),  # type: ignore[arg-type]
        metadata=auth(keys.warehouse),
    )


def _at(moment: str) -> Timestamp:
    stamp = Timestamp()
    stamp.FromJsonString(moment)
    return stamp


def test_a_split_shipment_then_delivery_shipment_by_shipment(
    api: Api, keys: Keys, db: Database
) -> None:
    order = api.submit(order_xml("SHP-1", [("SKU-1003", 3), ("SKU-1004", 2)])).order
    _packed(api, keys, order.id)
    stock_3, stock_4 = stock_row(db, "SKU-1003"), stock_row(db, "SKU-1004")

    first = _ship(api, keys, order.id, {1: 2}, tracking_number="T-1", tracking_url="https://t/1")
    assert first.order.state == S.ORDER_STATE_PARTLY_DISPATCHED
    assert [(line.line_number, line.shipped_quantity) for line in first.order.lines] == [
        (1, 2),
        (2, 0),
    ]
    assert [(line.line_number, line.quantity) for line in first.shipment.lines] == [(1, 2)]
    assert (first.shipment.tracking_number, first.shipment.tracking_url) == ("T-1", "https://t/1")
    assert first.shipment.state == S.SHIPMENT_STATE_SHIPPED
    assert stock_row(db, "SKU-1003") == (stock_3[0] - 2, stock_3[1] - 2)  # left the building

    second = _ship(api, keys, order.id, tracking_number="T-2")  # everything left
    assert second.order.state == S.ORDER_STATE_DISPATCHED
    assert [(line.line_number, line.quantity) for line in second.shipment.lines] == [(1, 1), (2, 2)]
    assert stock_row(db, "SKU-1003") == (stock_3[0] - 3, stock_3[1] - 3)
    assert stock_row(db, "SKU-1004") == (stock_4[0] - 2, stock_4[1] - 2)
    assert len(second.order.shipments) == 2

    moving = _update(api, keys, first.shipment.id, state=S.SHIPMENT_STATE_IN_TRANSIT)
    assert moving.shipment.state == S.SHIPMENT_STATE_IN_TRANSIT
    one_done = _update(
        api,
        keys,
        first.shipment.id,
        state=S.SHIPMENT_STATE_DELIVERED,
        delivery_time=_at("2026-12-05T10:00:00Z"),
    )
    assert one_done.order.state == S.ORDER_STATE_DISPATCHED  # the other is still on its way
    both = _update(
        api,
        keys,
        second.shipment.id,
        state=S.SHIPMENT_STATE_DELIVERED,
        delivery_time=_at("2026-12-05T11:00:00Z"),
    )
    assert both.order.state == S.ORDER_STATE_DELIVERED
    with pytest.raises(grpc.RpcError) as backwards:
        _update(api, keys, first.shipment.id, state=S.SHIPMENT_STATE_IN_TRANSIT)
    assert rich_error(backwards.value).reason == "ILLEGAL_TRANSITION"


def test_cancelling_what_is_left_of_a_partly_dispatched_order_dispatches_it(
    api: Api, keys: Keys, db: Database
) -> None:
    order = api.submit(order_xml("SHP-2", [("SKU-1003", 3)])).order
    _packed(api, keys, order.id)
    _ship(api, keys, order.id, {1: 1}, tracking_number="T-3")
    rest = _cancel_lines(api, keys.manager, order.id, {1: 1})
    assert rest.state == S.ORDER_STATE_DISPATCHED
    assert [
        (line.quantity, line.cancelled_quantity, line.shipped_quantity) for line in rest.lines
    ] == [(3, 2, 1)]


def test_a_retried_shipment_ships_once(api: Api, keys: Keys, db: Database) -> None:
    order = api.submit(order_xml("SHP-3", [("SKU-1003", 2)])).order
    _packed(api, keys, order.id)
    request_id = str(uuid.uuid4())
    first = _ship(api, keys, order.id, {1: 1}, tracking_number="T-4", request_id=request_id)
    again = _ship(api, keys, order.id, {1: 1}, tracking_number="T-4", request_id=request_id)
    assert again.shipment.id == first.shipment.id
    assert len(again.order.shipments) == 1
    assert [line.shipped_quantity for line in again.order.lines] == [1]


def test_shipping_needs_tracking_unless_flagged_and_only_what_is_left(api: Api, keys: Keys) -> None:
    order = api.submit(order_xml("SHP-4", [("SKU-1003", 1)])).order
    with pytest.raises(grpc.RpcError) as early:
        _ship(api, keys, order.id, tracking_number="T")
    assert rich_error(early.value).reason == "ILLEGAL_TRANSITION"  # not packed yet
    _packed(api, keys, order.id)
    with pytest.raises(grpc.RpcError) as untracked:
        _ship(api, keys, order.id)
    error = rich_error(untracked.value)
    assert (error.reason, [f for f, _ in error.field_violations]) == (
        "EVIDENCE_MISSING",
        ["tracking_number"],
    )
    with pytest.raises(grpc.RpcError) as too_many:
        _ship(api, keys, order.id, {1: 2}, tracking_number="T")
    assert rich_error(too_many.value).reason == "SHIPMENT_LINES_INVALID"
    pallet = _ship(api, keys, order.id, without_tracking=True, carrier="Own van")
    assert pallet.shipment.without_tracking
    assert pallet.shipment.tracking_number == ""
    tracked = _update(api, keys, pallet.shipment.id, tracking_number="VAN-7")
    assert tracked.shipment.tracking_number == "VAN-7"


def test_a_shipment_without_tracking_for_a_day_raises_an_alert_once(
    api: Api, keys: Keys, db: Database
) -> None:
    order = api.submit(order_xml("SHP-5", [("SKU-1003", 1)])).order
    _packed(api, keys, order.id)
    shipped = _ship(api, keys, order.id, without_tracking=True, carrier="Courier")
    assert shipments.raise_missing_tracking_alerts(db, hours=24) == 0  # not a day yet
    with db.transaction() as tx:  # a day and a bit later
        tx.execute(t.shipments.update().values(created_at=datetime.now(UTC) - timedelta(hours=25)))
    assert shipments.raise_missing_tracking_alerts(db, hours=24) == 1
    assert shipments.raise_missing_tracking_alerts(db, hours=24) == 0  # once
    with db.reader() as conn:
        [(message, order_ids)] = conn.execute(
            select(t.alerts.c.message, t.alerts.c.order_ids).where(
                t.alerts.c.kind == "TRACKING_MISSING"
            )
        ).all()
    assert order_ids == [order.id]
    assert shipped.shipment.id in message
    got = api.orders.GetOrder(pb.GetOrderRequest(id=order.id), metadata=auth(api.key)).order
    assert got.events[-1].type == "TRACKING_MISSING"


def test_dispatch_through_transition_records_one_shipment_of_everything(
    api: Api, keys: Keys
) -> None:
    order = api.submit(order_xml("SHP-6", [("SKU-1003", 2), ("SKU-1004", 1)])).order
    _packed(api, keys, order.id)
    dispatched = (
        FulfillmentServiceStub(api.channel)
        .TransitionOrder(
            fpb.TransitionOrderRequest(
                id=order.id,
                state=S.ORDER_STATE_DISPATCHED,
                carrier="UPS",
                tracking_number="1Z999",
            ),
            metadata=auth(keys.warehouse),
        )
        .order
    )
    [shipment] = dispatched.shipments
    assert (shipment.carrier, shipment.tracking_number) == ("UPS", "1Z999")
    assert [(line.line_number, line.quantity) for line in shipment.lines] == [(1, 2), (2, 1)]
    delivered = (
        FulfillmentServiceStub(api.channel)
        .TransitionOrder(
            fpb.TransitionOrderRequest(
                id=order.id,
                state=S.ORDER_STATE_DELIVERED,
                delivery_time=_at("2026-12-06T09:00:00Z"),
            ),
            metadata=auth(keys.warehouse),
        )
        .order
    )
    assert [s.state for s in delivered.shipments] == [S.SHIPMENT_STATE_DELIVERED]
