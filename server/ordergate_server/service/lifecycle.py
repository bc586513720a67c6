"""Moving orders through their states: warehouse transitions and cancellation.

Each change runs in one transaction: lock the order, check the transition is allowed and its
evidence is there, move the stock (cancel releases what the order holds, dispatch ships it:
on hand and allocated both drop), log the stock changes, write the order event and the audit
entry. Asking for the state an order is already in answers with the order as it is (a retry is
harmless). Dispatch and delivery go through shipments (service/shipments.py): DISPATCHED ships
everything not yet shipped in one shipment; DELIVERED delivers every shipment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ..domain.access import Principal
from ..domain.lifecycle import UNPICKABLE, allowed_next
from ..domain.model import OrderState
from ..domain.records import OrderRecord
from ..storage import Database, orders
from . import order_stock, shipments
from .errors import ErrorKind, FieldViolation, ServiceError
from .order_access import locked_order, record_change, reload


@dataclass(frozen=True)
class Evidence:
    carrier: str = ""
    tracking_number: str = ""
    delivered_at: datetime | None = None
    reason: str = ""


def transition(
    db: Database, principal: Principal, order_id: str, target: OrderState, evidence: Evidence
) -> OrderRecord:
    now = datetime.now(UTC)
    with db.transaction() as tx:
        locked = locked_order(tx, principal, order_id)
        order = locked.order
        if order.state is target:
            return order  # already done: a retry, or a second click
        if target not in allowed_next(order.state):
            raise illegal(order, target)
        _check_evidence(order, target, evidence)
        if target is OrderState.DISPATCHED:
            handover = shipments.Handover(evidence.carrier, evidence.tracking_number)
            shipments.ship(tx, principal, locked, handover, None, "", now)
            return reload(tx, order_id)
        if target is OrderState.DELIVERED:
            assert evidence.delivered_at is not None
            shipments.deliver_all(tx, principal, locked, evidence.delivered_at, now)
        location: str | None = order.allocation_location
        if target is OrderState.CANCELLED:
            order_stock.release_all(tx, principal.client_name, order, now)
            location = None
        orders.set_state(tx, locked.seq, target, now, allocation_location=location)
        detail = _detail(target, evidence)
        unpick = target is OrderState.ACCEPTED
        record_change(
            tx,
            principal,
            locked,
            event="UNPICKED" if unpick else target.value,
            new_state=target,
            detail=detail,
            now=now,
            action="order.unpick" if unpick else f"order.{target.value.lower()}",
            reason=evidence.reason,
            after={"state": target.value, "detail": detail},
        )
        return reload(tx, order_id)


def _check_evidence(order: OrderRecord, target: OrderState, evidence: Evidence) -> None:
    missing = []
    if target is OrderState.DISPATCHED:
        if not evidence.carrier.strip():
            missing.append(FieldViolation("carrier", "required to dispatch"))
        if not evidence.tracking_number.strip():
            missing.append(FieldViolation("tracking_number", "required to dispatch"))
    if target is OrderState.DELIVERED and evidence.delivered_at is None:
        missing.append(FieldViolation("delivery_time", "required to mark delivered"))
    if target is OrderState.CANCELLED and not evidence.reason.strip():
        missing.append(FieldViolation("reason", "say why the order is cancelled"))
    if target is OrderState.ACCEPTED and order.state in UNPICKABLE and not evidence.reason.strip():
        missing.append(FieldViolation("note", "say why the order is un-picked"))
    if missing:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "EVIDENCE_MISSING",
            f"{target.value} needs: {', '.join(v.field for v in missing)}.",
            field_violations=missing,
        )


def illegal(order: OrderRecord, target: OrderState) -> ServiceError:
    allowed = [s.value for s in allowed_next(order.state)]
    return ServiceError(
        ErrorKind.FAILED_PRECONDITION,
        "ILLEGAL_TRANSITION",
        f"Order {order.id} is {order.state.value}; it can go to {', '.join(allowed) or 'nothing'}"
        f", not {target.value}.",
        metadata={
            "state": order.state.value,
            "requested_state": target.value,
            "allowed_next_states": ",".join(allowed),
        },
    )


def _detail(target: OrderState, evidence: Evidence) -> str:
    if target is OrderState.DELIVERED and evidence.delivered_at is not None:
        return f"delivered {evidence.delivered_at.isoformat()}"
    return evidence.reason
