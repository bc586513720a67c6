"""Purchase orders, their lines, receipts and variances (service/inbound/purchase_orders.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from . import tables as t


@dataclass(frozen=True)
class PoLine:
    line_number: int
    sku: str
    quantity: int
    expected_date: str
    notes: str
    received: int
    damaged: int

    @property
    def open(self) -> int:
        return max(0, self.quantity - self.received - self.damaged)


@dataclass(frozen=True)
class ReceiptLine:
    line_number: int
    received: int
    damaged: int


@dataclass(frozen=True)
class Receipt:
    id: str
    received_at: datetime
    actor: str
    note: str
    lines: list[ReceiptLine]


@dataclass(frozen=True)
class Variance:
    line_number: int
    kind: str  # OVER, UNDER, DAMAGED
    quantity: int
    at: datetime
    actor: str
    reason: str
    receipt_id: str | None


@dataclass(frozen=True)
class PurchaseOrder:
    seq: int
    po_number: str
    supplier: str
    location: str
    state: str
    notes: str
    created_at: datetime
    updated_at: datetime
    created_by: str
    close_reason: str
    content_sha256: str
    lines: list[PoLine]
    receipts: list[Receipt] = field(default_factory=list)
    variances: list[Variance] = field(default_factory=list)


_po, _line = t.purchase_orders.c, t.purchase_order_lines.c


def insert(conn: Connection, values: dict[str, Any], lines: Sequence[dict[str, Any]]) -> int:
    seq = int(conn.execute(t.purchase_orders.insert().values(**values)).inserted_primary_key[0])  # type: ignore[index]
    conn.execute(t.purchase_order_lines.insert(), [{**line, "po_seq": seq} for line in lines])
    return seq


def get(
    conn: Connection, po_number: str, *, lock: bool = False, full: bool = True
) -> PurchaseOrder | None:
    """The purchase order by number (locked until the transaction ends with `lock`); with
    `full`, its receipts and variances too."""
    query = select(t.purchase_orders).where(_po.po_number == po_number)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        return None
    return _assemble(conn, [row], full=full)[0]


def page(
    conn: Connection, *, state: str, supplier: str, before_seq: int | None, limit: int
) -> list[PurchaseOrder]:
    """Newest first, before `before_seq`."""
    query = select(t.purchase_orders).order_by(_po.seq.desc()).limit(limit)
    if state:
        query = query.where(_po.state == state)
    if supplier:
        query = query.where(_po.supplier == supplier)
    if before_seq is not None:
        query = query.where(_po.seq < before_seq)
    return _assemble(conn, conn.execute(query).all(), full=False)


def _assemble(conn: Connection, rows: Sequence[Any], *, full: bool) -> list[PurchaseOrder]:
    seqs = [row.seq for row in rows]
    lines: dict[int, list[PoLine]] = {seq: [] for seq in seqs}
    if seqs:
        for line in conn.execute(
            select(t.purchase_order_lines)
            .where(_line.po_seq.in_(seqs))
            .order_by(_line.po_seq, _line.line_number)
        ):
            lines[line.po_seq].append(
                PoLine(
                    line.line_number,
                    line.sku,
                    line.quantity,
                    line.expected_date,
                    line.notes,
                    line.received,
                    line.damaged,
                )
            )
    found = []
    for row in rows:
        receipts = _receipts(conn, row.seq) if full else []
        variances = _variances(conn, row.seq) if full else []
        found.append(
            PurchaseOrder(
                row.seq,
                row.po_number,
                row.supplier,
                row.location,
                row.state,
                row.notes,
                row.created_at,
                row.updated_at,
                row.created_by,
                row.close_reason,
                row.content_sha256,
                lines[row.seq],
                receipts,
                variances,
            )
        )
    return found


def _receipts(conn: Connection, po_seq: int) -> list[Receipt]:
    r, rl = t.receipts.c, t.receipt_lines.c
    rows = conn.execute(select(t.receipts).where(r.po_seq == po_seq).order_by(r.seq)).all()
    lines: dict[int, list[ReceiptLine]] = {row.seq: [] for row in rows}
    if rows:
        for line in conn.execute(
            select(t.receipt_lines)
            .where(rl.receipt_seq.in_(list(lines)))
            .order_by(rl.receipt_seq, rl.line_number)
        ):
            lines[line.receipt_seq].append(
                ReceiptLine(line.line_number, line.received, line.damaged)
            )
    return [Receipt(row.id, row.received_at, row.actor, row.note, lines[row.seq]) for row in rows]


def _variances(conn: Connection, po_seq: int) -> list[Variance]:
    v = t.purchase_order_variances.c
    rows = conn.execute(
        select(t.purchase_order_variances).where(v.po_seq == po_seq).order_by(v.seq)
    )
    return [
        Variance(r.line_number, r.kind, r.quantity, r.at, r.actor, r.reason, r.receipt_id)
        for r in rows
    ]


def receipt_by_request_id(conn: Connection, request_id: str) -> tuple[str, str] | None:
    """(receipt id, purchase order number) of the receipt recorded under `request_id`."""
    row = conn.execute(
        select(t.receipts.c.id, _po.po_number)
        .join(t.purchase_orders, _po.seq == t.receipts.c.po_seq)
        .where(t.receipts.c.request_id == request_id)
    ).first()
    return (row.id, row.po_number) if row else None


def insert_receipt(conn: Connection, values: dict[str, Any], lines: Sequence[ReceiptLine]) -> None:
    seq = int(conn.execute(t.receipts.insert().values(**values)).inserted_primary_key[0])  # type: ignore[index]
    conn.execute(
        t.receipt_lines.insert(),
        [
            {
                "receipt_seq": seq,
                "line_number": line.line_number,
                "received": line.received,
                "damaged": line.damaged,
            }
            for line in lines
        ],
    )


def add_received(conn: Connection, po_seq: int, line_number: int, good: int, damaged: int) -> None:
    conn.execute(
        update(t.purchase_order_lines)
        .where(_line.po_seq == po_seq, _line.line_number == line_number)
        .values(received=_line.received + good, damaged=_line.damaged + damaged)
    )


def insert_variances(conn: Connection, po_seq: int, variances: Sequence[Variance]) -> None:
    if variances:
        conn.execute(
            t.purchase_order_variances.insert(),
            [
                {
                    "po_seq": po_seq,
                    "line_number": v.line_number,
                    "kind": v.kind,
                    "quantity": v.quantity,
                    "at": v.at,
                    "actor": v.actor,
                    "reason": v.reason,
                    "receipt_id": v.receipt_id,
                }
                for v in variances
            ],
        )


def set_state(
    conn: Connection, po_seq: int, state: str, now: datetime, close_reason: str | None = None
) -> None:
    values: dict[str, Any] = {"state": state, "updated_at": now}
    if close_reason is not None:
        values["close_reason"] = close_reason
    conn.execute(update(t.purchase_orders).where(_po.seq == po_seq).values(**values))
