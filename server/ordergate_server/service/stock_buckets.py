"""Moving stock between buckets, and keeping the purchase-order figures of a stock record.

A stock record has two buckets of pieces physically there: sellable (`on_hand`, what
allocation draws on) and `quarantine` (returns awaiting triage or in rework, damaged receipts;
never allocated). Every movement here locks the record, changes it, and logs the change with
its cause in the stock log, in the caller's transaction. A change that raises what is
available marks the SKU for the stock re-check (stock_log.record), so held orders see it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, and_, func, select, update

from ..domain.limits import MAX_PIECES
from ..storage import catalog, stock_log
from ..storage import tables as t
from .errors import ErrorKind, FieldViolation, ServiceError

# Purchase order states whose lines are still on order.
OPEN_PO_STATES = ("OPEN", "PARTLY_RECEIVED")


def locked_record(tx: Connection, sku: str, location: str) -> catalog.StockRow:
    """The stock record, locked until the transaction ends; made (empty) if there is none."""
    record = catalog.stock_records(tx, [sku], lock=True).get((sku, location))
    if record is None:
        tx.execute(t.stock.insert().values(sku=sku, location=location, on_hand=0, allocated=0))
        record = catalog.StockRow(sku, location, 0, 0)
    return record


def move(
    tx: Connection,
    *,
    sku: str,
    location: str,
    kind: str,
    actor: str,
    reason: str,
    now: datetime,
    sellable: int = 0,
    quarantine: int = 0,
    request_id: str | None = None,
    order_id: str | None = None,
) -> tuple[catalog.StockRow, catalog.StockRow]:
    """Change the record's sellable and quarantine pieces by the deltas given; (before, after).
    Quarantine never goes below 0, and neither bucket beyond ±MAX_PIECES."""
    before = locked_record(tx, sku, location)
    on_hand = before.on_hand + sellable
    held = before.quarantine + quarantine
    if held < 0:
        raise ServiceError(
            ErrorKind.FAILED_PRECONDITION,
            "QUARANTINE_SHORT",
            f"{location} has {before.quarantine} {sku} in quarantine; {-quarantine} cannot "
            "leave it.",
        )
    if not (-MAX_PIECES <= on_hand <= MAX_PIECES and held <= MAX_PIECES):
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "VALUE_OUT_OF_RANGE",
            f"This would take {sku} at {location} past {MAX_PIECES:,} pieces.",
            field_violations=[FieldViolation("quantity", "too large")],
        )
    tx.execute(
        update(t.stock)
        .where(t.stock.c.sku == sku, t.stock.c.location == location)
        .values(on_hand=on_hand, quarantine=held)
    )
    after = before._replace(on_hand=on_hand, quarantine=held)
    stock_log.record(
        tx,
        [
            stock_log.StockChange(
                at=now,
                sku=sku,
                location=location,
                kind=kind,
                on_hand_delta=sellable,
                allocated_delta=0,
                on_hand_after=on_hand,
                allocated_after=before.allocated,
                actor=actor,
                reason=reason,
                order_id=order_id,
                request_id=request_id,
                quarantine_delta=quarantine,
                quarantine_after=held,
            )
        ],
    )
    return before, after


def refresh_on_order(tx: Connection, records: Iterable[tuple[str, str]]) -> None:
    """Recompute on_order and next_expected of these (sku, location) records from the open
    purchase order lines (called by every change of a purchase order, in its transaction)."""
    po, line = t.purchase_orders.c, t.purchase_order_lines.c
    open_pieces = line.quantity - line.received - line.damaged
    for sku, location in sorted(set(records)):  # in key order, as allocations lock them
        locked_record(tx, sku, location)
        pieces, earliest = tx.execute(
            select(func.coalesce(func.sum(open_pieces), 0), func.min(line.expected_date))
            .select_from(t.purchase_order_lines.join(t.purchase_orders, po.seq == line.po_seq))
            .where(
                and_(
                    line.sku == sku,
                    po.location == location,
                    po.state.in_(OPEN_PO_STATES),
                    open_pieces > 0,
                )
            )
        ).one()
        tx.execute(
            update(t.stock)
            .where(t.stock.c.sku == sku, t.stock.c.location == location)
            .values(on_order=int(pieces), next_expected=earliest)
        )
