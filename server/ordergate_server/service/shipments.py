"""Shipments: what the warehouse hands to carriers, and where each shipment is.

An order ships in one or more shipments (a split shipment), each with a carrier, a tracking
number (or, flagged so, none yet) and its pieces per line. A shipment's pieces leave stock at
once (on hand and allocated drop). The order is DISPATCHED when everything not cancelled has
shipped, PARTLY_DISPATCHED until then; DELIVERED when every shipment is. A shipment handed over
without a tracking number raises a TRACKING_MISSING alert if none is added within a day.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from ..domain.access import Principal
from ..domain.ids import new_id
from ..domain.lifecycle import SHIPPABLE
from ..domain.limits import shown
from ..domain.model import OrderState, ShipmentState
from ..domain.records import OrderRecord, ShipmentRecord
from ..storage import Database, alerts, orders, shipments
from . import order_stock
from .errors import ErrorKind, FieldViolation, ServiceError
from .order_access import Locked, locked_order, record_change, reload

# Where a shipment may go from each state (it never goes back).
_NEXT = {
    ShipmentState.SHIPPED: {ShipmentState.IN_TRANSIT, ShipmentState.DELIVERED},
    ShipmentState.IN_TRANSIT: {ShipmentState.DELIVERED},
    ShipmentState.DELIVERED: set(),
}


@dataclass(frozen=True)
class Handover:
    """What a shipment is handed over with."""

    carrier: str
    tracking_number: str = ""
    tracking_url: str = ""
    without_tracking: bool = False


def create_shipment(
    db: Database,
    principal: Principal,
    *,
    request_id: str,
    order_id: str,
    handover: Handover,
    lines: Sequence[tuple[int, int]] = (),
) -> tuple[OrderRecord, ShipmentRecord]:
    """Record a shipment of `lines` ((line number, pieces); empty: everything not yet
    shipped) of a PACKED or PARTLY_DISPATCHED order. A retry of `request_id` answers with the
    shipment it made."""
    _check_request_id(request_id)
    _check_handover(handover)
    numbers = [number for number, _ in lines]
    if len(set(numbers)) != len(numbers):
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "SHIPMENT_LINES_INVALID",
            "Name each line once.",
            field_violations=[FieldViolation("lines", "a line named twice")],
        )
    now = datetime.now(UTC)
    with db.transaction() as tx:
        made = shipments.by_request_id(tx, request_id)
        if made is not None:
            if made.order_id != order_id:
                raise ServiceError(
                    ErrorKind.INVALID_ARGUMENT,
                    "IDEMPOTENCY_KEY_REUSED",
                    f"request_id {request_id} already made a shipment of another order.",
                    field_violations=[FieldViolation("request_id", "used for another order")],
                )
            order = reload(tx, order_id)
            return order, _shipment_of(order, made.id)
        locked = locked_order(tx, principal, order_id)
        if locked.order.state not in SHIPPABLE:
            raise _not_shippable(locked.order)
        shipment_id = ship(tx, principal, locked, handover, dict(lines) or None, request_id, now)
        order = reload(tx, order_id)
    return order, _shipment_of(order, shipment_id)


def ship(
    tx: Connection,
    principal: Principal,
    locked: Locked,
    handover: Handover,
    pieces: dict[int, int] | None,
    request_id: str,
    now: datetime,
) -> str:
    """Ship `pieces` (line number -> pieces; None: everything open) of a locked order: stock
    leaves, the lines count it shipped, the order moves on. Returns the shipment's id."""
    order = locked.order
    by_number = {line.line_number: (position, line) for position, line in enumerate(order.lines)}
    if pieces is None:
        pieces = {line.line_number: line.open for line in order.lines if line.open > 0}
        if not pieces:
            raise ServiceError(
                ErrorKind.FAILED_PRECONDITION,
                "NOTHING_TO_SHIP",
                f"Everything of order {order.id} has shipped or been cancelled.",
                metadata={"order": order.id},
            )
    violations = []
    for number, quantity in pieces.items():
        if number not in by_number:
            violations.append(FieldViolation(f"lines[line_number={number}]", "no such line"))
        elif not 0 < quantity <= by_number[number][1].open:
            violations.append(
                FieldViolation(
                    f"lines[line_number={number}].quantity",
                    f"1 to {by_number[number][1].open} (the pieces not yet shipped)",
                )
            )
    if violations:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "SHIPMENT_LINES_INVALID",
            "Ship only lines of the order, and at most what has not shipped of each.",
            field_violations=violations,
        )
    order_stock.move(
        tx,
        principal.client_name,
        order,
        [(by_number[number][1].sku, quantity) for number, quantity in pieces.items()],
        order_stock.DISPATCH,
        now,
    )
    lines = [
        line._replace(shipped=line.shipped + pieces.get(line.line_number, 0))
        for line in order.lines
    ]
    orders.set_line_quantities(tx, locked.seq, lines)
    shipment_id = new_id()
    shipments.add_shipment(
        tx,
        id=shipment_id,
        order_seq=locked.seq,
        carrier=handover.carrier.strip(),
        tracking_number=handover.tracking_number.strip(),
        tracking_url=handover.tracking_url.strip(),
        without_tracking=handover.without_tracking,
        actor=principal.client_name,
        request_id=request_id,
        now=now,
        contents=sorted((by_number[n][0], q) for n, q in pieces.items()),
    )
    done = all(line.open == 0 for line in lines)
    state = OrderState.DISPATCHED if done else OrderState.PARTLY_DISPATCHED
    orders.set_state(tx, locked.seq, state, now, allocation_location=order.allocation_location)
    tracking = handover.tracking_number.strip() or "none yet"
    detail = (
        f"carrier {handover.carrier.strip()}, tracking {tracking}: "
        f"{sum(pieces.values())} piece(s) of {len(pieces)} line(s)"
    )
    record_change(
        tx,
        principal,
        locked,
        event=state.value,  # PARTLY_DISPATCHED or DISPATCHED, as transitions are named
        new_state=state,
        detail=detail,
        now=now,
        action=f"order.{state.value.lower()}",
        after={"state": state.value, "shipment": shipment_id, "detail": detail},
    )
    return shipment_id


