"""Submitting an order: the whole pipeline from raw bytes to a stored, answered order.

size limit -> hardened parse -> schema -> mapping -> mandatory-field rules -> allocation ->
one transaction (idempotency claim, stock, order, lines, event) -> response.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from ..domain.access import Principal, Role
from ..domain.allocation import DemandLine, choose_location, shortfall_reasons, total_demand
from ..domain.ids import new_id
from ..domain.limits import shown
from ..domain.model import (
    STOCK_HOLDS,
    Channel,
    Customer,
    Delivery,
    HoldCode,
    HoldReason,
    OrderDraft,
    OrderSource,
    OrderState,
    Product,
)
from ..domain.records import EventRecord, LineRecord, OrderRecord
from ..domain.rules import CatalogFacts, check_order
from ..formats import BuyerAmendment, DocumentLimits, UnreadableOrder, read_document
from ..storage import Database, audit, catalog, imported_files, orders, stock_log, submissions
from ..storage.driver_query import Later
from .errors import ErrorKind, FieldViolation, ServiceError

if TYPE_CHECKING:
    from .buyer_documents import AmendmentOutcome

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
    # A buyer's OrderCancellation or OrderChange: what became of it (`order` is the order it
    # amends). service/buyer_documents.py.
    amendment: AmendmentOutcome | None = None


@dataclass(frozen=True)
class PreparedSubmission:
    """A submission read and checked, ready for its transaction (no database touched yet).

    `principal` is the client the order belongs to; `acting`, who submits it when that is not
    the client itself (staff correcting a held order, or entering a phone order for the client:
    source MANUAL)."""

    principal: Principal
    request_id: str
    payload: bytes
    payload_sha256: str
    document: OrderDraft | UnreadableOrder
    received_at: datetime
    acting: Principal | None = None
    channel: Channel = Channel.GRPC
    source: OrderSource = OrderSource.API
    # A correction: the held order (server id) the document replaces, whoever its buyer was.
    replaces: str = ""
    # Not an order but a buyer's amendment of one (then `document` is only a stand-in).
    amendment: BuyerAmendment | None = None

    @property
    def identity(self) -> orders.Identity:
        """(client, the buyer's order id, the buyer): the order this submission is for."""
        document = self.document
        return (self.principal.client_id, document.client_order_id, document.customer_account)


def submit_order(
    db: Database,
    principal: Principal,
    *,
    request_id: str,
    payload: bytes,
    validate_only: bool = False,
    limits: SubmitLimits = SubmitLimits(),
    acting: Principal | None = None,
    channel: Channel = Channel.GRPC,
    source: OrderSource = OrderSource.API,
    replaces: str = "",
) -> SubmitResult:
    """Take one order submission and answer it: ACCEPTED with stock allocated, or ON_HOLD.

    `acting` is who acts when it is not the client itself (staff correcting a held order, or
    entering a MANUAL order, on the client's behalf): the order's history names them, and the
    audit log records it.

    Raises ServiceError for a request that cannot be taken at all (too large, bad request_id,
    request_id reused for other content, an order id already past ON_HOLD with other content).
    """
    prepared = prepare_submission(
        principal,
        request_id=request_id,
        payload=payload,
        validate_only=validate_only,
        limits=limits,
        acting=acting,
        channel=channel,
        source=source,
        replaces=replaces,
    )
    if validate_only:
        if prepared.amendment is not None:
            return _amend(db, prepared, dry_run=True)
        return _validate_only(db, prepared)
    return store_submission(db, prepared)


def _amend(db: Database, prepared: PreparedSubmission, *, dry_run: bool = False) -> SubmitResult:
    """A buyer's amendment, carried out on the order it names (buyer_documents.py)."""
    from . import buyer_documents  # it plans stock with this module's functions

    assert prepared.amendment is not None
    order, outcome, replayed = buyer_documents.apply(
        db,
        prepared.principal,
        prepared.amendment,
        request_id=prepared.request_id,
        new_submission=submission_row(prepared, ""),
        dry_run=dry_run,
    )
    return SubmitResult(order, replayed, outcome)


def prepare_submission(
    principal: Principal,
    *,
    request_id: str,
    payload: bytes,
    validate_only: bool = False,
    limits: SubmitLimits = SubmitLimits(),
    acting: Principal | None = None,
    channel: Channel = Channel.GRPC,
    source: OrderSource = OrderSource.API,
    replaces: str = "",
) -> PreparedSubmission:
    """The CPU part of a submission, outside any transaction: size limit, request_id, reading
    the document. Raises ServiceError for a request that cannot be taken at all."""
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
    document = read_document(payload, limits.document)
    amendment = document if isinstance(document, BuyerAmendment) else None
    if isinstance(document, BuyerAmendment):
        if replaces:  # a held order is corrected with an order document
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                "NOT_AN_ORDER",
                f"A correction is an order document, not a UBL {document.kind}.",
                field_violations=[FieldViolation("order_xml", "not an order")],
            )
        document = UnreadableOrder((), document.client_order_id, document.customer_account)
    return PreparedSubmission(
        principal=principal,
        request_id=request_id,
        payload=payload,
        payload_sha256=hashlib.sha256(payload).hexdigest(),
        document=document,
        amendment=amendment,
        received_at=datetime.now(UTC),
        acting=acting,
        channel=channel,
        source=source,
        replaces=replaces,
    )


