"""A buyer's UBL OrderCancellation or OrderChange, applied to the order it names.

The order is found as orders are identified: the client, the buyer's order number
(OrderReference) and the buyer. An order not yet picked (ON_HOLD or ACCEPTED) can be cancelled
or changed; later, the document is refused with ORDER_NOT_CANCELLABLE or ORDER_NOT_CHANGEABLE
and the order stays as it is. Either way the answer is an OrderResponse: AP (done) or RE
(refused, with the reason).

A change replaces the lines it names (a new quantity, a deleted line, an added line) and plans
the order's stock afresh: its allocation is released and the changed lines allocated from one
location, as a new order's are. If the changed order cannot be allocated, an accepted order
keeps its old lines and allocation and the change is refused (INSUFFICIENT_STOCK); a held order
takes the change and stays held for stock, to be re-checked.

Every document is kept as a submission of the order (GetOrderDocument, idempotent by its
request_id like an order), accepted or not; the order's history and the audit log name it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Connection

from ..domain.access import Principal
from ..domain.model import STOCK_HOLDS, OrderState
from ..domain.records import LineRecord, OrderRecord
from ..formats import BuyerAmendment
from ..formats import ubl_amendments as doc
from ..storage import Database, catalog, orders, submissions
from . import order_stock
from .errors import ErrorKind, FieldViolation, ServiceError
from .order_access import Locked, locked_order, record_change, reload
from .order_lines import line_of
from .submit import allocate, plan_allocation

AMENDABLE = frozenset({OrderState.ON_HOLD, OrderState.ACCEPTED})
ACCEPTED = "ACCEPTED"  # the submission outcome's second half when the document was carried out


@dataclass(frozen=True)
class AmendmentOutcome:
    """What became of a buyer's amendment."""

    kind: str  # "OrderCancellation" or "OrderChange"
    accepted: bool
    reason: str = ""  # why not: a stable code
    message: str = ""

    @property
    def stored(self) -> str:
        """As submissions.outcome keeps it."""
        return f"{self.kind}:{ACCEPTED if self.accepted else self.reason}"[:40]


class _Refused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


class _DryRun(Exception):
    def __init__(self, result: tuple[OrderRecord, AmendmentOutcome]) -> None:
        self.result = result


def apply(
    db: Database,
    principal: Principal,
    amendment: BuyerAmendment,
    *,
    request_id: str,
    new_submission: submissions.NewSubmission,
    dry_run: bool = False,
) -> tuple[OrderRecord, AmendmentOutcome, bool]:
    """Carry out `amendment` (or, with `dry_run`, say what would become of it); returns the
    order as it now is, the outcome, and whether this was a replay of `request_id`."""
    now = datetime.now(UTC)
    answer: tuple[OrderRecord, AmendmentOutcome, bool] | ServiceError
    try:
        with db.transaction() as tx:
            previous = submissions.find(tx, principal.client_id, request_id)
            if previous is not None and not dry_run:
                return _replayed(tx, previous, new_submission.payload_sha256, amendment)
            identity = (principal.client_id, amendment.client_order_id, amendment.customer_account)
            key = orders.find_by_identity(tx, identity, lock=True)
            if key is None:
                answer = _not_found(amendment)
                if dry_run:
                    raise answer
                # Kept all the same: nothing sent is lost.
                outcome_text = f"{amendment.kind}:ORDER_NOT_FOUND"[:40]
                kept = replace(new_submission, order_id=None, outcome=outcome_text)
                submissions.insert_many(tx, [kept])
            else:
                locked = locked_order(tx, principal, key.id)
                outcome = _carry_out(tx, principal, locked, amendment, now)
                if dry_run:
                    raise _DryRun((reload(tx, key.id), outcome))
                kept = replace(new_submission, order_id=key.id, outcome=outcome.stored)
                submissions.insert_many(tx, [kept])
                answer = (reload(tx, key.id), outcome, False)
    except _DryRun as done:
        return (*done.result, False)
    if isinstance(answer, ServiceError):
        raise answer
    return answer


