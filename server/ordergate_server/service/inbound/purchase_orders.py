"""Purchase orders and the receipts recorded against them.

A receipt is one transaction: the purchase order locked, each line's good pieces into the
sellable bucket and damaged ones into quarantine at the order's location (stock records locked
in SKU order, as allocations lock them, so the two never deadlock), the variances, the order's
new state, what is still on order, and the audit entry. A receipt that raises what is available
marks its SKUs for the stock re-check (stock_log.record), which then judges the held orders.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ...domain.access import Principal
from ...domain.ids import new_id
from ...domain.limits import shown
from ...storage import Database, audit
from ...storage import purchase_orders as store
from .. import paging, stock_buckets
from ..errors import ErrorKind, FieldViolation, ServiceError
from . import checks

OPEN, PARTLY_RECEIVED, RECEIVED, CLOSED = "OPEN", "PARTLY_RECEIVED", "RECEIVED", "CLOSED"
STATES = (OPEN, PARTLY_RECEIVED, RECEIVED, CLOSED)


@dataclass(frozen=True)
class NewLine:
    line_number: int  # 0: numbered in request order
    code: str
    quantity: int
    expected_date: str
    notes: str = ""


@dataclass(frozen=True)
class ReceivedLine:
    line_number: int  # 0: by code
    code: str
    received: int
    damaged: int
    variance_reason: str = ""


# --- create ------------------------------------------------------------------------------------


def create_purchase_order(
    db: Database,
    principal: Principal,
    *,
    po_number: str,
    supplier: str,
    location: str,
    lines: list[NewLine],
    notes: str = "",
) -> tuple[store.PurchaseOrder, bool]:
    """The purchase order and whether it existed already with this content (replayed)."""
    now = datetime.now(UTC)
    try:
        with db.transaction() as tx:
            return create_in(tx, principal, po_number, supplier, location, lines, notes, now)
    except IntegrityError:  # created meanwhile by another call: answer as a replay does
        with db.transaction() as tx:
            return create_in(tx, principal, po_number, supplier, location, lines, notes, now)


def create_in(
    tx: Connection,
    principal: Principal,
    po_number: str,
    supplier: str,
    location: str,
    lines: list[NewLine],
    notes: str,
    now: datetime,
) -> tuple[store.PurchaseOrder, bool]:
    po_number = checks.code_text(po_number, "po_number", "purchase order number")
    supplier = checks.name(supplier, "supplier", "supplier")
    notes = checks.text(notes, "notes")
    location = checks.location(tx, location)
    checks.line_count(len(lines))
    rows = []
    numbers: set[int] = set()
    for index, line in enumerate(lines):
        where = f"lines[{index}]"
        number = line.line_number or index + 1
        if not 1 <= number <= 1_000_000 or number in numbers:
            raise checks.invalid(
                "LINE_NUMBER_INVALID",
                f"Line number {number} is taken or out of range (1 to 1,000,000).",
                f"{where}.line_number",
            )
        numbers.add(number)
        rows.append(
            {
                "line_number": number,
                "sku": checks.stocked_sku(tx, line.code, f"{where}.code"),
                "quantity": checks.pieces(line.quantity, f"{where}.quantity"),
                "expected_date": checks.iso_date(line.expected_date, f"{where}.expected_date"),
                "notes": checks.text(line.notes, f"{where}.notes"),
                "received": 0,
                "damaged": 0,
            }
        )
    content = hashlib.sha256(
        json.dumps([supplier, location, notes, rows], sort_keys=True).encode()
    ).hexdigest()
    existing = store.get(tx, po_number)
    if existing is not None:
        if existing.content_sha256 != content:
            raise ServiceError(
                ErrorKind.ALREADY_EXISTS,
                "PURCHASE_ORDER_EXISTS",
                f"Purchase order {shown(po_number)} exists with other content.",
                metadata={"po_number": po_number},
            )
        return existing, True
    store.insert(
        tx,
        {
            "po_number": po_number,
            "supplier": supplier,
            "location": location,
            "state": OPEN,
            "notes": notes,
            "created_at": now,
            "updated_at": now,
            "created_by": principal.client_name,
            "close_reason": "",
            "content_sha256": content,
        },
        rows,
    )
    stock_buckets.refresh_on_order(tx, [(str(row["sku"]), location) for row in rows])
    _audit(tx, principal, "purchase_order.create", po_number, now, after={"lines": len(rows)})
    created = store.get(tx, po_number)
    assert created is not None
    return created, False


# --- read --------------------------------------------------------------------------------------


def get_purchase_order(db: Database, po_number: str) -> store.PurchaseOrder:
    with db.reader() as conn:
        found = store.get(conn, po_number)
    if found is None:
        raise _not_found(po_number)
    return found


@dataclass(frozen=True)
class Page:
    purchase_orders: list[store.PurchaseOrder]
    next_page_token: str


def list_purchase_orders(
    db: Database, *, state: str = "", supplier: str = "", page_size: int = 0, page_token: str = ""
) -> Page:
    size = paging.page_size(page_size, default=50, maximum=500)
    before = _decode_token(page_token)
    with db.reader() as conn:
        found = store.page(conn, state=state, supplier=supplier, before_seq=before, limit=size + 1)
    token = ""
    if len(found) > size:
        found = found[:size]
        token = base64.urlsafe_b64encode(str(found[-1].seq).encode()).decode()
    return Page(found, token)


def _decode_token(token: str) -> int | None:
    if not token:
        return None
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise checks.invalid("PAGE_TOKEN_INVALID", "page_token is invalid.", "page_token") from None


# --- receive -----------------------------------------------------------------------------------


def record_receipt(
    db: Database,
    principal: Principal,
    *,
    request_id: str,
    po_number: str,
    lines: list[ReceivedLine],
    note: str = "",
) -> tuple[str, store.PurchaseOrder, bool]:
    """(receipt id, the purchase order after it, replayed)."""
    checks.request_id(request_id)
    now = datetime.now(UTC)
    with db.transaction() as tx:
        earlier = store.receipt_by_request_id(tx, request_id)
        if earlier is not None:
            found = store.get(tx, earlier[1])
            assert found is not None
            return earlier[0], found, True
        receipt_id = receive_in(tx, principal, request_id, po_number, lines, note, now)
        after = store.get(tx, po_number)
        assert after is not None
        return receipt_id, after, False


def receive_in(
    tx: Connection,
    principal: Principal,
    request_id: str,
    po_number: str,
    lines: list[ReceivedLine],
    note: str,
    now: datetime,
) -> str:
    note = checks.text(note, "note")
    checks.line_count(len(lines))
    order = store.get(tx, po_number, lock=True, full=False)
    if order is None:
        raise _not_found(po_number)
    if order.state not in (OPEN, PARTLY_RECEIVED):
        raise ServiceError(
            ErrorKind.FAILED_PRECONDITION,
            "PURCHASE_ORDER_NOT_OPEN",
            f"Purchase order {shown(po_number)} is {order.state}; nothing more is expected.",
            metadata={"po_number": po_number, "state": order.state},
        )
    by_number = {line.line_number: line for line in order.lines}
    taken: dict[int, tuple[store.PoLine, ReceivedLine]] = {}
    for index, given in enumerate(lines):
        where = f"lines[{index}]"
        line = _po_line(tx, order, by_number, given, where)
        if line.line_number in taken:
            raise checks.invalid("LINE_REPEATED", f"Line {line.line_number} is named twice.", where)
        checks.pieces(given.received, f"{where}.received_quantity", allow_zero=True)
        checks.pieces(given.damaged, f"{where}.damaged_quantity", allow_zero=True)
        if given.received + given.damaged == 0:
            raise checks.invalid("QUANTITY_INVALID", "Nothing received on this line.", where)
        reason = checks.text(given.variance_reason, f"{where}.variance_reason")
        if given.received + given.damaged > line.open and not reason:
            raise checks.invalid(
                "VARIANCE_REASON_MISSING",
                f"Line {line.line_number} has {line.open} open; say why "
                f"{given.received + given.damaged} came.",
                f"{where}.variance_reason",
            )
        taken[line.line_number] = (line, given)
    receipt_id = new_id()
    variances: list[store.Variance] = []
    # Stock records in SKU order, as an allocation locks them.
    for line, given in sorted(taken.values(), key=lambda pair: (pair[0].sku, pair[0].line_number)):
        reason = given.variance_reason.strip()
        stock_buckets.move(
            tx,
            sku=line.sku,
            location=order.location,
            kind="RECEIPT",
            actor=principal.client_name,
            reason=f"purchase order {po_number} line {line.line_number}",
            now=now,
            sellable=given.received,
            quarantine=given.damaged,
        )
        store.add_received(tx, order.seq, line.line_number, given.received, given.damaged)
        over = given.received + given.damaged - line.open
        if over > 0:
            variances.append(
                store.Variance(
                    line.line_number, "OVER", over, now, principal.client_name, reason, receipt_id
                )
            )
        if given.damaged:
            variances.append(
                store.Variance(
                    line.line_number,
                    "DAMAGED",
                    given.damaged,
                    now,
                    principal.client_name,
                    reason or "damaged on arrival",
                    receipt_id,
                )
            )
    store.insert_receipt(
        tx,
        {
            "id": receipt_id,
            "po_seq": order.seq,
            "request_id": request_id,
            "received_at": now,
            "actor": principal.client_name,
            "note": note,
        },
        [
            store.ReceiptLine(number, given.received, given.damaged)
            for number, (_, given) in sorted(taken.items())
        ],
    )
    store.insert_variances(tx, order.seq, variances)
    open_after = {
        line.line_number: line.open
        - (taken[line.line_number][1].received + taken[line.line_number][1].damaged)
        if line.line_number in taken
        else line.open
        for line in order.lines
    }
    state = RECEIVED if all(left <= 0 for left in open_after.values()) else PARTLY_RECEIVED
    store.set_state(tx, order.seq, state, now)
    stock_buckets.refresh_on_order(tx, [(line.sku, order.location) for line, _ in taken.values()])
    _audit(
        tx,
        principal,
        "purchase_order.receipt",
        po_number,
        now,
        reason=note,
        before={"state": order.state},
        after={
            "state": state,
            "receipt": receipt_id,
            "lines": {
                str(n): {"received": g.received, "damaged": g.damaged}
                for n, (_, g) in sorted(taken.items())
            },
        },
    )
    return receipt_id


def _po_line(
    tx: Connection,
    order: store.PurchaseOrder,
    by_number: dict[int, store.PoLine],
    given: ReceivedLine,
    where: str,
) -> store.PoLine:
    if given.line_number:
        line = by_number.get(given.line_number)
        if line is None:
            raise checks.invalid(
                "LINE_UNKNOWN",
                f"Purchase order {order.po_number} has no line {given.line_number}.",
                f"{where}.line_number",
            )
        return line
    sku = checks.stocked_sku(tx, given.code, f"{where}.code")
    matching = [line for line in order.lines if line.sku == sku]
    if len(matching) != 1:
        raise checks.invalid(
            "LINE_UNKNOWN" if not matching else "LINE_AMBIGUOUS",
            f"Purchase order {order.po_number} has {len(matching)} lines for {sku}; "
            "name the line number.",
            f"{where}.code",
        )
    return matching[0]


# --- close -------------------------------------------------------------------------------------


def close_purchase_order(
    db: Database, principal: Principal, *, po_number: str, reason: str
) -> store.PurchaseOrder:
    now = datetime.now(UTC)
    reason = checks.text(reason, "reason")
    with db.transaction() as tx:
        order = store.get(tx, po_number, lock=True, full=False)
        if order is None:
            raise _not_found(po_number)
        if order.state not in (OPEN, PARTLY_RECEIVED):
            raise ServiceError(
                ErrorKind.FAILED_PRECONDITION,
                "PURCHASE_ORDER_NOT_OPEN",
                f"Purchase order {shown(po_number)} is {order.state} already.",
                metadata={"po_number": po_number, "state": order.state},
            )
        short = [line for line in order.lines if line.open > 0]
        if short and not reason:
            raise checks.invalid(
                "REASON_MISSING",
                f"{len(short)} line(s) are still open; say why the order is closed short.",
                "reason",
            )
        store.insert_variances(
            tx,
            order.seq,
            [
                store.Variance(
                    line.line_number, "UNDER", line.open, now, principal.client_name, reason, None
                )
                for line in short
            ],
        )
        store.set_state(tx, order.seq, CLOSED, now, close_reason=reason)
        stock_buckets.refresh_on_order(tx, [(line.sku, order.location) for line in order.lines])
        _audit(
            tx,
            principal,
            "purchase_order.close",
            po_number,
            now,
            reason=reason,
            before={"state": order.state},
            after={"state": CLOSED, "short_lines": [line.line_number for line in short]},
        )
        closed = store.get(tx, po_number)
    assert closed is not None
    return closed


def _audit(
    tx: Connection,
    principal: Principal,
    action: str,
    po_number: str,
    now: datetime,
    *,
    reason: str = "",
    before: dict[str, object] | None = None,
    after: dict[str, object] | None = None,
) -> None:
    audit.record(
        tx,
        [
            audit.AuditEntry(
                at=now,
                actor=principal.client_name,
                role=principal.role.value,
                action=action,
                subject=f"purchase_order/{po_number}",
                reason=reason,
                before=before,
                after=after,
            )
        ],
    )


def _not_found(po_number: str) -> ServiceError:
    return ServiceError(
        ErrorKind.NOT_FOUND,
        "PURCHASE_ORDER_NOT_FOUND",
        f"No purchase order {shown(po_number)}.",
        metadata={"po_number": po_number[:64]},
        field_violations=[FieldViolation("po_number", "unknown")],
    )
