"""An order's stock: what its open pieces hold at its location, and moving them.

An order holds, at its allocation location, the open pieces of its lines (ordered, not
cancelled, not shipped), bundles counted as their components. Cancelling pieces releases them
(allocated drops); shipping consumes them (on hand and allocated both drop). Every movement is a
row of the stock log, in the same transaction, naming the order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, update

from ..domain.records import LineRecord, OrderRecord
from ..storage import catalog, stock_log
from ..storage import tables as t

RELEASE = "RELEASE"  # allocated drops: the pieces are free again
DISPATCH = "DISPATCH"  # on hand and allocated drop: the pieces have left


def components(tx: Connection, pieces: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Pieces per stocked SKU for (sku, pieces) of order lines: a bundle's as its components'."""
    wanted = [(sku, n) for sku, n in pieces if sku and n > 0]
    kits = catalog.bundle_components(tx, {sku for sku, _ in wanted})
    demand: dict[str, int] = {}
    for sku, n in wanted:
        for component, per_kit in kits.get(sku, [(sku, 1)]):
            demand[component] = demand.get(component, 0) + n * per_kit
    return demand


def move(
    tx: Connection,
    actor: str,
    order: OrderRecord,
    pieces: Iterable[tuple[str, int]],
    kind: str,
    now: datetime,
) -> None:
    """RELEASE or DISPATCH `pieces` ((sku, pieces) of the order's lines) at the order's
    allocation location, logging each record's change."""
    location = order.allocation_location
    demand = components(tx, pieces)
    if not demand or not location:
        return
    records = catalog.stock_records(tx, demand, lock=True)
    changes = []
    for sku, quantity in sorted(demand.items()):
        before = records[(sku, location)]
        on_hand_delta = -quantity if kind == DISPATCH else 0
        tx.execute(
            update(t.stock)
            .where(t.stock.c.sku == sku, t.stock.c.location == location)
            .values(
                on_hand=t.stock.c.on_hand + on_hand_delta,
                allocated=t.stock.c.allocated - quantity,
            )
        )
        changes.append(
            stock_log.StockChange(
                at=now,
                sku=sku,
                location=location,
                kind=kind,
                on_hand_delta=on_hand_delta,
                allocated_delta=-quantity,
                on_hand_after=before.on_hand + on_hand_delta,
                allocated_after=before.allocated - quantity,
                actor=actor,
                order_id=order.id,
                quarantine_after=before.quarantine,
            )
        )
    stock_log.record(tx, changes)


def release_all(tx: Connection, actor: str, order: OrderRecord, now: datetime) -> None:
    """Free everything the order holds (it is cancelled, or its lines are planned afresh)."""
    if order.holds_stock:
        move(tx, actor, order, open_pieces(order.lines), RELEASE, now)


def open_pieces(lines: Iterable[LineRecord]) -> list[tuple[str, int]]:
    """(sku, pieces) an order's lines still hold: ordered, not cancelled, not shipped."""
    return [(line.sku, line.open) for line in lines]


def open_lines(lines: Iterable[LineRecord]) -> tuple[LineRecord, ...]:
    """The lines to allocate, each with its open pieces as its quantity (0 for a line with
    none, which planning passes over: service/submit.StockView), in the order's line order so
    that hold reasons name the right lines."""
    return tuple(line._replace(quantity=line.open, cancelled=0, shipped=0) for line in lines)
