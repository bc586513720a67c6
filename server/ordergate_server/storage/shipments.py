"""Shipments: what was handed to a carrier, per order (read with the order, storage/orders.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from ..domain.model import ShipmentState
from . import tables as t


@dataclass(frozen=True)
class StoredShipment:
    seq: int
    id: str
    order_seq: int
    order_id: str
    state: ShipmentState
    tracking_number: str
    without_tracking: bool


def add_shipment(
    conn: Connection,
    *,
    id: str,
    order_seq: int,
    carrier: str,
    tracking_number: str,
    tracking_url: str,
    without_tracking: bool,
    actor: str,
    request_id: str,
    now: datetime,
    contents: Sequence[tuple[int, int]],
) -> None:
    """A new shipment (SHIPPED) with `contents`: (order line position, pieces)."""
    seq = conn.execute(
        insert(t.shipments)
        .values(
            id=id,
            order_seq=order_seq,
            carrier=carrier,
            tracking_number=tracking_number or None,
            tracking_url=tracking_url or None,
            state=ShipmentState.SHIPPED.value,
            without_tracking=without_tracking,
            tracking_alerted=False,
            created_at=now,
            updated_at=now,
            delivered_at=None,
            actor=actor,
            request_id=request_id or None,
        )
        .returning(t.shipments.c.seq)
    ).scalar_one()
    conn.execute(
        insert(t.shipment_lines),
        [
            {"shipment_seq": seq, "position": position, "quantity": quantity}
            for position, quantity in contents
        ],
    )


def _stored(conn: Connection, where: object, *, lock: bool) -> StoredShipment | None:
    s, o = t.shipments.c, t.orders.c
    query = (
        select(
            s.seq,
            s.id,
            s.order_seq,
            o.id.label("order_id"),
            s.state,
            s.tracking_number,
            s.without_tracking,
        )
        .join(t.orders, o.seq == s.order_seq)
        .where(where)  # type: ignore[arg-type]
    )
    if lock:
        query = query.with_for_update(of=t.shipments)
    row = conn.execute(query).first()
    if row is None:
        return None
    return StoredShipment(
        row.seq,
        row.id,
        row.order_seq,
        row.order_id,
        ShipmentState(row.state),
        row.tracking_number or "",
        bool(row.without_tracking),
    )


def by_id(conn: Connection, shipment_id: str, *, lock: bool = False) -> StoredShipment | None:
    return _stored(conn, t.shipments.c.id == shipment_id, lock=lock)


def by_request_id(conn: Connection, request_id: str) -> StoredShipment | None:
    return _stored(conn, t.shipments.c.request_id == request_id, lock=False)


def update_shipment(conn: Connection, seq: int, now: datetime, **values: object) -> None:
    conn.execute(
        update(t.shipments).where(t.shipments.c.seq == seq).values(updated_at=now, **values)
    )


def states_of_order(conn: Connection, order_seq: int) -> list[ShipmentState]:
    rows = conn.execute(select(t.shipments.c.state).where(t.shipments.c.order_seq == order_seq))
    return [ShipmentState(state) for (state,) in rows]


def without_tracking_since(conn: Connection, before: datetime) -> list[StoredShipment]:
    """Shipments handed over without a tracking number before `before`, still without one
    and not yet alerted."""
    s = t.shipments.c
    found = []
    for (seq,) in conn.execute(
        select(s.seq).where(
            s.without_tracking.is_(True),
            s.tracking_number.is_(None),
            s.tracking_alerted.is_(False),
            s.created_at < before,
        )
    ):
        shipment = _stored(conn, s.seq == seq, lock=False)
        if shipment is not None:
            found.append(shipment)
    return found
