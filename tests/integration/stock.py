"""Reading stock rows straight from the database, for assertions."""

from __future__ import annotations

from sqlalchemy import func, select

from ordergate_server.storage import Database
from ordergate_server.storage import tables as t


def stock_row(db: Database, sku: str, location: str = "WH-MAIN") -> tuple[int, int]:
    """(on_hand, allocated) of one stock row."""
    with db.reader() as conn:
        row = conn.execute(
            select(t.stock.c.on_hand, t.stock.c.allocated).where(
                t.stock.c.sku == sku, t.stock.c.location == location
            )
        ).one()
    return row.on_hand, row.allocated


def count(db: Database, table: str) -> int:
    with db.reader() as conn:
        return int(
            conn.execute(select(func.count()).select_from(t.metadata.tables[table])).scalar_one()
        )
