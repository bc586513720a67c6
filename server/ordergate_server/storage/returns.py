"""Returns (RMAs) and their lines (service/inbound/returns.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, select, update

from . import tables as t


@dataclass(frozen=True)
class ReturnLine:
    position: int  # the order line's position
    line_number: int
    sku: str
    quantity: int  # authorized
    received: int
    rework: int
    restocked: int
    disposed: int
    not_credited: int

    @property
    def awaiting(self) -> int:
        """Received pieces not triaged yet."""
        return self.received - self.rework - self.restocked - self.disposed

    @property
    def in_quarantine(self) -> int:
        return self.received - self.restocked - self.disposed


@dataclass(frozen=True)
class ReturnRecord:
    seq: int
    id: str
    client_id: int
    client: str
    rma_id: str
    order_id: str
    client_order_id: str
    state: str
    reason: str
    location: str
    created_at: datetime
    updated_at: datetime
    created_by: str
    content_sha256: str
    credit_note_id: str
    lines: list[ReturnLine]


_r, _l, _o = t.returns.c, t.return_lines.c, t.orders.c


def _select() -> Select[Any]:
    return (
        select(t.returns, t.clients.c.name.label("client"), _o.id.label("order_id"))
        .add_columns(_o.client_order_id)
        .join(t.clients, t.clients.c.id == _r.client_id)
        .join(t.orders, _o.seq == _r.order_seq)
    )


def find(
    conn: Connection, rma_id: str, *, client_id: int | None, lock: bool = False
) -> list[ReturnRecord]:
    """Returns with this RMA id (of one client when given): at most two, enough to tell one
    from several."""
    query = _select().where(_r.rma_id == rma_id).order_by(_r.seq).limit(2)
    if client_id is not None:
        query = query.where(_r.client_id == client_id)
    if lock:
        query = query.with_for_update(of=t.returns)
    return _assemble(conn, conn.execute(query).all())


def page(
    conn: Connection,
    *,
    client_id: int | None,
    state: str,
    order_seq: int | None,
    before_seq: int | None,
    limit: int,
) -> list[ReturnRecord]:
    query = _select().order_by(_r.seq.desc()).limit(limit)
    if client_id is not None:
        query = query.where(_r.client_id == client_id)
    if state:
        query = query.where(_r.state == state)
    if order_seq is not None:
        query = query.where(_r.order_seq == order_seq)
    if before_seq is not None:
        query = query.where(_r.seq < before_seq)
    return _assemble(conn, conn.execute(query).all())


def _assemble(conn: Connection, rows: Sequence[Any]) -> list[ReturnRecord]:
    lines: dict[int, list[ReturnLine]] = {row.seq: [] for row in rows}
    if rows:
        for line in conn.execute(
            select(t.return_lines)
            .where(_l.return_seq.in_(list(lines)))
            .order_by(_l.return_seq, _l.position)
        ):
            lines[line.return_seq].append(
                ReturnLine(
                    line.position,
                    line.line_number,
                    line.sku,
                    line.quantity,
                    line.received,
                    line.rework,
                    line.restocked,
                    line.disposed,
                    line.not_credited,
                )
            )
    return [
        ReturnRecord(
            row.seq,
            row.id,
            row.client_id,
            row.client,
            row.rma_id,
            row.order_id,
            row.client_order_id or "",
            row.state,
            row.reason,
            row.location or "",
            row.created_at,
            row.updated_at,
            row.created_by,
            row.content_sha256,
            row.credit_note_id or "",
            lines[row.seq],
        )
        for row in rows
    ]


def returning(conn: Connection, order_seq: int) -> dict[int, int]:
    """Pieces per order line position that returns of the order account for: what an
    authorized return asks for, what a received one got (the rest is not coming)."""
    taken: dict[int, int] = {}
    rows = conn.execute(
        select(_r.state, _l.position, _l.quantity, _l.received)
        .join(t.return_lines, _l.return_seq == _r.seq)
        .where(_r.order_seq == order_seq)
    )
    for state, position, quantity, received in rows:
        taken[position] = taken.get(position, 0) + (quantity if state == "AUTHORIZED" else received)
    return taken


def insert(conn: Connection, values: dict[str, Any], lines: Sequence[ReturnLine]) -> None:
    seq = int(conn.execute(t.returns.insert().values(**values)).inserted_primary_key[0])  # type: ignore[index]
    conn.execute(
        t.return_lines.insert(),
        [
            {
                "return_seq": seq,
                "position": line.position,
                "line_number": line.line_number,
                "sku": line.sku,
                "quantity": line.quantity,
                "received": line.received,
                "rework": line.rework,
                "restocked": line.restocked,
                "disposed": line.disposed,
                "not_credited": line.not_credited,
            }
            for line in lines
        ],
    )


def save_lines(conn: Connection, return_seq: int, lines: Sequence[ReturnLine]) -> None:
    for line in lines:
        conn.execute(
            update(t.return_lines)
            .where(_l.return_seq == return_seq, _l.position == line.position)
            .values(
                received=line.received,
                rework=line.rework,
                restocked=line.restocked,
                disposed=line.disposed,
                not_credited=line.not_credited,
            )
        )


def set_state(conn: Connection, return_seq: int, now: datetime, **values: Any) -> None:
    conn.execute(update(t.returns).where(_r.seq == return_seq).values(updated_at=now, **values))
