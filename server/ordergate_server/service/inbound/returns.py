"""Returns (RMAs) with triage: authorized for shipped pieces, received into quarantine, then
restocked, reworked or disposed of, line by line (docs/returns.md).

States: AUTHORIZED -> RECEIVED -> TRIAGED (every piece decided, some still in rework) ->
COMPLETED (every piece restocked or disposed of). Each step runs in one transaction that locks
the original order (so two returns of one order cannot both take its last shipped pieces),
changes the stock buckets, writes the order's event (RETURN_*, which webhooks carry as
`return.*`) and an audit entry under `return/<rma id>`.

The credit rule: when a return completes, the customer is credited for every piece restocked
or disposed of, less the disposed pieces triage withheld credit for (damaged by the buyer), at
the order line's unit price (or, for a line the order did not price, the customer's price when
the order was placed); one credit note, `RMA-<return id>`, in the order's currency. No note when
that comes to nothing, or when the order names no customer Ordergate knows.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ...domain.access import Principal
from ...domain.catalog import CreditNoteSpec
from ...domain.ids import new_id
from ...domain.limits import shown
from ...domain.records import OrderRecord
from ...storage import Database, audit, catalog_sync, orders, pricing
from ...storage import returns as store
from .. import paging, stock_buckets
from ..errors import ErrorKind, FieldViolation, ServiceError
from ..order_access import Locked, locked_order, record_change
from ..pricing import prices_in
from . import checks

AUTHORIZED, RECEIVED, TRIAGED, COMPLETED = "AUTHORIZED", "RECEIVED", "TRIAGED", "COMPLETED"
STATES = (AUTHORIZED, RECEIVED, TRIAGED, COMPLETED)
RESTOCK, REWORK, DISPOSE = "RESTOCK", "REWORK", "DISPOSE"


@dataclass(frozen=True)
class Decision:
    line_number: int
    decision: str  # RESTOCK, REWORK, DISPOSE
    quantity: int = 0  # 0: all the line's pieces awaiting triage (or, when none, in rework)
    reason: str = ""
    withhold_credit: bool = False


# --- authorize ---------------------------------------------------------------------------------


def create_return(
    db: Database,
    principal: Principal,
    *,
    rma_id: str,
    order_ref: str,
    lines: list[tuple[int, int]],
    reason: str,
) -> tuple[store.ReturnRecord, bool]:
    """The return and whether it existed already with this content (replayed)."""
    now = datetime.now(UTC)
    try:
        with db.transaction() as tx:
            return create_in(tx, principal, rma_id, order_ref, lines, reason, now)
    except IntegrityError:  # the same RMA made meanwhile by another call: answer as a replay
        with db.transaction() as tx:
            return create_in(tx, principal, rma_id, order_ref, lines, reason, now)


def create_in(
    tx: Connection,
    principal: Principal,
    rma_id: str,
    order_ref: str,
    lines: list[tuple[int, int]],
    reason: str,
    now: datetime,
) -> tuple[store.ReturnRecord, bool]:
    rma_id = checks.code_text(rma_id, "rma_id", "RMA id")
    reason = checks.text(reason, "reason", required="the reason for the return")
    if len(lines) > checks.MAX_LINES:
        checks.line_count(len(lines))
    locked = locked_original(tx, principal, order_ref)
    order = locked.order
    client_id = _client_id(tx, order)
    taken = store.returning(tx, locked.seq)
    wanted = _wanted(order, lines, taken)
    content = hashlib.sha256(
        json.dumps([order.id, reason, sorted(wanted.items())]).encode()
    ).hexdigest()
    existing = store.find(tx, rma_id, client_id=client_id)
    if existing:
        if existing[0].content_sha256 != content:
            raise ServiceError(
                ErrorKind.ALREADY_EXISTS,
                "RETURN_EXISTS",
                f"RMA {shown(rma_id)} exists with other content.",
                metadata={"rma_id": rma_id},
            )
        return existing[0], True
    _check_returnable(order, wanted, taken)
    return_id = new_id()
    store.insert(
        tx,
        {
            "id": return_id,
            "client_id": client_id,
            "rma_id": rma_id,
            "order_seq": locked.seq,
            "state": AUTHORIZED,
            "reason": reason,
            "created_at": now,
            "updated_at": now,
            "created_by": principal.client_name,
            "content_sha256": content,
        },
        [
            store.ReturnLine(
                position,
                order.lines[position].line_number,
                order.lines[position].sku,
                pieces,
                0,
                0,
                0,
                0,
                0,
            )
            for position, pieces in sorted(wanted.items())
        ],
    )
    detail = f"RMA {rma_id}: " + ", ".join(
        f"line {order.lines[p].line_number} x{n}" for p, n in sorted(wanted.items())
    )
    _record(
        tx,
        principal,
        locked,
        "RETURN_AUTHORIZED",
        "return.authorize",
        rma_id,
        detail,
        now,
        reason=reason,
        after={"state": AUTHORIZED},
    )
    created = store.find(tx, rma_id, client_id=client_id)
    return created[0], False


def locked_original(tx: Connection, principal: Principal, order_ref: str) -> Locked:
    """The original order by Ordergate's id or, failing that, by the shop's order number."""
    order_ref = checks.code_text(order_ref, "order_id", "original order")
    own = principal.client_id if principal.sees_only_own_client else None
    if orders.get_order(tx, client_id=own, order_id=order_ref) is None:
        found = orders.orders_with_client_order_id(
            tx, order_ref, client_id=own, customer_account=""
        )
        if len(found) > 1:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                "ORDER_LOOKUP_AMBIGUOUS",
                f"Several orders have the order number {shown(order_ref)}; give Ordergate's id.",
                field_violations=[FieldViolation("order_id", "names several orders")],
            )
        if found:
            order_ref = found[0].id
    return locked_order(tx, principal, order_ref)


def _client_id(tx: Connection, order: OrderRecord) -> int:
    client_id = orders.client_id_by_name(tx, order.client)
    assert client_id is not None, order.client
    return client_id


def _wanted(
    order: OrderRecord, lines: list[tuple[int, int]], taken: dict[int, int]
) -> dict[int, int]:
    """Pieces per order line position; no lines: every shipped piece not already returning."""
    positions = {line.line_number: position for position, line in enumerate(order.lines)}
    if not lines:
        wanted = {
            position: line.shipped - taken.get(position, 0)
            for position, line in enumerate(order.lines)
            if line.shipped - taken.get(position, 0) > 0
        }
        if not wanted:
            raise _exceeds(order, "Nothing of this order shipped that is not being returned.")
        return wanted
    wanted = {}
    for index, (line_number, pieces) in enumerate(lines):
        position = positions.get(line_number)
        if position is None:
            raise checks.invalid(
                "LINE_UNKNOWN",
                f"The order has no line {line_number}.",
                f"lines[{index}].line_number",
            )
        if position in wanted:
            raise checks.invalid(
                "LINE_REPEATED", f"Line {line_number} is named twice.", f"lines[{index}]"
            )
        checks.pieces(pieces, f"lines[{index}].quantity", allow_zero=True)
        line = order.lines[position]
        # 0: every shipped piece of the line not already returning (none left is refused after).
        wanted[position] = pieces or max(1, line.shipped - taken.get(position, 0))
    return wanted


def _check_returnable(order: OrderRecord, wanted: dict[int, int], taken: dict[int, int]) -> None:
    for position, pieces in wanted.items():
        line = order.lines[position]
        left = line.shipped - taken.get(position, 0)
        if pieces > left:
            raise _exceeds(
                order,
                f"Line {line.line_number}: {line.shipped} shipped, "
                f"{taken.get(position, 0)} already being returned; {pieces} cannot be.",
                line.line_number,
            )


def _exceeds(order: OrderRecord, message: str, line_number: int = 0) -> ServiceError:
    error = ServiceError(
        ErrorKind.FAILED_PRECONDITION,
        "RETURN_EXCEEDS_SHIPPED",
        message,
        metadata={"order": order.id},
    )
    if line_number:
        error.metadata["line_number"] = str(line_number)
    return error


# --- receive -----------------------------------------------------------------------------------


def receive_return(
    db: Database,
    principal: Principal,
    *,
    rma_id: str,
    client: str,
    location: str,
    lines: list[tuple[int, int]],
    note: str = "",
) -> store.ReturnRecord:
    now = datetime.now(UTC)
    with db.transaction() as tx:
        return receive_in(tx, principal, rma_id, client, location, lines, note, now)


def receive_in(
    tx: Connection,
    principal: Principal,
    rma_id: str,
    client: str,
    location: str,
    lines: list[tuple[int, int]],
    note: str,
    now: datetime,
) -> store.ReturnRecord:
    note = checks.text(note, "note")
    location = checks.location(tx, location)
    found, locked = _locked_return(tx, principal, rma_id, client)
    if found.state != AUTHORIZED:
        raise _wrong_state(found, "received", "it was received already")
    by_number = {line.line_number: line for line in found.lines}
    received = {line.line_number: line.quantity for line in found.lines}
    if lines:
        received = {number: 0 for number in by_number}
        for index, (line_number, pieces) in enumerate(lines):
            line = by_number.get(line_number)
            if line is None:
                raise checks.invalid(
                    "LINE_UNKNOWN",
                    f"RMA {rma_id} has no line {line_number}.",
                    f"lines[{index}].line_number",
                )
            checks.pieces(pieces, f"lines[{index}].quantity", allow_zero=True)
            if pieces > line.quantity:
                raise checks.invalid(
                    "RETURN_EXCEEDS_AUTHORIZED",
                    f"Line {line_number}: {line.quantity} authorized; {pieces} cannot be received.",
                    f"lines[{index}].quantity",
                )
            received[line_number] = pieces
    if not any(received.values()):
        raise checks.invalid("QUANTITY_INVALID", "Nothing received.", "lines")
    updated = [replace(line, received=received[line.line_number]) for line in found.lines]
    for line in sorted(updated, key=lambda line: line.sku):  # stock records in SKU order
        if line.received:
            stock_buckets.move(
                tx,
                sku=line.sku,
                location=location,
                kind="RETURN_RECEIPT",
                actor=principal.client_name,
                reason=f"RMA {rma_id} line {line.line_number}",
                now=now,
                quarantine=line.received,
                order_id=found.order_id,
            )
    store.save_lines(tx, found.seq, updated)
    store.set_state(tx, found.seq, now, state=RECEIVED, location=location)
    detail = f"RMA {rma_id} received at {location}: " + ", ".join(
        f"line {line.line_number} x{line.received}" for line in updated if line.received
    )
    _record(
        tx,
        principal,
        locked,
        "RETURN_RECEIVED",
        "return.receive",
        rma_id,
        detail,
        now,
        reason=note,
        before={"state": AUTHORIZED},
        after={"state": RECEIVED},
    )
    return _reloaded(tx, found)


# --- triage ------------------------------------------------------------------------------------


def triage_return(
    db: Database,
    principal: Principal,
    *,
    rma_id: str,
    client: str,
    decisions: list[Decision],
) -> store.ReturnRecord:
    now = datetime.now(UTC)
    with db.transaction() as tx:
        return triage_in(tx, principal, rma_id, client, decisions, now)


def triage_in(
    tx: Connection,
    principal: Principal,
    rma_id: str,
    client: str,
    decisions: list[Decision],
    now: datetime,
) -> store.ReturnRecord:
    checks.line_count(len(decisions))
    found, locked = _locked_return(tx, principal, rma_id, client)
    if found.state not in (RECEIVED, TRIAGED):
        raise _wrong_state(
            found,
            "triaged",
            "it has not been received" if found.state == AUTHORIZED else "it is completed",
        )
    lines = {line.line_number: line for line in found.lines}
    moves: list[tuple[store.ReturnLine, int, int]] = []  # (line, to sellable, out of quarantine)
    said: list[str] = []
    for index, decision in enumerate(decisions):
        where = f"lines[{index}]"
        line = lines.get(decision.line_number)
        if line is None:
            raise checks.invalid(
                "LINE_UNKNOWN",
                f"RMA {rma_id} has no line {decision.line_number}.",
                f"{where}.line_number",
            )
        if decision.decision not in (RESTOCK, REWORK, DISPOSE):
            raise checks.invalid(
                "DECISION_MISSING", "Decide RESTOCK, REWORK or DISPOSE.", f"{where}.decision"
            )
        reason = checks.text(
            decision.reason,
            f"{where}.reason",
            required="why it is disposed of" if decision.decision == DISPOSE else "",
        )
        if decision.withhold_credit and decision.decision != DISPOSE:
            raise checks.invalid(
                "WITHHOLD_CREDIT_INVALID",
                "Only disposed pieces can be left uncredited.",
                f"{where}.withhold_credit",
            )
        # REWORK takes pieces awaiting triage; RESTOCK and DISPOSE those, then pieces in rework.
        room = line.awaiting if decision.decision == REWORK else line.awaiting + line.rework
        pieces = decision.quantity or (
            line.awaiting or (0 if decision.decision == REWORK else line.rework)
        )
        checks.pieces(decision.quantity, f"{where}.quantity", allow_zero=True)
        if pieces == 0 or pieces > room:
            raise ServiceError(
                ErrorKind.FAILED_PRECONDITION,
                "TRIAGE_EXCEEDS_RECEIVED",
                f"Line {line.line_number} has {line.awaiting} piece(s) awaiting triage and "
                f"{line.rework} in rework; {decision.decision} of {pieces or 'none'} cannot be.",
                metadata={"line_number": str(line.line_number)},
                field_violations=[FieldViolation(f"{where}.quantity", "more than is there")],
            )
        from_rework = max(0, pieces - line.awaiting) if decision.decision != REWORK else 0
        if decision.decision == REWORK:
            line = replace(line, rework=line.rework + pieces)
        elif decision.decision == RESTOCK:
            line = replace(
                line, rework=line.rework - from_rework, restocked=line.restocked + pieces
            )
            moves.append((line, pieces, pieces))
        else:
            line = replace(
                line,
                rework=line.rework - from_rework,
                disposed=line.disposed + pieces,
                not_credited=line.not_credited + (pieces if decision.withhold_credit else 0),
            )
            moves.append((line, 0, pieces))
        lines[line.line_number] = line
        said.append(
            f"line {line.line_number} {decision.decision} x{pieces}"
            + (f" ({reason})" if reason else "")
        )
    for line, sellable, out in sorted(moves, key=lambda move: move[0].sku):
        stock_buckets.move(
            tx,
            sku=line.sku,
            location=found.location,
            kind="RESTOCK" if sellable else "DISPOSAL",
            actor=principal.client_name,
            reason=f"RMA {rma_id} line {line.line_number}",
            now=now,
            sellable=sellable,
            quarantine=-out,
            order_id=found.order_id,
        )
    updated = [lines[line.line_number] for line in found.lines]
    store.save_lines(tx, found.seq, updated)
    awaiting = sum(line.awaiting for line in updated)
    in_rework = sum(line.rework for line in updated)
    state = RECEIVED if awaiting else (TRIAGED if in_rework else COMPLETED)
    detail = f"RMA {rma_id}: " + "; ".join(said)
    credit = ""
    if state == COMPLETED:
        credit = _credit(tx, locked.order, found, updated, now)
        detail += f"; credit note {credit}" if credit else "; no credit note"
    store.set_state(tx, found.seq, now, state=state, credit_note_id=credit or None)
    event = "RETURN_COMPLETED" if state == COMPLETED else "RETURN_TRIAGED"
    _record(
        tx,
        principal,
        locked,
        event,
        "return.triage",
        rma_id,
        detail,
        now,
        before={"state": found.state},
        after={"state": state, "credit_note": credit},
    )
    return _reloaded(tx, found)


def _credit(
    tx: Connection,
    order: OrderRecord,
    found: store.ReturnRecord,
    lines: list[store.ReturnLine],
    now: datetime,
) -> str:
    """Issue the completed return's credit note (the rule in the module's docstring)."""
    customer = pricing.customer(tx, order.customer_account) if order.customer_account else None
    if customer is None:
        return ""
    currency = order.currency or customer.currency
    credited = [
        (line, line.restocked + line.disposed - line.not_credited)
        for line in lines
        if line.restocked + line.disposed - line.not_credited > 0
    ]
    # A line the order priced is credited at that price; one it did not, at the customer's
    # price when the order was placed (contract, price list, list price), in the same currency.
    unpriced = [line for line, _ in credited if order.lines[line.position].unit_price is None]
    fallback = dict(
        zip(
            [line.position for line in unpriced],
            prices_in(
                tx,
                customer,
                [(line.sku, order.lines[line.position].quantity) for line in unpriced],
                order.order_time or order.created_at,
            ),
            strict=True,
        )
    )
    amount = Decimal(0)
    for line, pieces in credited:
        price = order.lines[line.position].unit_price
        if price is None:
            found_price = fallback.get(line.position)
            if found_price is None or found_price.currency != currency:
                continue
            price = found_price.unit_price
        amount += price * pieces
    if amount <= 0:
        return ""
    note_id = f"RMA-{found.id}"
    catalog_sync.write_credit_notes(
        tx,
        [CreditNoteSpec(note_id, order.customer_account, currency, amount, amount, now)],
    )
    return note_id


# --- read --------------------------------------------------------------------------------------


def get_return(
    db: Database, principal: Principal, *, rma_id: str, client: str
) -> store.ReturnRecord:
    with db.reader() as conn:
        return _one(conn, principal, rma_id, client, lock=False)


@dataclass(frozen=True)
class Page:
    returns: list[store.ReturnRecord]
    next_page_token: str


def list_returns(
    db: Database,
    principal: Principal,
    *,
    state: str = "",
    order_id: str = "",
    page_size: int = 0,
    page_token: str = "",
) -> Page:
    size = paging.page_size(page_size, default=50, maximum=500)
    before = None
    if page_token:
        try:
            before = int(base64.urlsafe_b64decode(page_token.encode()).decode())
        except (ValueError, UnicodeDecodeError):
            raise checks.invalid(
                "PAGE_TOKEN_INVALID", "page_token is invalid.", "page_token"
            ) from None
    own = principal.client_id if principal.sees_only_own_client else None
    with db.reader() as conn:
        order_seq = None
        if order_id:
            order = orders.get_order(conn, client_id=own, order_id=order_id)
            order_seq = orders.seq_of(conn, order_id) if order is not None else -1
        found = store.page(
            conn, client_id=own, state=state, order_seq=order_seq, before_seq=before, limit=size + 1
        )
    token = ""
    if len(found) > size:
        found = found[:size]
        token = base64.urlsafe_b64encode(str(found[-1].seq).encode()).decode()
    return Page(found, token)


def _one(
    conn: Connection, principal: Principal, rma_id: str, client: str, *, lock: bool
) -> store.ReturnRecord:
    own = principal.client_id if principal.sees_only_own_client else None
    if own is None and client:
        own = orders.client_id_by_name(conn, client)
        if own is None:
            raise _not_found(rma_id)
    found = store.find(conn, rma_id, client_id=own, lock=lock)
    if not found:
        raise _not_found(rma_id)
    if len(found) > 1:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "RETURN_LOOKUP_AMBIGUOUS",
            f"Several clients use RMA {shown(rma_id)}; name the client as well.",
            field_violations=[FieldViolation("client", "names whose RMA it is")],
        )
    return found[0]


def _locked_return(
    tx: Connection, principal: Principal, rma_id: str, client: str
) -> tuple[store.ReturnRecord, Locked]:
    """The return and its order, both locked: the order first, as CreateReturn locks it."""
    found = _one(tx, principal, rma_id, client, lock=False)
    locked = locked_order(tx, principal, found.order_id)
    return _one(tx, principal, rma_id, found.client, lock=True), locked


def _reloaded(tx: Connection, found: store.ReturnRecord) -> store.ReturnRecord:
    return store.find(tx, found.rma_id, client_id=found.client_id)[0]


def _record(
    tx: Connection,
    principal: Principal,
    locked: Locked,
    event: str,
    action: str,
    rma_id: str,
    detail: str,
    now: datetime,
    *,
    reason: str = "",
    before: dict[str, object] | None = None,
    after: dict[str, object] | None = None,
) -> None:
    """The original order's event (its state unchanged) and the audit entry of the return."""
    record_change(
        tx,
        principal,
        locked,
        event=event,
        new_state=locked.order.state,
        detail=detail[:2000],
        now=now,
    )
    audit.record(
        tx,
        [
            audit.AuditEntry(
                at=now,
                actor=principal.client_name,
                role=principal.role.value,
                action=action,
                subject=f"return/{locked.order.client}/{rma_id}",
                reason=reason or detail[:2000],
                before=before,
                after=after,
            )
        ],
    )


def _wrong_state(found: store.ReturnRecord, what: str, why: str) -> ServiceError:
    return ServiceError(
        ErrorKind.FAILED_PRECONDITION,
        "RETURN_STATE_INVALID",
        f"RMA {shown(found.rma_id)} is {found.state}: it cannot be {what} ({why}).",
        metadata={"rma_id": found.rma_id, "state": found.state},
    )


def _not_found(rma_id: str) -> ServiceError:
    return ServiceError(
        ErrorKind.NOT_FOUND,
        "RETURN_NOT_FOUND",
        f"No RMA {shown(rma_id)} is visible to this client.",
        metadata={"rma_id": rma_id[:64]},
    )
