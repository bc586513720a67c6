"""Submitting an order: the whole pipeline from raw bytes to a stored, answered order.

size limit -> hardened parse -> schema -> mapping -> mandatory-field rules -> allocation ->
one transaction (idempotency claim, stock, order, lines, event) -> response.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ..domain.access import Principal
from ..domain.allocation import DemandLine, choose_location, shortfall_reasons, total_demand
from ..domain.model import Delivery, HoldReason, OrderDraft, OrderState
from ..domain.records import EventRecord, LineRecord, OrderRecord
from ..domain.rules import CatalogFacts, check_order
from ..formats import DocumentLimits, UnreadableOrder, read_order
from ..storage import Database, audit, catalog, orders, stock_log, submissions
from .errors import ErrorKind, FieldViolation, ServiceError

log = logging.getLogger(__name__)

# What became of a submission (submissions.outcome).
OUTCOME_ORDER = "ORDER"  # it created the order, or replaced a held one
OUTCOME_DUPLICATE = "DUPLICATE"  # same content as an order already past ON_HOLD: nothing changed
OUTCOME_REJECTED = "REJECTED_DUPLICATE_ORDER_ID"  # other content for an order past ON_HOLD


@dataclass(frozen=True)
class SubmitLimits:
    max_payload_bytes: int = 1024 * 1024
    document: DocumentLimits = field(default_factory=DocumentLimits)


@dataclass(frozen=True)
class SubmitResult:
    order: OrderRecord
    replayed: bool


def submit_order(
    db: Database,
    principal: Principal,
    *,
    request_id: str,
    payload: bytes,
    validate_only: bool = False,
    limits: SubmitLimits = SubmitLimits(),
    acting: Principal | None = None,
) -> SubmitResult:
    """Take one order submission and answer it: ACCEPTED with stock allocated, or ON_HOLD.

    `acting` is who acts when it is not the client itself (a manager correcting a held order
    on the client's behalf): the order's history names them, and the audit log records it.

    Raises ServiceError for a request that cannot be taken at all (too large, bad request_id,
    request_id reused for other content, an order id already past ON_HOLD with other content).
    """
    if len(payload) > limits.max_payload_bytes:
        raise ServiceError(
            ErrorKind.RESOURCE_EXHAUSTED,
            "PAYLOAD_TOO_LARGE",
            f"The order is {len(payload)} bytes; the limit is {limits.max_payload_bytes}.",
            metadata={
                "limit_bytes": str(limits.max_payload_bytes),
                "size_bytes": str(len(payload)),
            },
            field_violations=[FieldViolation("order_xml", "larger than the server's limit")],
        )
    if not validate_only:
        _check_request_id(request_id)
    payload_sha256 = hashlib.sha256(payload).hexdigest()
    document = read_order(payload, limits.document)  # CPU only: outside any transaction
    now = datetime.now(UTC)

    if validate_only:
        return _validate_only(db, principal, document, payload_sha256, now)

    # Two attempts are enough: the only conflicts are a concurrent submission that claimed the
    # same request_id or order id first, and the second attempt sees its committed result.
    for attempt in range(3):
        try:
            with db.transaction() as tx:
                outcome = _submit_in_transaction(
                    tx,
                    principal,
                    request_id,
                    payload,
                    payload_sha256,
                    document,
                    now,
                    acting,
                )
            break
        except IntegrityError:
            if attempt == 2:
                raise
    if isinstance(outcome, ServiceError):
        raise outcome  # raised after the commit: the refused submission itself is on record
    return outcome


def _validate_only(
    db: Database,
    principal: Principal,
    document: OrderDraft | UnreadableOrder,
    payload_sha256: str,
    now: datetime,
) -> SubmitResult:
    """The answer a real submission would get now, with nothing stored or allocated."""
    with db.reader() as conn:
        existing = (
            orders.find_by_client_order_id(conn, principal.client_id, document.client_order_id)
            if document.client_order_id
            else None
        )
        if existing is not None and existing.state is not OrderState.ON_HOLD:
            if existing.content_sha256 != payload_sha256:
                raise _duplicate_order_error(document.client_order_id, existing.state)
            return SubmitResult(_get(conn, existing.id), replayed=True)
        evaluation = _evaluate(conn, document, principal, lock=False)
    return SubmitResult(
        _order_record("", principal, document, evaluation, payload_sha256, now), False
    )


def _check_request_id(request_id: str) -> None:
    try:
        uuid.UUID(request_id)
    except ValueError:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "REQUEST_ID_INVALID",
            "request_id must be a UUID, chosen once per order and reused on every retry.",
            field_violations=[FieldViolation("request_id", "not a UUID")],
        ) from None


@dataclass(frozen=True)
class _Evaluation:
    reasons: tuple[HoldReason, ...]
    lines: tuple[LineRecord, ...]
    location: str  # where the stock comes from; "" when the order is held
    demand: dict[str, int]
    stock: dict[tuple[str, str], catalog.StockRow] = field(default_factory=dict)


def _evaluate(
    conn: Connection, document: OrderDraft | UnreadableOrder, principal: Principal, *, lock: bool
) -> _Evaluation:
    """Rules and allocation choice for a document (nothing written)."""
    if isinstance(document, UnreadableOrder):
        return _Evaluation(document.reasons, (), "", {})
    products = catalog.resolve_products(conn, (line.catalog_key for line in document.lines))
    unresolved = {ln.code for ln in document.lines if ln.catalog_key not in products}
    facts = CatalogFacts(
        products=products,
        customer=catalog.get_customer(conn, document.customer_account)
        if document.customer_account
        else None,
        ordering_client_id=principal.client_id,
        renamed=catalog.expired_renames(conn, unresolved, datetime.now(UTC)) if unresolved else {},
    )
    reasons = check_order(document, facts)
    lines = []
    for line in document.lines:
        product = facts.products.get(line.catalog_key)
        lines.append(
            LineRecord(
                line_number=line.line_number,
                submitted_code=line.code,
                sku=product.sku if product else "",
                quantity=line.quantity,
                unit_price=line.unit_price,
            )
        )
    if reasons:
        return _Evaluation(tuple(reasons), tuple(lines), "", {})
    return plan_allocation(conn, tuple(lines), lock=lock)


def plan_allocation(conn: Connection, lines: tuple[LineRecord, ...], *, lock: bool) -> _Evaluation:
    """Where resolved `lines` can be allocated from (one location), or why they cannot."""
    # A bundle line asks for its components; a bundle has no stock of its own.
    kits = catalog.bundle_components(conn, {line.sku for line in lines})
    demand_lines = [
        DemandLine(i, ln.line_number, sku, ln.quantity * per_kit)
        for i, ln in enumerate(lines)
        for sku, per_kit in kits.get(ln.sku, [(ln.sku, 1)])
    ]
    demand = total_demand(demand_lines)
    stock = catalog.stock_records(conn, demand, lock=lock)
    available = {key: row.on_hand - row.allocated for key, row in stock.items()}
    locations = catalog.locations_by_priority(conn)
    location = choose_location(demand, available, locations)
    if location is None:
        return _Evaluation(
            tuple(shortfall_reasons(demand_lines, available, locations)), tuple(lines), "", {}
        )
    return _Evaluation((), tuple(lines), location, demand, stock)


def _submit_in_transaction(
    tx: Connection,
    principal: Principal,
    request_id: str,
    payload: bytes,
    payload_sha256: str,
    document: OrderDraft | UnreadableOrder,
    now: datetime,
    acting: Principal | None,
) -> SubmitResult | ServiceError:
    actor = (acting or principal).client_name
    client_id = principal.client_id
    previous = submissions.find(tx, client_id, request_id)
    if previous is not None:
        return _replay(tx, principal, request_id, previous, payload_sha256)

    def record_submission(order_id: str, outcome: str) -> None:
        # The idempotency claim: unique per (client, request_id). A concurrent twin blocks here
        # (PostgreSQL) until we commit, then fails and retries into _replay.
        submissions.insert(
            tx,
            submission_id=str(uuid.uuid4()),
            client_id=client_id,
            request_id=request_id,
            received_at=now,
            payload=payload,
            payload_sha256=payload_sha256,
            order_id=order_id,
            outcome=outcome,
        )

    existing = (
        orders.find_by_client_order_id(tx, client_id, document.client_order_id, lock=True)
        if document.client_order_id
        else None
    )
    if existing is not None and existing.state is not OrderState.ON_HOLD:
        if existing.content_sha256 == payload_sha256:
            record_submission(existing.id, OUTCOME_DUPLICATE)
            return SubmitResult(_get(tx, existing.id), replayed=True)
        record_submission(existing.id, OUTCOME_REJECTED)
        log.warning(
            "duplicate order id refused: client=%s order_id=%s request_id=%s",
            principal.client_name,
            document.client_order_id,
            request_id,
        )
        return _duplicate_order_error(document.client_order_id, existing.state)

    evaluation = _evaluate(tx, document, principal, lock=True)
    order_id = existing.id if existing is not None else str(uuid.uuid4())
    if evaluation.location:
        catalog.allocate(tx, evaluation.location, evaluation.demand)
        stock_log.record(tx, allocation_changes(evaluation, principal, order_id, now))

    if existing is None:
        order = _order_record(order_id, principal, document, evaluation, payload_sha256, now)
        order = replace(order, events=(_event(actor, "SUBMITTED", None, order, now),))
        orders.insert_order(tx, client_id, order)
    else:  # a held order resubmitted: the new content replaces it and is judged afresh
        order = _order_record(existing.id, principal, document, evaluation, payload_sha256, now)
        order = replace(order, created_at=existing.created_at)
        orders.replace_order(tx, existing.seq, order)
        orders.insert_events(
            tx, existing.seq, [_event(actor, "RESUBMITTED", OrderState.ON_HOLD, order, now)]
        )
        order = _get(tx, order.id)
    record_submission(order.id, OUTCOME_ORDER)
    if acting is not None:
        audit.record(
            tx,
            [
                audit.AuditEntry(
                    at=now,
                    actor=acting.client_name,
                    role=acting.role.value,
                    action="order.correct",
                    subject=f"order/{order.id}",
                    before={"state": OrderState.ON_HOLD.value},
                    after={"state": order.state.value},
                )
            ],
        )
    return SubmitResult(order, replayed=False)


def allocation_changes(
    evaluation: _Evaluation, principal: Principal, order_id: str, now: datetime
) -> list[stock_log.StockChange]:
    changes = []
    for sku, quantity in evaluation.demand.items():
        before = evaluation.stock[(sku, evaluation.location)]
        changes.append(
            stock_log.StockChange(
                at=now,
                sku=sku,
                location=evaluation.location,
                kind="ALLOCATION",
                on_hand_delta=0,
                allocated_delta=quantity,
                on_hand_after=before.on_hand,
                allocated_after=before.allocated + quantity,
                actor=principal.client_name,
                order_id=order_id,
            )
        )
    return changes


def _replay(
    tx: Connection,
    principal: Principal,
    request_id: str,
    previous: submissions.Submission,
    payload_sha256: str,
) -> SubmitResult | ServiceError:
    if previous.payload_sha256 != payload_sha256:
        return ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "IDEMPOTENCY_KEY_REUSED",
            f"request_id {request_id} was already used for a different payload; "
            "use a new request_id for new content.",
            metadata={"request_id": request_id},
            field_violations=[FieldViolation("request_id", "already used for other content")],
        )
    assert previous.order_id is not None
    order = _get(tx, previous.order_id)
    if previous.outcome == OUTCOME_REJECTED:
        return _duplicate_order_error(order.client_order_id, order.state)
    return SubmitResult(order, replayed=True)


def _duplicate_order_error(client_order_id: str, state: OrderState) -> ServiceError:
    return ServiceError(
        ErrorKind.ALREADY_EXISTS,
        "DUPLICATE_ORDER_ID",
        f"Order {client_order_id} already exists in state {state.value} with different content; "
        "only orders on hold can be replaced.",
        metadata={"order_id": client_order_id, "state": state.value},
    )


def _get(conn: Connection, order_id: str) -> OrderRecord:
    order = orders.get_order(conn, client_id=None, order_id=order_id)
    assert order is not None, order_id
    return order


def _order_record(
    order_id: str,
    principal: Principal,
    document: OrderDraft | UnreadableOrder,
    evaluation: _Evaluation,
    payload_sha256: str,
    now: datetime,
) -> OrderRecord:
    # A problem submission keeps only what could be read safely: its order id, if any.
    draft = (
        document
        if isinstance(document, OrderDraft)
        else OrderDraft(document.client_order_id, None, "", "", "", Delivery(), ())
    )
    return OrderRecord(
        id=order_id,
        client=principal.client_name,
        client_order_id=draft.client_order_id,
        customer_account=draft.customer_account,
        channel=draft.channel,
        currency=draft.currency,
        order_time=draft.order_time,
        created_at=now,
        updated_at=now,
        state=OrderState.ACCEPTED if evaluation.location else OrderState.ON_HOLD,
        hold_reasons=evaluation.reasons,
        delivery=draft.delivery,
        lines=evaluation.lines,
        notes=draft.notes,
        allocation_location=evaluation.location,
        problem_submission=isinstance(document, UnreadableOrder),
        content_sha256=payload_sha256,
    )


def _event(
    actor: str, kind: str, old: OrderState | None, order: OrderRecord, now: datetime
) -> EventRecord:
    if order.state is OrderState.ACCEPTED:
        detail = f"allocated from {order.allocation_location}"
    else:
        detail = "held: " + ", ".join(sorted({r.code.value for r in order.hold_reasons}))
    return EventRecord(str(uuid.uuid4()), now, actor, kind, old, order.state, detail)