def _carry_out(
    tx: Connection,
    principal: Principal,
    locked: Locked,
    amendment: BuyerAmendment,
    now: datetime,
) -> AmendmentOutcome:
    """Cancel or change the locked order; a refusal leaves it exactly as it was."""
    savepoint = tx.begin_nested()
    try:
        if amendment.kind == "OrderCancellation":
            _cancel(tx, principal, locked, amendment, now)
        else:
            _change(tx, principal, locked, amendment, now)
    except _Refused as refused:
        savepoint.rollback()
        return AmendmentOutcome(amendment.kind, False, refused.reason, refused.message)
    savepoint.commit()
    return AmendmentOutcome(amendment.kind, True)


def _cancel(
    tx: Connection, principal: Principal, locked: Locked, amendment: BuyerAmendment, now: datetime
) -> None:
    order = locked.order
    if order.state is OrderState.CANCELLED:
        return  # already so
    if order.state not in AMENDABLE:
        raise _Refused(
            "ORDER_NOT_CANCELLABLE",
            f"Order {order.client_order_id} is {order.state.value}: picking has started, so "
            "it can no longer be cancelled by the buyer.",
        )
    order_stock.release_all(tx, principal.client_name, order, now)
    orders.set_state(tx, locked.seq, OrderState.CANCELLED, now, allocation_location=None)
    why = amendment.note or "no reason given"
    record_change(
        tx,
        principal,
        locked,
        event="CANCELLED",
        new_state=OrderState.CANCELLED,
        detail=f"cancelled by the buyer's OrderCancellation {amendment.document_id}: {why}",
        now=now,
        action="order.cancelled",
        reason=why,
    )


def _change(
    tx: Connection, principal: Principal, locked: Locked, amendment: BuyerAmendment, now: datetime
) -> None:
    order = locked.order
    if order.state not in AMENDABLE or order.held_from is not None or order.problem_submission:
        raise _Refused(
            "ORDER_NOT_CHANGEABLE",
            f"Order {order.client_order_id} is {order.state.value}"
            + (" on a manual hold" if order.held_from is not None else "")
            + ": only an order not yet picked, and not held by staff, can be changed by the "
            "buyer.",
        )
    lines = _changed_lines(tx, order, amendment)
    order_stock.release_all(tx, principal.client_name, order, now)
    changed_positions = {
        position
        for position, line in enumerate(lines)
        if position >= len(order.lines) or order.lines[position] != line
    }
    other_reasons = tuple(
        reason
        for reason in order.hold_reasons
        if reason.code not in STOCK_HOLDS and line_of(reason) not in changed_positions
    )
    state, reasons, location = OrderState.ON_HOLD, other_reasons, None
    if not other_reasons:
        plan = plan_allocation(tx, order_stock.open_lines(lines), lock=True)
        if plan.location:
            allocate(tx, principal.client_name, order.id, plan, now)
            state, reasons, location = OrderState.ACCEPTED, (), plan.location
        elif order.state is OrderState.ACCEPTED:
            raise _Refused(
                "INSUFFICIENT_STOCK",
                "The changed order cannot be allocated from one location: "
                + "; ".join(reason.message for reason in plan.reasons[:3]),
            )
        else:
            reasons = plan.reasons
    orders.replace_lines(tx, locked.seq, lines)
    orders.set_state(tx, locked.seq, state, now, hold_reasons=reasons, allocation_location=location)
    summary = "; ".join(_described(order, lines))
    record_change(
        tx,
        principal,
        locked,
        event="CHANGED",
        new_state=state,
        detail=f"the buyer's OrderChange {amendment.document_id}: {summary}"
        + (f" ({amendment.note})" if amendment.note else ""),
        now=now,
        action="order.change",
        reason=amendment.note,
        before={"state": order.state.value, "lines": _kept(order.lines)},
        after={"state": state.value, "lines": _kept(lines)},
    )