def manual_order_client(db: Database, staff: Principal, client_name: str) -> Principal:
    """The website client a MANUAL order (a phone or e-mail order staff enter) is for."""
    if not client_name:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "CLIENT_MISSING",
            f"A {staff.role.value} key enters orders for a client: set on_behalf_of_client.",
            field_violations=[FieldViolation("on_behalf_of_client", "required for staff")],
        )
    with db.reader() as conn:
        client_id = imported_files.website_client_id(conn, client_name)
    if client_id is None:
        raise ServiceError(
            ErrorKind.NOT_FOUND,
            "CLIENT_NOT_FOUND",
            f"No website client {shown(client_name)}.",
            field_violations=[FieldViolation("on_behalf_of_client", "no such website client")],
        )
    return Principal(client_id, client_name, Role.WEBSITE)


def store_submission(db: Database, prepared: PreparedSubmission) -> SubmitResult:
    """Store one prepared submission in its own transaction and answer it (raises
    ServiceError for a refused one, after the refusal itself is on record).

    A submission that the database refuses to store for its content (a value past a column,
    which the reader's limits should already have held) is not lost: it is stored as a problem
    submission with VALUE_OUT_OF_RANGE, keeping its document. A lost database connection
    (OperationalError) is raised: nothing was stored, and the caller retries."""
    if prepared.amendment is not None:
        return _amend(db, prepared)
    # Two attempts are enough for a race: the only conflicts are a concurrent submission that
    # claimed the same request_id or order id first, and the next attempt sees its result.
    for attempt in range(3):
        try:
            with db.transaction() as tx:
                outcome = _submit_in_transaction(tx, prepared)
            break
        except (OperationalError, ServiceError):
            raise
        except IntegrityError:
            if attempt < 2:
                continue
            outcome = _store_as_unstorable(db, prepared)
            break
        except Exception:
            outcome = _store_as_unstorable(db, prepared)
            break
    if isinstance(outcome, ServiceError):
        raise outcome  # raised after the commit: the refused submission itself is on record
    return outcome


def _store_as_unstorable(db: Database, prepared: PreparedSubmission) -> SubmitResult | ServiceError:
    """Store `prepared` as a problem submission (its document and a VALUE_OUT_OF_RANGE reason,
    none of its values) after the database refused it as read. It names no order id, so it
    replaces nothing; its request_id is claimed, so a retry is answered with it."""
    log.exception(
        "the database refused a submission; kept as a problem submission: client=%s request_id=%s",
        prepared.principal.client_name,
        prepared.request_id,
    )
    unstorable = replace(prepared, document=UnreadableOrder((_UNSTORABLE,)))  # no identity
    with db.transaction() as tx:
        return _submit_in_transaction(tx, unstorable)


_UNSTORABLE = HoldReason(
    HoldCode.VALUE_OUT_OF_RANGE,
    "",
    "The document holds a value the database cannot store as given; it is kept as received "
    "for a person to read. Send a corrected document as a new order.",
)


