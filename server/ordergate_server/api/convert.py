"""Domain records to protobuf messages (and the few enums back)."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from ordergate.v1 import order_pb2

from ..domain.model import OrderState
from ..domain.records import EventRecord, OrderRecord

_STATE_TO_PROTO = {
    state: order_pb2.OrderState.Value(f"ORDER_STATE_{state.value}") for state in OrderState
}
_STATE_FROM_PROTO = {value: state for state, value in _STATE_TO_PROTO.items()}


def state_to_proto(state: OrderState | None) -> order_pb2.OrderState.ValueType:
    return _STATE_TO_PROTO[state] if state else order_pb2.ORDER_STATE_UNSPECIFIED


def state_from_proto(value: order_pb2.OrderState.ValueType) -> OrderState | None:
    """None for UNSPECIFIED (no filter)."""
    return _STATE_FROM_PROTO.get(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _timestamp(value: datetime | None) -> Timestamp | None:
    """As Timestamp.FromDatetime (a naive value is UTC), in datetime's C arithmetic: an order's
    answer has four or more, and FromDatetime's Python took 2 us each against 0.6."""
    if value is None:
        return None
    since = (value if value.tzinfo is not None else value.replace(tzinfo=UTC)) - _EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=value.microsecond * 1000)


def order_to_proto(order: OrderRecord) -> order_pb2.Order:
    d = order.delivery
    a = d.address
    return order_pb2.Order(
        id=order.id,
        client_order_id=order.client_order_id,
        client=order.client,
        customer_account=order.customer_account,
        channel=order.channel,
        currency=order.currency,
        order_time=_timestamp(order.order_time),
        create_time=_timestamp(order.created_at),
        update_time=_timestamp(order.updated_at),
        state=state_to_proto(order.state),
        hold_reasons=[
            order_pb2.HoldReason(code=r.code.value, field=r.field, message=r.message, rule=r.rule)
            for r in order.hold_reasons
        ],
        delivery=order_pb2.Delivery(
            address=order_pb2.Address(
                name=a.name,
                street_lines=a.street_lines,
                city=a.city,
                postal_code=a.postal_code,
                region=a.region,
                country_code=a.country_code,
            ),
            phone=d.phone,
            email=d.email,
            window_start=_timestamp(d.window_start),
            window_end=_timestamp(d.window_end),
            special_handling=d.special_handling,
        ),
        lines=[
            order_pb2.OrderLine(
                line_number=line.line_number,
                submitted_code=line.submitted_code,
                sku=line.sku,
                quantity=line.quantity,
                unit_price=str(line.unit_price) if line.unit_price is not None else "",
            )
            for line in order.lines
        ],
        notes=order.notes,
        allocation_location=order.allocation_location,
        problem_submission=order.problem_submission,
        events=[event_to_proto(e) for e in order.events],
    )


def event_to_proto(event: EventRecord) -> order_pb2.OrderEvent:
    return order_pb2.OrderEvent(
        id=event.id,
        create_time=_timestamp(event.created_at),
        actor=event.actor,
        type=event.type,
        old_state=state_to_proto(event.old_state),
        new_state=state_to_proto(event.new_state),
        detail=event.detail,
    )
