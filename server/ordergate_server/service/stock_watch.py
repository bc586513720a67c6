"""Watching stock: a snapshot, then the stock change log in id order (see ordered_feed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..storage import Database, catalog, stock_log
from . import stock

POLL_SECONDS = 0.1


@dataclass(frozen=True)
class WatchPlan:
    codes: list[str]
    locations: list[str]
    skus: set[str]  # the records to watch: requested products and components of bundles
    bundles: dict[str, list[str]]  # bundle sku -> codes requested for it


def plan(db: Database, codes: Sequence[str], locations: Sequence[str]) -> WatchPlan:
    # get_stock_levels validates the request the same way (codes, locations).
    items = stock.get_stock_levels(db, codes, locations)
    with db.reader() as conn:
        kits = catalog.bundle_components(conn, {item.sku for item in items if item.found})
    skus = {item.sku for item in items if item.found and item.sku not in kits}
    skus |= {component for parts in kits.values() for component, _ in parts}
    bundles: dict[str, list[str]] = {}
    for item in items:
        if item.sku in kits:
            bundles.setdefault(item.sku, []).append(item.requested_code)
    return WatchPlan(list(codes), list(locations), skus, bundles)


def snapshot(db: Database, watch: WatchPlan) -> tuple[list[stock.ProductStock], int]:
    """Current levels and the change id they include (read first: a change committed in between
    is both in the levels and streamed, which absolute levels make harmless)."""
    with db.reader() as conn:
        last = stock_log.last_seq(conn)
    return stock.get_stock_levels(db, watch.codes, watch.locations), last


def poll(db: Database, cursor: int) -> list[stock_log.StockChange]:
    with db.reader() as conn:
        return stock_log.after(conn, cursor)


def bundles_containing(db: Database, watch: WatchPlan, sku: str) -> list[stock.ProductStock]:
    if not watch.bundles:
        return []
    with db.reader() as conn:
        kits = catalog.bundle_components(conn, watch.bundles)
    codes = [
        code
        for bundle, parts in kits.items()
        if any(component == sku for component, _ in parts)
        for code in watch.bundles[bundle][:1]
    ]
    return stock.get_stock_levels(db, codes, watch.locations) if codes else []