def _validate_only(db: Database, prepared: PreparedSubmission) -> SubmitResult:
    """The answer a real submission would get now, with nothing stored or allocated."""
    principal, document = prepared.principal, prepared.document
    with db.reader() as conn:
        existing = orders.find_by_identity(conn, prepared.identity)
        if existing is not None and not existing.replaceable:
            if existing.content_sha256 != prepared.payload_sha256:
                raise _duplicate_order_error(document.client_order_id, existing.state)
            return SubmitResult(_get(conn, existing.id), replayed=True)
        evaluation = _evaluate(conn, document, principal, lock=False)
    return SubmitResult(_order_record("", prepared, evaluation), False)


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
class Evaluation:
    """The verdict on one document: why it is held, or where its stock comes from."""

    reasons: tuple[HoldReason, ...]
    lines: tuple[LineRecord, ...]
    location: str  # where the stock comes from; "" when the order is held
    demand: dict[str, int]
    stock: dict[tuple[str, str], catalog.StockRow] = field(default_factory=dict)  # before


@dataclass(frozen=True)
class CatalogView:
    """What the rules need from the catalog for a group of documents, read in a few statements
    for the whole group (one submission, or a batch of them)."""

    products: dict[tuple[str, bool], Product]
    customers: dict[str, Customer]
    renamed: dict[str, str]  # old SKUs whose rename window has ended -> the new SKU

    @classmethod
    def read(cls, conn: Connection, drafts: Iterable[OrderDraft]) -> CatalogView:
        return cls.send(conn, drafts)()

    @classmethod
    def send(cls, conn: Connection, drafts: Iterable[OrderDraft]) -> Later[CatalogView]:
        """`read`, its products and customers statements sent ahead (DriverQuery.send): in a
        `bulk.pipelined` block they share a round trip with what is sent beside them."""
        drafts = list(drafts)
        keys = {line.catalog_key for draft in drafts for line in draft.lines}
        products = catalog.send_resolve_products(conn, keys)
        accounts = {draft.customer_account for draft in drafts if draft.customer_account}
        customers = catalog.send_get_customers(conn, accounts) if accounts else dict

        def view() -> CatalogView:
            found = products()
            unresolved = {code for code, is_barcode in keys if not is_barcode} - {
                code for code, is_barcode in found if not is_barcode
            }
            return cls(
                products=found,
                customers=customers(),
                renamed=catalog.expired_renames(conn, unresolved, datetime.now(UTC))
                if unresolved
                else {},
            )

        return view

    def judge(
        self, draft: OrderDraft, principal: Principal
    ) -> tuple[list[HoldReason], tuple[LineRecord, ...]]:
        """The rules' verdict on `draft`, and its lines with SKUs resolved."""
        facts = CatalogFacts(
            products=self.products,
            customer=self.customers.get(draft.customer_account),
            ordering_client_id=principal.client_id,
            renamed=self.renamed,
        )
        lines = tuple(
            LineRecord(
                line_number=line.line_number,
                submitted_code=line.code,
                sku=product.sku if (product := self.products.get(line.catalog_key)) else "",
                quantity=line.quantity,
                unit_price=line.unit_price,
            )
            for line in draft.lines
        )
        return check_order(draft, facts), lines


