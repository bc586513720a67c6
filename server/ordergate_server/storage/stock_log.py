"""The stock change log: one row per change of a stock record, in commit order."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, func, select
from sqlalchemy.dialects import postgresql, sqlite

from . import tables as t
from .bulk import BulkInsert


class StockChange(NamedTuple):  # one per SKU of every allocated order: cheap to make
    at: datetime
    sku: str
    location: str
    kind: str  # ALLOCATION, RELEASE, COUNT, ADJUSTMENT, DISPATCH, RECEIPT, RESTOCK ...
    on_hand_delta: int
    allocated_delta: int
    on_hand_after: int
    allocated_after: int
    actor: str
    reason: str = ""
    order_id: str | None = None
    request_id: str | None = None
    quarantine_delta: int = 0
    quarantine_after: int = 0
    seq: int = 0  # assigned by the database


# A change's fields up to `seq` are the inserted columns, in this order: a row is its slice.
_COLUMNS = StockChange._fields[: StockChange._fields.index("seq")]
_INSERT = BulkInsert(t.stock_changes, _COLUMNS)


def record(conn: Connection, changes: Sequence[StockChange]) -> None:
    """Log `changes`; a change that raises what is available (a release, a count or an
    adjustment up) also marks its SKU for the stock re-check (stock_rises), in this
    transaction, so that a rise is never missed and never handled twice."""
    width = len(_COLUMNS)
    _INSERT(conn, [c[:width] for c in changes])
    rises = {c.sku: c for c in changes if c.on_hand_delta - c.allocated_delta > 0}
    if rises:
        mark_rises(conn, rises.values())


def mark_rises(conn: Connection, changes: Iterable[StockChange]) -> None:
    """Mark each change's SKU as risen, with the change as its cause (the latest one wins)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(t.stock_rises)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["sku"],
            set_={"rose_at": statement.excluded.rose_at, "cause": statement.excluded.cause},
        ),
        [
            {"sku": c.sku, "rose_at": c.at, "cause": _cause(c)}
            for c in sorted(changes, key=lambda c: c.sku)  # in SKU order: no deadlock
        ],
    )


def _cause(change: StockChange) -> str:
    rise = change.on_hand_delta - change.allocated_delta
    return (
        f"{change.kind} of {change.sku} at {change.location} (+{rise} available, by {change.actor})"
    )


@dataclass(frozen=True)
class Rise:
    sku: str
    rose_at: datetime
    cause: str


def rises(conn: Connection, limit: int) -> list[Rise]:
    """Up to `limit` marked SKUs, oldest rise first. Read without a lock: a writer marking one
    meanwhile is not held up (forget_rises keeps a mark that rose again)."""
    r = t.stock_rises.c
    rows = conn.execute(select(r.sku, r.rose_at, r.cause).order_by(r.rose_at, r.sku).limit(limit))
    return [Rise(sku, rose_at, cause) for sku, rose_at, cause in rows]


def forget_rises(conn: Connection, handled: Collection[Rise]) -> None:
    """Unmark the SKUs of `handled`, each only if it has not risen again since it was read (a
    rise committed meanwhile stays marked, for the next pass). In SKU order, as writers mark
    them, so that the two cannot deadlock."""
    r = t.stock_rises.c
    for rise in sorted(handled, key=lambda rise: rise.sku):
        conn.execute(t.stock_rises.delete().where(r.sku == rise.sku, r.rose_at == rise.rose_at))


def _change(row: Row[Any]) -> StockChange:
    return StockChange(
        at=row.at,
        sku=row.sku,
        location=row.location,
        kind=row.kind,
        on_hand_delta=row.on_hand_delta,
        allocated_delta=row.allocated_delta,
        on_hand_after=row.on_hand_after,
        allocated_after=row.allocated_after,
        actor=row.actor,
        reason=row.reason,
        order_id=row.order_id,
        request_id=row.request_id,
        quarantine_delta=row.quarantine_delta,
        quarantine_after=row.quarantine_after,
        seq=row.seq,
    )


def by_request_id(conn: Connection, request_id: str) -> StockChange | None:
    row = conn.execute(
        select(t.stock_changes).where(t.stock_changes.c.request_id == request_id)
    ).first()
    return _change(row) if row else None


def after(conn: Connection, seq: int, *, limit: int = 1000) -> list[StockChange]:
    """Changes with a sequence number above `seq`, oldest first (all SKUs: a watcher needs to
    see every number to tell a gap from a change of a product it does not watch)."""
    c = t.stock_changes.c
    rows = conn.execute(select(t.stock_changes).where(c.seq > seq).order_by(c.seq).limit(limit))
    return [_change(row) for row in rows]


def last_seq(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(t.stock_changes.c.seq), 0))).scalar_one())
