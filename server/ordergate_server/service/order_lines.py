"""Partial orders: cancelling lines, or pieces of them, before they ship.

Each named line keeps the pieces given (0 cancels it). What it held is released at once. An
order with nothing left to ship is CANCELLED (or DISPATCHED, when what is left has shipped). A
held order is judged again on what is left: the hold reasons that concern a cancelled line go
with it, and when nothing but stock holds it any more its stock is planned afresh (an order held
for an unknown SKU on one line goes through once that line is cancelled).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection

from ..domain.access import Principal
from ..domain.lifecycle import LINES_CANCELLABLE
from ..domain.model import STOCK_HOLDS, HoldReason, OrderState
from ..domain.records import LineRecord, OrderRecord
from ..storage import Database, orders
from . import order_stock, submit
from .errors import ErrorKind, FieldViolation, ServiceError
from .lifecycle import illegal
from .order_access import Locked, locked_order, record_change, reload


def cancel_lines(
    db: Database,
    principal: Principal,
    order_id: str,
    keep: Sequence[tuple[int, int]],
    reason: str,
) -> OrderRecord:
    """Keep `keep` pieces ((line number, pieces)) of the lines named; cancel the rest."""
    if not reason.strip():
        raise _invalid("REASON_MISSING", "Say why lines are cancelled.", "reason", "required")
    numbers = [number for number, _ in keep]
    if not keep or len(set(numbers)) != len(numbers):
        raise _invalid("LINES_INVALID", "Name each line to change once.", "lines", "name lines")
    now = datetime.now(UTC)
    with db.transaction() as tx:
        locked = locked_order(tx, principal, order_id)
        if locked.order.state not in LINES_CANCELLABLE:
            raise illegal(locked.order, OrderState.CANCELLED)
        apply(tx, principal, locked, dict(keep), reason, now)
        return reload(tx, order_id)


def apply(
    tx: Connection,
    principal: Principal,
    locked: Locked,
    keep: dict[int, int],
    reason: str,
    now: datetime,
    *,
    event: str = "LINES_CANCELLED",
) -> None:
    """Cancel down to `keep` (line number -> pieces kept) on a locked order and move it on."""
    order = locked.order
    lines = _kept(order, keep)
    changed = [(old, new) for old, new in zip(order.lines, lines, strict=True) if old != new]
    if not changed:
        return  # already so: a retry
    if order.holds_stock:
        released = [(old.sku, old.open - new.open) for old, new in changed]
        order_stock.move(tx, principal.client_name, order, released, order_stock.RELEASE, now)
    orders.set_line_quantities(tx, locked.seq, lines)
    state, reasons, location = _afterwards(tx, principal, order, lines, now)
    if (state, reasons, location) != (order.state, order.hold_reasons, order.allocation_location):
        orders.set_state(
            tx,
            locked.seq,
            state,
            now,
            hold_reasons=reasons,
            allocation_location=location,
            held_from=order.held_from if state is OrderState.ON_HOLD else None,
        )
    detail = "; ".join(f"line {new.line_number}: {old.kept} -> {new.kept}" for old, new in changed)
    record_change(
        tx,
        principal,
        locked,
        event=event,
        new_state=state,
        detail=f"{detail} ({reason})",
        now=now,
        action="order.cancel_lines",
        reason=reason,
        before={"state": order.state.value, "lines": {o.line_number: o.kept for o, _ in changed}},
        after={"state": state.value, "lines": {n.line_number: n.kept for _, n in changed}},
    )


def _kept(order: OrderRecord, keep: dict[int, int]) -> list[LineRecord]:
    """The order's lines with `keep` applied; INVALID_ARGUMENT naming each impossible line."""
    known = {line.line_number: line for line in order.lines}
    violations = [
        FieldViolation(f"lines[line_number={number}]", "no such line")
        for number in keep
        if number not in known
    ]
    violations += [
        FieldViolation(
            f"lines[line_number={number}].quantity",
            f"{known[number].shipped} (shipped) to {known[number].kept} (still ordered)",
        )
        for number, pieces in keep.items()
        if number in known and not known[number].shipped <= pieces <= known[number].kept
    ]
    if violations:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "LINES_INVALID",
            "Keep between what has shipped and what is still ordered, of lines of the order.",
            field_violations=violations,
        )
    return [
        line._replace(cancelled=line.quantity - keep[line.line_number])
        if line.line_number in keep
        else line
        for line in order.lines
    ]


def _afterwards(
    tx: Connection,
    principal: Principal,
    order: OrderRecord,
    lines: list[LineRecord],
    now: datetime,
) -> tuple[OrderState, tuple[HoldReason, ...], str | None]:
    """Where the order stands with `lines`: (state, hold reasons, allocation location)."""
    if all(line.open == 0 for line in lines):
        if any(line.shipped for line in lines):
            return OrderState.DISPATCHED, (), order.allocation_location
        return OrderState.CANCELLED, (), None
    if order.state is not OrderState.ON_HOLD or order.held_from is not None:
        return order.state, order.hold_reasons, order.allocation_location or None
    gone = {position for position, line in enumerate(lines) if line.open == 0}
    reasons = tuple(
        reason
        for reason in order.hold_reasons
        if reason.code not in STOCK_HOLDS and line_of(reason) not in gone
    )
    if reasons or order.problem_submission:
        return OrderState.ON_HOLD, reasons or order.hold_reasons, None
    # Nothing but stock holds it now: plan its stock afresh.
    plan = submit.plan_allocation(tx, order_stock.open_lines(lines), lock=True)
    if not plan.location:
        return OrderState.ON_HOLD, plan.reasons, None
    submit.allocate(tx, principal.client_name, order.id, plan, now)
    return OrderState.ACCEPTED, (), plan.location


def line_of(reason: HoldReason) -> int | None:
    """The line position a reason's field names (`lines[3].sku` -> 3), if any."""
    if not reason.field.startswith("lines["):
        return None
    index = reason.field[len("lines[") : reason.field.find("]")]
    return int(index) if index.isdigit() else None


def _invalid(reason: str, message: str, field: str, description: str) -> ServiceError:
    return ServiceError(
        ErrorKind.INVALID_ARGUMENT,
        reason,
        message,
        field_violations=[FieldViolation(field, description)],
    )
