"""Moving orders through their states: warehouse transitions and cancellation.

Each change runs in one transaction: lock the order, check the transition is allowed and its
evidence is there, move the stock (cancel releases the allocation, dispatch consumes it: on hand
and allocated both drop), log the stock changes, write the order event and the audit entry.
Asking for the state an order is already in, with the same evidence, answers with the order as
it is (a retry is harmless).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, update

from ..domain.access import Principal
from ..domain.ids import new_id
from ..domain.lifecycle import HOLDS_STOCK, allowed_next
from ..domain.model import OrderState
from ..domain.records import EventRecord, OrderRecord
from ..storage import Database, audit, catalog, orders, stock_log
from ..storage import tables as t
from .errors import ErrorKind, FieldViolation, ServiceError


@dataclass(frozen=True)
class Evidence:
    carrier: str = ""
    tracking_number: str = ""
    delivered_at: datetime | None = None
    reason: str = ""


def transition(
    db: Database, principal: Principal, order_id: str, target: OrderState, evidence: Evidence
) -> OrderRecord:
    _check_evidence(target, evidence)
    now = datetime.now(UTC)
    with db.transaction() as tx:
        seq, order = _locked(tx, principal, order_id)
        if order.state is target:
            return order  # already done: a retry, or a second click
        if target not in allowed_next(order.state):
            raise _illegal(order, target)
        if target is OrderState.CANCELLED and order.state in HOLDS_STOCK:
            _move_stock(tx, principal, order, "RELEASE", now)
        if target is OrderState.DISPATCHED:
            _move_stock(tx, principal, order, "DISPATCH", now)
        detail = _detail(target, evidence)
        values: dict[str, object] = {"state": target.value, "updated_at": now}
        if target is OrderState.CANCELLED:
            values["allocation_location"] = None
        tx.execute(update(t.orders).where(t.orders.c.seq == seq).values(**values))
        orders.insert_events(
            tx,
            seq,
            [
                EventRecord(
                    new_id(),
                    now,
                    principal.client_name,
                    target.value,
                    order.state,
                    target,
                    detail,
                )
            ],
        )
        audit.record(
            tx,
            [
                audit.AuditEntry(
                    at=now,
                    actor=principal.client_name,
                    role=principal.role.value,
                    action=f"order.{target.value.lower()}",
                    subject=f"order/{order.id}",
                    reason=evidence.reason,
                    before={"state": order.state.value},
                    after={"state": target.value, "detail": detail},
                )
            ],
        )
        updated = orders.get_order(tx, client_id=None, order_id=order.id)
    assert updated is not None
    return updated


def _locked(tx: Connection, principal: Principal, order_id: str) -> tuple[int, OrderRecord]:
    """The order (locked for the rest of the transaction), if the caller may see it."""
    seq = orders.seq_of(tx, order_id, lock=True)
    own = principal.client_id if principal.sees_only_own_orders else None
    order = orders.get_order(tx, client_id=own, order_id=order_id) if seq is not None else None
    if seq is None or order is None:
        raise ServiceError(
            ErrorKind.NOT_FOUND,
            "ORDER_NOT_FOUND",
            f"No order {order_id} is visible to this client.",
            metadata={"order": order_id},
        )
    return seq, order


def _check_evidence(target: OrderState, evidence: Evidence) -> None:
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
    if missing:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "EVIDENCE_MISSING",
            f"{target.value} needs: {', '.join(v.field for v in missing)}.",
            field_violations=missing,
        )


def _illegal(order: OrderRecord, target: OrderState) -> ServiceError:
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
    if target is OrderState.DISPATCHED:
        return f"carrier {evidence.carrier}, tracking {evidence.tracking_number}"
    if target is OrderState.DELIVERED and evidence.delivered_at is not None:
        return f"delivered {evidence.delivered_at.isoformat()}"
    return evidence.reason


def _move_stock(
    tx: Connection, principal: Principal, order: OrderRecord, kind: str, now: datetime
) -> None:
    """RELEASE: allocated drops. DISPATCH: on hand and allocated both drop."""
    location = order.allocation_location
    kits = catalog.bundle_components(tx, {line.sku for line in order.lines})
    demand: dict[str, int] = {}
    for line in order.lines:
        for sku, per_kit in kits.get(line.sku, [(line.sku, 1)]):
            demand[sku] = demand.get(sku, 0) + line.quantity * per_kit
    records = catalog.stock_records(tx, demand, lock=True)
    changes = []
    for sku, quantity in sorted(demand.items()):
        before = records[(sku, location)]
        on_hand_delta = -quantity if kind == "DISPATCH" else 0
        tx.execute(
            update(t.stock)
            .where(t.stock.c.sku == sku, t.stock.c.location == location)
            .values(
                on_hand=t.stock.c.on_hand + on_hand_delta,
                allocated=t.stock.c.allocated - quantity,
            )
        )
        changes.append(
            stock_log.StockChange(
                at=now,
                sku=sku,
                location=location,
                kind=kind,
                on_hand_delta=on_hand_delta,
                allocated_delta=-quantity,
                on_hand_after=before.on_hand + on_hand_delta,
                allocated_after=before.allocated - quantity,
                actor=principal.client_name,
                order_id=order.id,
            )
        )
    stock_log.record(tx, changes)
