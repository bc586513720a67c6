"""Stock reconciliations: the warehouse's counts against ours, every line kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from . import tables as t


@dataclass(frozen=True)
class Line:
    sku: str
    location: str
    ours: int
    theirs: int
    diverged: bool


@dataclass(frozen=True)
class Stored:
    id: str
    threshold_percent: str
    compared: int
    lines: list[Line]


def insert(conn: Connection, values: dict[str, Any], lines: Sequence[Line]) -> None:
    result = conn.execute(t.reconciliations.insert().values(**values))
    seq = int(result.inserted_primary_key[0])  # type: ignore[index]
    conn.execute(
        t.reconciliation_lines.insert(),
        [
            {
                "reconciliation_seq": seq,
                "sku": line.sku,
                "location": line.location,
                "position": position,
                "ours": line.ours,
                "theirs": line.theirs,
                "diverged": line.diverged,
            }
            for position, line in enumerate(lines)
        ],
    )


def by_request_id(conn: Connection, request_id: str) -> Stored | None:
    r, rl = t.reconciliations.c, t.reconciliation_lines.c
    row = conn.execute(select(t.reconciliations).where(r.request_id == request_id)).first()
    if row is None:
        return None
    lines = [
        Line(line.sku, line.location, line.ours, line.theirs, line.diverged)
        for line in conn.execute(
            select(t.reconciliation_lines)
            .where(rl.reconciliation_seq == row.seq)
            .order_by(rl.position)
        )
    ]
    return Stored(row.id, row.threshold_percent, row.compared, lines)