def _changed_lines(
    tx: Connection, order: OrderRecord, amendment: BuyerAmendment
) -> list[LineRecord]:
    """The order's lines with the document's changes; _Refused naming what cannot be."""
    lines = list(order.lines)
    position = {line.line_number: index for index, line in enumerate(lines)}
    wanted = [c for c in amendment.lines if c.status != doc.UNCHANGED]
    if not wanted:
        raise _Refused("LINES_INVALID", "The OrderChange changes no line (LineStatusCode 1-3).")
    codes = {(c.code, c.code_is_barcode) for c in wanted if c.code}
    products = catalog.resolve_products(tx, codes)
    problems: list[str] = []
    for change in wanted:
        number, at = change.line_number, position.get(change.line_number)
        if change.status not in (doc.ADDED, doc.DELETED, doc.CHANGED):
            problems.append(f"line {number}: LineStatusCode {change.status!r} is not 1, 2 or 3")
        elif change.status == doc.ADDED and at is not None:
            problems.append(f"line {number} is added but the order has a line {number}")
        elif change.status != doc.ADDED and at is None:
            problems.append(f"line {number} is not a line of the order")
        elif change.status == doc.DELETED:
            assert at is not None
            lines[at] = lines[at]._replace(cancelled=lines[at].quantity)
        elif not change.quantity:
            problems.append(f"line {number}: the quantity is not a positive whole number")
        else:
            product = products.get((change.code, change.code_is_barcode)) if change.code else None
            if change.code and product is None:
                problems.append(f"line {number}: {change.code!r} is not a product")
                continue
            if at is None:
                assert product is not None or not change.code
                if product is None:
                    problems.append(f"line {number}: an added line names its product")
                    continue
                position[number] = len(lines)
                lines.append(LineRecord(number, change.code, product.sku, change.quantity))
            else:
                old = lines[at]
                lines[at] = old._replace(
                    submitted_code=change.code or old.submitted_code,
                    sku=product.sku if product is not None else old.sku,
                    quantity=change.quantity,
                    cancelled=0,
                )
    if problems:
        raise _Refused("LINES_INVALID", "; ".join(problems[:5]))
    if all(line.kept == 0 for line in lines):
        raise _Refused(
            "LINES_INVALID", "The change leaves no line: send an OrderCancellation instead."
        )
    return lines


def _described(order: OrderRecord, lines: list[LineRecord]) -> list[str]:
    before = {line.line_number: line for line in order.lines}
    said = []
    for line in lines:
        old = before.get(line.line_number)
        if old is None:
            said.append(f"line {line.line_number} added: {line.kept} x {line.sku}")
        elif old != line:
            said.append(f"line {line.line_number}: {old.kept} -> {line.kept} x {line.sku}")
    return said


def _kept(lines: Sequence[LineRecord]) -> dict[int, int]:
    return {line.line_number: line.kept for line in lines}


def _replayed(
    tx: Connection,
    previous: submissions.Submission,
    payload_sha256: str,
    amendment: BuyerAmendment,
) -> tuple[OrderRecord, AmendmentOutcome, bool]:
    if previous.payload_sha256 != payload_sha256:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "IDEMPOTENCY_KEY_REUSED",
            "This request_id was already used for a different payload; use a new request_id "
            "for new content.",
            field_violations=[FieldViolation("request_id", "already used for other content")],
        )
    if previous.order_id is None:
        raise _not_found(amendment)
    kind, _, result = previous.outcome.partition(":")
    outcome = AmendmentOutcome(
        kind,
        result == ACCEPTED,
        "" if result == ACCEPTED else result,
        "" if result == ACCEPTED else "Refused earlier (a replay of the same request).",
    )
    return reload(tx, previous.order_id), outcome, True


def _not_found(amendment: BuyerAmendment) -> ServiceError:
    return ServiceError(
        ErrorKind.NOT_FOUND,
        "ORDER_NOT_FOUND",
        f"The {amendment.kind} names order {amendment.client_order_id[:64]!r} of buyer "
        f"{amendment.customer_account[:64]!r}: no such order of this client.",
        metadata={"order_id": amendment.client_order_id[:64]},
    )