@dataclass
class StockView:
    """Stock of the SKUs a group of orders needs (bundles expanded), read once and then
    allocated from in memory, order after order; `taken` is what to write back."""

    kits: dict[str, list[tuple[str, int]]]
    stock: dict[tuple[str, str], catalog.StockRow]
    locations: list[str]
    taken: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def read(
        cls, conn: Connection, line_groups: Iterable[Sequence[LineRecord]], *, lock: bool
    ) -> StockView:
        """With `lock`, the stock rows stay locked until the transaction ends (PostgreSQL). A
        bundle line asks for its components' stock; a bundle has no stock of its own. The
        statements go out together (catalog.send_allocation_rows)."""
        skus = {line.sku for lines in line_groups for line in lines}
        kits, stock, locations = catalog.send_allocation_rows(conn, skus, lock=lock)()
        return cls(kits=kits, stock=stock, locations=locations)

    def plan(self, lines: tuple[LineRecord, ...]) -> Evaluation:
        """Where `lines` can be allocated from (one location), or why they cannot."""
        demand_lines = [
            DemandLine(i, ln.line_number, sku, ln.quantity * per_kit)
            for i, ln in enumerate(lines)
            if ln.quantity  # a line with nothing left to allocate (cancelled, shipped)
            for sku, per_kit in self.kits.get(ln.sku, [(ln.sku, 1)])
        ]
        demand = total_demand(demand_lines)
        # Only this order's SKUs: the view holds the stock of the whole batch's.
        available = {
            (sku, location): row.on_hand - row.allocated
            for sku in demand
            for location in self.locations
            if (row := self.stock.get((sku, location))) is not None
        }
        location = choose_location(demand, available, self.locations)
        if location is None:
            reasons = shortfall_reasons(demand_lines, available, self.locations)
            return Evaluation(tuple(reasons), lines, "", {})
        before = {(sku, location): self.stock[(sku, location)] for sku in demand}
        return Evaluation((), lines, location, demand, before)

    def take(self, evaluation: Evaluation) -> None:
        """Count an allocated order's demand as allocated, for the orders planned after it."""
        for sku, quantity in evaluation.demand.items():
            key = (sku, evaluation.location)
            row = self.stock[key]
            # A new row made directly: _replace() goes through _make and a map per call.
            allocated = row.allocated + quantity
            self.stock[key] = catalog.StockRow(
                sku,
                row.location,
                row.on_hand,
                allocated,
                row.quarantine,
                row.on_order,
                row.next_expected,
            )
            self.taken[key] = self.taken.get(key, 0) + quantity


def _evaluate(
    conn: Connection, document: OrderDraft | UnreadableOrder, principal: Principal, *, lock: bool
) -> Evaluation:
    """Rules and allocation choice for one document (nothing written)."""
    if isinstance(document, UnreadableOrder):
        return Evaluation(document.reasons, (), "", {})
    reasons, lines = CatalogView.read(conn, [document]).judge(document, principal)
    if reasons:
        return Evaluation(tuple(reasons), lines, "", {})
    return plan_allocation(conn, lines, lock=lock)


def plan_allocation(conn: Connection, lines: tuple[LineRecord, ...], *, lock: bool) -> Evaluation:
    """Where resolved `lines` can be allocated from (one location), or why they cannot."""
    return StockView.read(conn, [lines], lock=lock).plan(lines)


def _submit_in_transaction(
    tx: Connection, prepared: PreparedSubmission
) -> SubmitResult | ServiceError:
    principal, request_id, document = prepared.principal, prepared.request_id, prepared.document
    now, acting = prepared.received_at, prepared.acting
    actor = (acting or principal).client_name
    client_id = principal.client_id
    previous = submissions.find(tx, client_id, request_id)
    if previous is not None:
        return _replay(tx, request_id, previous, prepared.payload_sha256)

    def record_submission(order_id: str, outcome: str) -> None:
        # The idempotency claim: unique per (client, request_id). A concurrent twin blocks here
        # (PostgreSQL) until we commit, then fails and retries into _replay.
        submissions.insert_many(tx, [submission_row(prepared, order_id, outcome)])

    existing = orders.find_by_identity(tx, prepared.identity, lock=True)
    if prepared.replaces:
        # A correction replaces its held order, even with another buyer, unless that buyer
        # already has an order with this id.
        held = orders.key_of(tx, prepared.replaces, lock=True)
        if held is None or not held.replaceable:
            return ServiceError(
                ErrorKind.FAILED_PRECONDITION,
                "NOT_ON_HOLD",
                f"Order {prepared.replaces} is no longer on hold.",
                metadata={"order": prepared.replaces},
            )
        if existing is not None and existing.id != held.id:
            return _duplicate_order_error(document.client_order_id, existing.state)
        existing = held
    if existing is not None and not existing.replaceable:
        if existing.content_sha256 == prepared.payload_sha256:
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
    order_id = existing.id if existing is not None else new_id()
    if evaluation.location:
        allocate(tx, principal.client_name, order_id, evaluation, now)

    if existing is None:
        order = new_order(order_id, prepared, evaluation)
        orders.insert_order(tx, client_id, order)
    else:  # a held order resubmitted: the new content replaces it and is judged afresh
        order = _order_record(existing.id, prepared, evaluation)
        order = replace(order, created_at=existing.created_at)
        orders.replace_order(tx, existing.seq, order)
        orders.insert_events(
            tx, existing.seq, [_event(actor, "RESUBMITTED", OrderState.ON_HOLD, order, now)]
        )
        order = _get(tx, order.id)
    record_submission(order.id, OUTCOME_ORDER)
    if acting is not None:
        action = "order.enter" if existing is None else "order.correct"
        audit.record(
            tx,
            [
                audit.AuditEntry(
                    at=now,
                    actor=acting.client_name,
                    role=acting.role.value,
                    action=action,
                    subject=f"order/{order.id}",
                    reason=f"for client {principal.client_name}" if existing is None else "",
                    before=None if existing is None else {"state": OrderState.ON_HOLD.value},
                    after={"state": order.state.value, "source": order.source.value},
                )
            ],
        )
    return SubmitResult(order, replayed=False)