def update_shipment(
    db: Database,
    principal: Principal,
    shipment_id: str,
    *,
    state: ShipmentState | None = None,
    tracking_number: str = "",
    tracking_url: str = "",
    delivered_at: datetime | None = None,
) -> tuple[OrderRecord, ShipmentRecord]:
    """Move a shipment on (IN_TRANSIT, DELIVERED) or add its tracking; a DISPATCHED order whose
    shipments are all delivered becomes DELIVERED."""
    if state is ShipmentState.DELIVERED and delivered_at is None:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "EVIDENCE_MISSING",
            "DELIVERED needs: delivery_time.",
            field_violations=[FieldViolation("delivery_time", "required to mark delivered")],
        )
    now = datetime.now(UTC)
    with db.transaction() as tx:
        found = shipments.by_id(tx, shipment_id)
        if found is None:
            raise _no_shipment(shipment_id)
        locked = locked_order(tx, principal, found.order_id)
        found = shipments.by_id(tx, shipment_id, lock=True)
        assert found is not None
        changes: dict[str, object] = {}
        events = []
        if tracking_number.strip() and tracking_number.strip() != found.tracking_number:
            changes["tracking_number"] = tracking_number.strip()
            events.append(f"tracking {tracking_number.strip()} added")
        if tracking_url.strip():
            changes["tracking_url"] = tracking_url.strip()
        if state is not None and state is not found.state:
            if state not in _NEXT[found.state]:
                raise ServiceError(
                    ErrorKind.FAILED_PRECONDITION,
                    "ILLEGAL_TRANSITION",
                    f"Shipment {shipment_id} is {found.state.value}; it cannot go to "
                    f"{state.value}.",
                    metadata={"state": found.state.value, "requested_state": state.value},
                )
            changes["state"] = state.value
            if state is ShipmentState.DELIVERED:
                changes["delivered_at"] = delivered_at
            events.append(state.value.lower().replace("_", " "))
        if changes:
            shipments.update_shipment(tx, found.seq, now, **changes)
            record_change(
                tx,
                principal,
                locked,
                event="SHIPMENT_UPDATED",
                new_state=locked.order.state,
                detail=f"shipment {shipment_id}: {', '.join(events) or 'tracking link set'}",
                now=now,
                action="shipment.update",
                after={"shipment": shipment_id, **{k: str(v) for k, v in changes.items()}},
            )
            _deliver_if_all_delivered(tx, principal, locked, now)
        order = reload(tx, locked.order.id)
    return order, _shipment_of(order, shipment_id)


