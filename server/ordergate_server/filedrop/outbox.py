"""Outbound files: the stock snapshot CSV that file-based channels read instead of calling us."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

from ..storage import Database, catalog
from .inbox import write_atomically

# quarantine and on_order came later: at the end, so readers by position keep working.
SNAPSHOT_COLUMNS = (
    "sku",
    "location",
    "on_hand",
    "allocated",
    "available",
    "quarantine",
    "on_order",
)


def write_stock_snapshot(db: Database, outbox: Path, now: datetime) -> Path:
    """Write every stock record to `outbox/stock-<UTC timestamp>.csv`, atomically.

    The rows come from one read, so the file is one consistent picture; it appears under its
    final name only when complete (a hidden temporary name, then a rename). Two snapshots in
    the same second share a name; the later replaces the earlier."""
    with db.reader() as conn:
        rows = catalog.all_stock_rows(conn)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(SNAPSHOT_COLUMNS)
    for row in rows:
        writer.writerow(
            (
                row.sku,
                row.location,
                row.on_hand,
                row.allocated,
                row.on_hand - row.allocated,
                row.quarantine,
                row.on_order,
            )
        )
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"stock-{now.strftime('%Y%m%dT%H%M%SZ')}.csv"
    write_atomically(path, text.getvalue().encode())
    return path
