"""The exception queue: held orders wait for a person, who corrects, releases, accepts short or
cancels them. Orders held for stock alone also resolve themselves (service/recheck.py).

A release is a manager's override of rules that a person may judge (a phone number, a missing
handling note); it is never allowed for what would make the order impossible to fulfil (an
unknown SKU, a missing address). If the stock is not there, the override stands and the order
waits for stock. A release also lifts a manual hold. Accepting short takes what stock there is
and cancels the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ..domain.access import Principal, Role
from ..domain.allocation import ShortLine, most_at_one_location
from ..domain.lifecycle import HOLDABLE
from ..domain.limits import shown
from ..domain.model import STOCK_HOLDS, Channel, HoldCode, HoldReason, OrderState
from ..domain.records import OrderRecord
from ..formats import read_order
from ..storage import Database, orders
from . import order_lines, order_stock, paging, pii_access, submit
from .errors import ErrorKind, FieldViolation, ServiceError
from .lifecycle import illegal
from .order_access import locked_order, record_change, reload
from .orders import (
    _NO_SUCH_CLIENT,
    _client_scope,
    check_hold_code,
    decode_page_token,
    encode_page_token,
)

# Hold reasons a manager may override with ReleaseOrder; every other code must be corrected
# (or, for stock, waited for, accepted short or cancelled).
OVERRIDABLE = frozenset(
    {
        HoldCode.PHONE_MISSING,
        HoldCode.PHONE_INVALID,
        HoldCode.SPECIAL_HANDLING_REQUIRED,
        HoldCode.CURRENCY_MISMATCH,
    }
)


def list_held_orders(
    db: Database,
    principal: Principal,
    *,
    reason_code: str = "",
    customer_account: str = "",
    client: str = "",
    min_age: timedelta | None = None,
    page_size: int = 0,
    page_token: str = "",
    fits: Callable[[OrderRecord], bool] | None = None,
) -> tuple[list[OrderRecord], str]:
    """Held orders, oldest first, optionally only with a reason code, of a client, for a
    customer, of an age; `fits` bounds the page in bytes (paging.fitting)."""
    size = paging.page_size(page_size, default=50, maximum=500)
    if reason_code:
        check_hold_code(reason_code, "reason_code")
    digest = hashlib.sha256(
        json.dumps([reason_code, customer_account, client, str(min_age)]).encode()
    ).hexdigest()[:16]
    after = decode_page_token(page_token, digest) if page_token else 0
    with db.reader() as conn:
        client_id = _client_scope(conn, principal, client)
        if client_id == _NO_SUCH_CLIENT:
            return [], ""
        found = orders.list_orders(
            conn,
            orders.OrderFilter(
                client_id=client_id,
                state=OrderState.ON_HOLD,
                customer_account=customer_account,
                hold_code=reason_code,
                created_before=datetime.now(UTC) - min_age if min_age else None,
            ),
            after_seq=after,
            limit=size + 1,
        )
    taken = paging.fitting([order for _, order in found[:size]], fits)
    token = encode_page_token(found[taken - 1][0], digest) if len(found) > taken else ""
    listed = [order for _, order in found[:taken]]
    pii_access.record_staff_reads(db, principal, listed, "ListHeldOrders")
    return listed, token


def release_order(db: Database, principal: Principal, order_id: str, reason: str) -> OrderRecord:
    _require_reason(reason, "A release needs a reason.")
    now = datetime.now(UTC)
    with db.transaction() as tx:
        locked = locked_order(tx, principal, order_id)
        order = locked.order
        if order.state is not OrderState.ON_HOLD:
            raise _precondition("NOT_ON_HOLD", f"Order {order_id} is {order.state.value}.", order)
        if order.held_from is not None:  # a manual hold: back to where it was, with its stock
            orders.set_state(
                tx,
                locked.seq,
                order.held_from,
                now,
                allocation_location=order.allocation_location,
            )
            record_change(
                tx,
                principal,
                locked,
                event="RELEASED",
                new_state=order.held_from,
                detail=f"manual hold lifted by {principal.role.value}: {reason}",
                now=now,
                action="order.release",
                reason=reason,
                before={"state": "ON_HOLD", "hold_reasons": "MANUAL_HOLD"},
                after={"state": order.held_from.value},
            )
            return reload(tx, order_id)
        codes = {r.code for r in order.hold_reasons}
        blocking = sorted(c.value for c in codes - OVERRIDABLE - STOCK_HOLDS)
        if blocking:
            raise _precondition(
                "HOLD_NOT_OVERRIDABLE",
                f"These holds cannot be overridden, only corrected: {', '.join(blocking)}.",
                order,
                blocking,
            )
        overridden = sorted(c.value for c in codes & OVERRIDABLE)
        if not overridden:
            raise _precondition(
                "AWAITING_STOCK",
                "The order is held for stock alone: it is re-checked whenever stock rises. "
                "RecheckOrders tries now; AcceptShort accepts what there is.",
                order,
                sorted(c.value for c in codes),
            )
        plan = submit.plan_allocation(tx, order_stock.open_lines(order.lines), lock=True)
        reasons: tuple[HoldReason, ...] = ()
        if plan.location:
            submit.allocate(tx, principal.client_name, order.id, plan, now)
            state, outcome = OrderState.ACCEPTED, f"allocated from {plan.location}"
        else:
            state, reasons, outcome = OrderState.ON_HOLD, plan.reasons, "awaiting stock"
        orders.set_state(
            tx, locked.seq, state, now, hold_reasons=reasons, allocation_location=plan.location
        )
        record_change(
            tx,
            principal,
            locked,
            event="RELEASED",
            new_state=state,
            detail=f"released by {principal.role.value} ({', '.join(overridden)}): {reason}; "
            f"{outcome}",
            now=now,
            action="order.release",
            reason=reason,
            before={"state": "ON_HOLD", "hold_reasons": ", ".join(sorted(c.value for c in codes))},
            after={"state": state.value, "allocation_location": plan.location},
        )
        return reload(tx, order_id)


def hold_order(db: Database, principal: Principal, order_id: str, reason: str) -> OrderRecord:
    """A manual hold (MANUAL_HOLD): the order keeps its stock and waits for ReleaseOrder."""
    _require_reason(reason, "A hold needs a reason.")
    now = datetime.now(UTC)
    with db.transaction() as tx:
        locked = locked_order(tx, principal, order_id)
        order = locked.order
        if order.state is OrderState.ON_HOLD and order.held_from is not None:
            return order  # already held so: a retry
        if order.state not in HOLDABLE:
            raise illegal(order, OrderState.ON_HOLD)
        hold = HoldReason(HoldCode.MANUAL_HOLD, "", f"Held by {principal.client_name}: {reason}")
        orders.set_state(
            tx,
            locked.seq,
            OrderState.ON_HOLD,
            now,
            hold_reasons=[hold],
            allocation_location=order.allocation_location,
            held_from=order.state,
        )
        record_change(
            tx,
            principal,
            locked,
            event="HELD",
            new_state=OrderState.ON_HOLD,
            detail=reason,
            now=now,
            action="order.hold",
            reason=reason,
            after={"state": "ON_HOLD", "held_from": order.state.value},
        )
        return reload(tx, order_id)


def accept_short(db: Database, principal: Principal, order_id: str, reason: str) -> OrderRecord:
    """Accept a stock-held order with what one location has; cancel the rest of each line."""
    _require_reason(reason, "Say why the order is accepted short.")
    now = datetime.now(UTC)
    with db.transaction() as tx:
        locked = locked_order(tx, principal, order_id)
        order = locked.order
        if order.state is not OrderState.ON_HOLD or not order.stock_hold:
            raise _precondition(
                "NOT_STOCK_HELD",
                f"Only an order held for stock alone can be accepted short; order {order_id} is "
                f"{order.state.value}.",
                order,
                sorted({r.code.value for r in order.hold_reasons}),
            )
        lines = order_stock.open_lines(order.lines)
        view = submit.StockView.read(tx, [lines], lock=True)
        best = most_at_one_location(
            [
                ShortLine(position, view.kits.get(line.sku, [(line.sku, 1)]), line.quantity)
                for position, line in enumerate(lines)
                if line.quantity
            ],
            {key: row.on_hand - row.allocated for key, row in view.stock.items()},
            view.locations,
        )
        if best is None:
            raise _precondition(
                "NOTHING_AVAILABLE",
                f"No location has any of order {order_id}'s products available.",
                order,
            )
        _, kept = best
        keep = {
            line.line_number: line.shipped + kept.get(position, 0)
            for position, line in enumerate(order.lines)
            if line.open
        }
        order_lines.apply(tx, principal, locked, keep, reason, now, event="ACCEPTED_SHORT")
        return reload(tx, order_id)


def correct_order(
    db: Database,
    principal: Principal,
    order_id: str,
    payload: bytes,
    request_id: str,
) -> submit.SubmitResult:
    """New XML for a held order, judged afresh as a resubmission by its client would be. It
    replaces that order even if it names another buyer (unless that buyer has an order with
    this id already)."""
    with db.reader() as conn:
        order = orders.get_order(conn, client_id=None, order_id=order_id)
        owner = orders.client_id_by_name(conn, order.client) if order else None
    if order is None or owner is None:
        raise ServiceError(ErrorKind.NOT_FOUND, "ORDER_NOT_FOUND", f"No order {shown(order_id)}.")
    if order.state is not OrderState.ON_HOLD or order.held_from is not None:
        raise _precondition("NOT_ON_HOLD", f"Order {order_id} is {order.state.value}.", order)
    corrected_id = read_order(payload).client_order_id
    if not order.client_order_id or corrected_id != order.client_order_id:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "ORDER_ID_MISMATCH",
            "The corrected document must carry the held order's order id "
            f"({order.client_order_id or 'none: cancel it and have the client resubmit'}).",
            field_violations=[FieldViolation("order_xml", "OrderId must match the held order")],
        )
    acting_for = Principal(owner, order.client, Role.WEBSITE)
    return submit.submit_order(
        db,
        acting_for,
        request_id=request_id,
        payload=payload,
        acting=principal,
        channel=Channel.MANUAL,
        replaces=order.id,
    )


def _require_reason(reason: str, message: str) -> None:
    if not reason.strip():
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "REASON_MISSING",
            message,
            field_violations=[FieldViolation("reason", "required")],
        )


def _precondition(
    reason: str, message: str, order: OrderRecord, codes: list[str] | None = None
) -> ServiceError:
    metadata = {"order": order.id, "state": order.state.value}
    if codes:
        metadata["hold_codes"] = ",".join(codes)
    return ServiceError(ErrorKind.FAILED_PRECONDITION, reason, message, metadata=metadata)