def new_order(order_id: str, prepared: PreparedSubmission, evaluation: Evaluation) -> OrderRecord:
    """The record of a new order as judged by `evaluation`, with its SUBMITTED event."""
    order = _order_record(order_id, prepared, evaluation)
    actor = (prepared.acting or prepared.principal).client_name
    event = _event(actor, "SUBMITTED", None, order, prepared.received_at)
    return replace(order, events=(event,))


def submission_row(
    prepared: PreparedSubmission, order_id: str, outcome: str = OUTCOME_ORDER
) -> submissions.NewSubmission:
    """The submission log row of `prepared`, which came to `outcome` for order `order_id`."""
    return submissions.NewSubmission(
        id=new_id(),
        client_id=prepared.principal.client_id,
        request_id=prepared.request_id,
        received_at=prepared.received_at,
        payload=prepared.payload,
        payload_sha256=prepared.payload_sha256,
        order_id=order_id,
        outcome=outcome,
        channel=prepared.channel.value,
    )


def allocate(
    tx: Connection, actor: str, order_id: str, evaluation: Evaluation, now: datetime
) -> None:
    """Allocate a planned order's stock at its location, logging each record's change."""
    catalog.allocate(tx, evaluation.location, evaluation.demand)
    stock_log.record(tx, allocation_changes(evaluation, actor, order_id, now))


def allocation_changes(
    evaluation: Evaluation, actor: str, order_id: str, now: datetime
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
                actor=actor,
                order_id=order_id,
                quarantine_after=before.quarantine,
            )
        )
    return changes


def _replay(
    tx: Connection,
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
    order_id: str, prepared: PreparedSubmission, evaluation: Evaluation
) -> OrderRecord:
    document, now = prepared.document, prepared.received_at
    # A problem submission keeps only what could be read safely: its order id and buyer.
    draft = (
        document
        if isinstance(document, OrderDraft)
        else OrderDraft(
            document.client_order_id, None, document.customer_account, "", "", Delivery(), ()
        )
    )
    codes = {reason.code for reason in evaluation.reasons}
    return OrderRecord(
        id=order_id,
        client=prepared.principal.client_name,
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
        content_sha256=prepared.payload_sha256,
        source=prepared.source,
        entered_by=prepared.acting.client_name
        if prepared.source is OrderSource.MANUAL and prepared.acting
        else "",
        stock_hold=not evaluation.location and bool(codes) and codes <= STOCK_HOLDS,
    )


def _event(
    actor: str, kind: str, old: OrderState | None, order: OrderRecord, now: datetime
) -> EventRecord:
    if order.state is OrderState.ACCEPTED:
        detail = f"allocated from {order.allocation_location}"
    else:
        detail = "held: " + ", ".join(sorted({r.code.value for r in order.hold_reasons}))
    return EventRecord(new_id(), now, actor, kind, old, order.state, detail)
