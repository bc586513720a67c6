"""The stock change log: one row per change of a stock record, in commit order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, func, select

from . import tables as t
from .bulk import BulkInsert


class StockChange(NamedTuple):  # one per SKU of every allocated order: cheap to make
    at: datetime
    sku: str
    location: str
    kind: str  # ALLOCATION, RELEASE, COUNT, ADJUSTMENT, DISPATCH
    on_hand_delta: int
    allocated_delta: int
    on_hand_after: int
    allocated_after: int
    actor: str
    reason: str = ""
    order_id: str | None = None
    request_id: str | None = None
    seq: int = 0  # assigned by the database


# A change's fields up to `seq` are the inserted columns, in this order: a row is its slice.
_COLUMNS = StockChange._fields[: StockChange._fields.index("seq")]
_INSERT = BulkInsert(t.stock_changes, _COLUMNS)


def record(conn: Connection, changes: Sequence[StockChange]) -> None:
    width = len(_COLUMNS)
    _INSERT(conn, [c[:width] for c in changes])


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