def deliver_all(
    tx: Connection, principal: Principal, locked: Locked, delivered_at: datetime, now: datetime
) -> None:
    """Every shipment of the order not yet delivered is delivered at `delivered_at` (an order
    marked DELIVERED as a whole)."""
    for shipment in locked.order.shipments:
        if shipment.state is not ShipmentState.DELIVERED:
            stored = shipments.by_id(tx, shipment.id, lock=True)
            assert stored is not None
            shipments.update_shipment(
                tx, stored.seq, now, state=ShipmentState.DELIVERED.value, delivered_at=delivered_at
            )


def _deliver_if_all_delivered(
    tx: Connection, principal: Principal, locked: Locked, now: datetime
) -> None:
    states = shipments.states_of_order(tx, locked.seq)
    if locked.order.state is OrderState.DISPATCHED and all(
        state is ShipmentState.DELIVERED for state in states
    ):
        orders.set_state(
            tx,
            locked.seq,
            OrderState.DELIVERED,
            now,
            allocation_location=locked.order.allocation_location,
        )
        record_change(
            tx,
            principal,
            locked,
            event="DELIVERED",
            new_state=OrderState.DELIVERED,
            detail="every shipment delivered",
            now=now,
        )


def raise_missing_tracking_alerts(db: Database, hours: float) -> int:
    """A TRACKING_MISSING alert (and order event) for each shipment handed over without a
    tracking number `hours` ago and still without one; once per shipment."""
    now = datetime.now(UTC)
    raised = 0
    with db.transaction() as tx:
        for shipment in shipments.without_tracking_since(tx, now - timedelta(hours=hours)):
            message = (
                f"Shipment {shipment.id} of order {shipment.order_id} was handed over without a "
                f"tracking number over {hours:g} hours ago and has none yet."
            )
            alerts.raise_alert(
                tx, at=now, kind="TRACKING_MISSING", message=message, order_ids=[shipment.order_id]
            )
            order = reload(tx, shipment.order_id)
            record_change(
                tx,
                None,
                Locked(shipment.order_seq, order),
                event="TRACKING_MISSING",
                new_state=order.state,
                detail=message,
                now=now,
            )
            shipments.update_shipment(tx, shipment.seq, now, tracking_alerted=True)
            raised += 1
    return raised


def _shipment_of(order: OrderRecord, shipment_id: str) -> ShipmentRecord:
    return next(s for s in order.shipments if s.id == shipment_id)


def _check_request_id(request_id: str) -> None:
    try:
        uuid.UUID(request_id)
    except ValueError:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "REQUEST_ID_INVALID",
            "request_id must be a UUID, chosen once per shipment and reused on every retry.",
            field_violations=[FieldViolation("request_id", "not a UUID")],
        ) from None


def _check_handover(handover: Handover) -> None:
    missing = []
    if not handover.carrier.strip():
        missing.append(FieldViolation("carrier", "required to ship"))
    if not handover.tracking_number.strip() and not handover.without_tracking:
        missing.append(
            FieldViolation("tracking_number", "required to ship, unless without_tracking is set")
        )
    if missing:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "EVIDENCE_MISSING",
            f"A shipment needs: {', '.join(v.field for v in missing)}.",
            field_violations=missing,
        )


def _not_shippable(order: OrderRecord) -> ServiceError:
    return ServiceError(
        ErrorKind.FAILED_PRECONDITION,
        "ILLEGAL_TRANSITION",
        f"Order {order.id} is {order.state.value}; only PACKED or PARTLY_DISPATCHED orders ship.",
        metadata={"state": order.state.value, "requested_state": "DISPATCHED"},
    )


def _no_shipment(shipment_id: str) -> ServiceError:
    return ServiceError(
        ErrorKind.NOT_FOUND,
        "SHIPMENT_NOT_FOUND",
        f"No shipment {shown(shipment_id)} is visible to this client.",
        metadata={"shipment": shipment_id},
    )
