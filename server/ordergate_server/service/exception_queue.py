"""The exception queue: held orders wait for a person, who corrects, releases or cancels them.

A release is a manager's override of rules that a person may judge (a phone number, a missing
handling note); it is never allowed for what would make the order impossible to fulfil (an
unknown SKU, a missing address, stock that is not there). It still has to allocate stock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from ..domain.access import Principal, Role
from ..domain.ids import new_id
from ..domain.model import HoldCode, OrderDraft, OrderState
from ..domain.records import EventRecord, OrderRecord
from ..formats import read_order
from ..storage import Database, audit, catalog, orders, stock_log
from ..storage import tables as t
from . import paging, pii_access, submit
from .errors import ErrorKind, FieldViolation, ServiceError
from .orders import decode_page_token, encode_page_token

# Hold reasons a manager may override with ReleaseOrder; every other code must be corrected.
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
    min_age: timedelta | None = None,
    page_size: int = 0,
    page_token: str = "",
    fits: Callable[[OrderRecord], bool] | None = None,
) -> tuple[list[OrderRecord], str]:
    """Held orders, oldest first, optionally only with a reason code, a customer, an age;
    `fits` bounds the page in bytes (paging.fitting)."""
    size = paging.page_size(page_size, default=50, maximum=500)
    digest = hashlib.sha256(
        json.dumps([reason_code, customer_account, str(min_age)]).encode()
    ).hexdigest()[:16]
    after = decode_page_token(page_token, digest) if page_token else 0
    where = orders.OrderFilter(
        state=OrderState.ON_HOLD,
        customer_account=customer_account,
        created_before=datetime.now(UTC) - min_age if min_age else None,
    )
    found: list[tuple[int, OrderRecord]] = []
    with db.reader() as conn:
        while len(found) <= size:
            batch = orders.list_orders(conn, where, after_seq=after, limit=size * 2 + 1)
            if not batch:
                break
            after = batch[-1][0]
            found += [
                (seq, order)
                for seq, order in batch
                if not reason_code or any(r.code.value == reason_code for r in order.hold_reasons)
            ]
    taken = paging.fitting([order for _, order in found[:size]], fits)
    token = encode_page_token(found[taken - 1][0], digest) if len(found) > taken else ""
    listed = [order for _, order in found[:taken]]
    pii_access.record_staff_reads(db, principal, listed, "ListHeldOrders")
    return listed, token


def release_order(db: Database, principal: Principal, order_id: str, reason: str) -> OrderRecord:
    if not reason.strip():
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "REASON_MISSING",
            "A release needs a reason.",
            field_violations=[FieldViolation("reason", "required")],
        )
    now = datetime.now(UTC)
    with db.transaction() as tx:
        seq = orders.seq_of(tx, order_id, lock=True)
        order = orders.get_order(tx, client_id=None, order_id=order_id) if seq else None
        if seq is None or order is None:
            raise ServiceError(ErrorKind.NOT_FOUND, "ORDER_NOT_FOUND", f"No order {order_id}.")
        if order.state is not OrderState.ON_HOLD:
            raise _precondition("NOT_ON_HOLD", f"Order {order_id} is {order.state.value}.", order)
        blocking = sorted({r.code.value for r in order.hold_reasons if r.code not in OVERRIDABLE})
        if blocking:
            raise _precondition(
                "HOLD_NOT_OVERRIDABLE",
                f"These holds cannot be overridden, only corrected: {', '.join(blocking)}.",
                order,
                blocking,
            )
        plan = submit.plan_allocation(tx, order.lines, lock=True)
        if not plan.location:
            raise _precondition(
                "INSUFFICIENT_STOCK",
                "; ".join(r.message for r in plan.reasons),
                order,
                ["INSUFFICIENT_STOCK"],
            )
        catalog.allocate(tx, plan.location, plan.demand)
        stock_log.record(tx, submit.allocation_changes(plan, principal, order.id, now))
        tx.execute(
            update(t.orders)
            .where(t.orders.c.seq == seq)
            .values(
                state=OrderState.ACCEPTED.value,
                hold_reasons=[],
                allocation_location=plan.location,
                updated_at=now,
            )
        )
        overridden = ", ".join(sorted({r.code.value for r in order.hold_reasons}))
        detail = f"released by {principal.role.value} ({overridden}): {reason}"
        orders.insert_events(
            tx,
            seq,
            [
                EventRecord(
                    new_id(),
                    now,
                    principal.client_name,
                    "RELEASED",
                    OrderState.ON_HOLD,
                    OrderState.ACCEPTED,
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
                    action="order.release",
                    subject=f"order/{order.id}",
                    reason=reason,
                    before={"state": "ON_HOLD", "hold_reasons": overridden},
                    after={"state": "ACCEPTED", "allocation_location": plan.location},
                )
            ],
        )
        released = orders.get_order(tx, client_id=None, order_id=order_id)
    assert released is not None
    return released


def correct_order(
    db: Database, principal: Principal, order_id: str, payload: bytes, request_id: str
) -> submit.SubmitResult:
    """New XML for a held order, judged afresh exactly like a resubmission by its client."""
    with db.reader() as conn:
        order = orders.get_order(conn, client_id=None, order_id=order_id)
        owner = orders.client_id_by_name(conn, order.client) if order else None
    if order is None or owner is None:
        raise ServiceError(ErrorKind.NOT_FOUND, "ORDER_NOT_FOUND", f"No order {order_id}.")
    if order.state is not OrderState.ON_HOLD:
        raise _precondition("NOT_ON_HOLD", f"Order {order_id} is {order.state.value}.", order)
    document = read_order(payload)
    corrected_id = document.client_order_id if isinstance(document, OrderDraft) else ""
    if not order.client_order_id or corrected_id != order.client_order_id:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "ORDER_ID_MISMATCH",
            "The corrected document must be a readable order with the held order's order id "
            f"({order.client_order_id or 'none: cancel it and have the client resubmit'}).",
            field_violations=[FieldViolation("order_xml", "OrderId must match the held order")],
        )
    acting_for = Principal(owner, order.client, Role.WEBSITE)
    return submit.submit_order(
        db, acting_for, request_id=request_id, payload=payload, acting=principal
    )


def _precondition(
    reason: str, message: str, order: OrderRecord, codes: list[str] | None = None
) -> ServiceError:
    metadata = {"order": order.id, "state": order.state.value}
    if codes:
        metadata["hold_codes"] = ",".join(codes)
    return ServiceError(ErrorKind.FAILED_PRECONDITION, reason, message, metadata=metadata)
