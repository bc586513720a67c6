"""Watching stock: a snapshot, then the stock change log in id order (see ordered_feed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..storage import Database, stock_log
from . import stock

POLL_SECONDS = 0.1


@dataclass(frozen=True)
class WatchPlan:
    codes: list[str]
    locations: list[str]
    skus: set[str]  # the records to watch: requested products and components of bundles
    bundles: dict[str, list[str]]  # bundle sku -> codes requested for it
    components: dict[str, set[str]]  # bundle sku -> its component SKUs


def plan(db: Database, codes: Sequence[str], locations: Sequence[str]) -> WatchPlan:
    """Check the request as GetStockLevels does and find the stock records to watch."""
    with db.reader() as conn:
        resolved, kits = stock.resolve_request(conn, codes, locations)
    skus = {sku for sku in resolved.values() if sku not in kits}
    skus |= {component for parts in kits.values() for component, _ in parts}
    bundles: dict[str, list[str]] = {}
    for code in codes:
        if resolved.get(code) in kits:
            bundles.setdefault(resolved[code], []).append(code)
    components = {bundle: {sku for sku, _ in parts} for bundle, parts in kits.items()}
    return WatchPlan(list(codes), list(locations), skus, bundles, components)


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
    codes = [
        watch.bundles[bundle][0]
        for bundle, components in watch.components.items()
        if sku in components
    ]
    return stock.get_stock_levels(db, codes, watch.locations) if codes else []
