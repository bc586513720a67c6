"""Catalog and stock: what orders are checked and allocated against."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeAlias

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    exists,
    or_,
    select,
)

from ..domain.model import Customer, Product
from . import tables as t
from .bulk import add_allocated
from .driver_query import DriverQuery, Later
from .one_of import one_of
from .upsert import upsert


def _current(at: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    """A code that still resolves at `at` (renamed SKUs stop at the end of their window)."""
    c = t.product_codes.c
    return or_(c.valid_until.is_(None), c.valid_until > at)


# Statements of the submit path, built once: building a Core statement costs more than running
# it on SQLite. Lists of values are one parameter each (one_of.py), so the text stays fixed.
_p, _pc, _c, _b, _s = (
    t.products.c,
    t.product_codes.c,
    t.customers.c,
    t.bundle_components.c,
    t.stock.c,
)
# They run straight through the driver (driver_query.py): each is read once per order batch or
# stock call, and SQLAlchemy's execute path cost more than SQLite's own work for them.
_PRODUCTS_BY_SKU = DriverQuery(
    select(_p.sku, _p.requires_special_handling).where(one_of(_p.sku, "codes"))
)
_PRODUCTS_BY_CODE = DriverQuery(
    select(_pc.code, _pc.kind, _p.sku, _p.requires_special_handling)
    .join(t.products, _p.sku == _pc.sku)
    .where(one_of(_pc.code, "codes"), _current(bindparam("at", type_=t.UtcDateTime)))
)
_CUSTOMERS = DriverQuery(
    select(_c.account, _c.currency, _c.requires_special_handling, _c.client_id).where(
        one_of(_c.account, "accounts")
    )
)
_BUNDLE_COMPONENTS = DriverQuery(
    select(_b.bundle_sku, _b.component_sku, _b.quantity)
    .where(one_of(_b.bundle_sku, "skus"))
    .order_by(_b.bundle_sku, _b.component_sku)
)
_LOCATIONS = DriverQuery(
    select(t.locations.c.code).order_by(t.locations.c.priority, t.locations.c.code)
)
# A stock record as read everywhere (StockRow's fields).
_STOCK_COLUMNS = (
    _s.sku,
    _s.location,
    _s.on_hand,
    _s.allocated,
    _s.quarantine,
    _s.on_order,
    _s.next_expected,
)
_STOCK_STATEMENT = (
    select(*_STOCK_COLUMNS).where(one_of(_s.sku, "skus")).order_by(_s.sku, _s.location)
)
_STOCK = DriverQuery(_STOCK_STATEMENT)
_STOCK_LOCKED = DriverQuery(_STOCK_STATEMENT.with_for_update())
# An allocation's stock: the SKUs' own records and, for those that are bundles, their
# components', in one statement (sent with the bundles' read, so neither waits for the other).
# Locked as _STOCK_LOCKED locks, in (sku, location) order.
_ALLOCATION_STOCK_STATEMENT = (
    select(*_STOCK_COLUMNS)
    .where(
        one_of(_s.sku, "skus", or_in=select(_b.component_sku).where(one_of(_b.bundle_sku, "skus")))
    )
    .order_by(_s.sku, _s.location)
)
_ALLOCATION_STOCK = DriverQuery(_ALLOCATION_STOCK_STATEMENT)
_ALLOCATION_STOCK_LOCKED = DriverQuery(_ALLOCATION_STOCK_STATEMENT.with_for_update())
_EXPIRED_RENAMES = DriverQuery(
    select(_pc.code, _pc.sku).where(
        one_of(_pc.code, "codes"),
        _pc.kind == bindparam("kind"),
        _pc.valid_until <= bindparam("at", type_=t.UtcDateTime),
    )
)
# The stock read path (GetStockLevels, WatchStockLevels).
_SKUS = DriverQuery(select(_p.sku).where(one_of(_p.sku, "codes")))
_SKUS_BY_CODE = DriverQuery(
    select(_pc.code, _pc.sku).where(
        one_of(_pc.code, "codes"), _current(bindparam("at", type_=t.UtcDateTime))
    )
)
_STOCK_BY_PRIORITY_STATEMENT = (
    select(*_STOCK_COLUMNS)
    .join(t.locations, t.locations.c.code == _s.location)
    .where(one_of(_s.sku, "skus"))
    .order_by(t.locations.c.priority, t.locations.c.code)
)
_STOCK_BY_PRIORITY = DriverQuery(_STOCK_BY_PRIORITY_STATEMENT)
_STOCK_BY_PRIORITY_AT = DriverQuery(
    _STOCK_BY_PRIORITY_STATEMENT.where(one_of(_s.location, "locations"))
)


# GetStockLevels in one statement when every code is a SKU and none a bundle (the usual call):
# the products among the codes, whether each is a bundle, and their stock records (none: NULLs).
# A location filter goes into the join, so that a product stocked elsewhere is still found.
def _product_stock(stock_join: ColumnElement[bool]) -> Select[Any]:
    return (
        select(
            _p.sku,
            exists().where(_b.bundle_sku == _p.sku).label("bundle"),
            _s.location,
            _s.on_hand,
            _s.allocated,
            _s.quarantine,
            _s.on_order,
            _s.next_expected,
        )
        .select_from(
            t.products.outerjoin(t.stock, stock_join).outerjoin(
                t.locations, t.locations.c.code == _s.location
            )
        )
        .where(one_of(_p.sku, "codes"))
        .order_by(t.locations.c.priority, t.locations.c.code)
    )


_PRODUCT_STOCK = DriverQuery(_product_stock(_s.sku == _p.sku))
_PRODUCT_STOCK_AT = DriverQuery(
    _product_stock(and_(_s.sku == _p.sku, one_of(_s.location, "locations")))
)


def resolve_products(
    conn: Connection, keys: Iterable[tuple[str, bool]], at: datetime | None = None
) -> dict[tuple[str, bool], Product]:
    """Resolve line catalog keys (code, is_barcode) to products in at most two statements.

    A SKU-line code matches a product's own SKU or one of its aliases; a barcode-line code
    matches only a barcode.
    """
    return send_resolve_products(conn, keys, at)()


def send_resolve_products(
    conn: Connection, keys: Iterable[tuple[str, bool]], at: datetime | None = None
) -> Later[dict[tuple[str, bool], Product]]:
    """`resolve_products`, its first statement sent ahead (DriverQuery.send). The second, for
    codes that are not a product's own SKU (aliases, barcodes), runs when the result is asked
    for, and only if there are any."""
    keys = set(keys)
    sku_codes = {code for code, is_barcode in keys if not is_barcode and code}
    barcodes = {code for code, is_barcode in keys if is_barcode and code}
    by_sku = _PRODUCTS_BY_SKU.send(conn, {"codes": sorted(sku_codes)}) if sku_codes else list

    def resolved() -> dict[tuple[str, bool], Product]:
        found = {(sku, False): Product(sku, bool(special)) for sku, special in by_sku()}
        other_codes = (sku_codes - {code for code, _ in found}) | barcodes
        if other_codes:
            code_rows = _PRODUCTS_BY_CODE.rows(
                conn, {"codes": sorted(other_codes), "at": at or datetime.now(UTC)}
            )
            for code, kind, sku, special in code_rows:
                key = (code, kind == "barcode")
                if key in keys:
                    found[key] = Product(sku, bool(special))
        return found

    return resolved


def get_customers(conn: Connection, accounts: Iterable[str]) -> dict[str, Customer]:
    """The customers among `accounts` that are in the catalog, by account."""
    return send_get_customers(conn, accounts)()


def send_get_customers(conn: Connection, accounts: Iterable[str]) -> Later[dict[str, Customer]]:
    """`get_customers`, sent ahead (DriverQuery.send)."""
    rows = _CUSTOMERS.send(conn, {"accounts": sorted(set(accounts))})
    return lambda: {
        account: Customer(account, currency, bool(special), client_id)
        for account, currency, special, client_id in rows()
    }


def bundle_components(conn: Connection, skus: Iterable[str]) -> dict[str, list[tuple[str, int]]]:
    """Components (sku, quantity per kit) of those of `skus` that are bundles."""
    found: dict[str, list[tuple[str, int]]] = {}
    for bundle, component, quantity in _BUNDLE_COMPONENTS.rows(conn, {"skus": sorted(set(skus))}):
        found.setdefault(bundle, []).append((component, quantity))
    return found


def bundles_containing(conn: Connection, skus: Iterable[str]) -> set[str]:
    """The bundles that have any of `skus` as a component."""
    rows = conn.execute(
        select(_b.bundle_sku).where(_b.component_sku.in_(sorted(set(skus)))).distinct()
    )
    return {bundle for (bundle,) in rows}


def locations_by_priority(conn: Connection) -> list[str]:
    return [code for (code,) in _LOCATIONS.rows(conn, {})]


def stock_records(
    conn: Connection, skus: Iterable[str], *, lock: bool = False
) -> dict[tuple[str, str], StockRow]:
    """Stock records per (sku, location). With `lock`, the rows stay locked (PostgreSQL
    FOR UPDATE) until the transaction ends; they are locked in (sku, location) order, the same
    order in every transaction, so two allocations cannot deadlock."""
    rows = (_STOCK_LOCKED if lock else _STOCK).rows(conn, {"skus": sorted(set(skus))})
    return {(row[0], row[1]): StockRow._make(row) for row in rows}


class AllocationRows(NamedTuple):
    """What allocating a group of SKUs reads (service/submit.py StockView)."""

    kits: dict[str, list[tuple[str, int]]]  # bundle SKU -> (component SKU, quantity per kit)
    stock: dict[tuple[str, str], StockRow]  # (sku, location) -> record, components' included
    locations: list[str]  # by priority


def send_allocation_rows(
    conn: Connection, skus: Iterable[str], *, lock: bool = False
) -> Later[AllocationRows]:
    """The bundles among `skus` with their components, the stock records of `skus` and of
    those components (with `lock`, locked until the transaction ends, as `stock_records` locks
    them), and the locations by priority: three statements sent together (DriverQuery.send),
    so on PostgreSQL in a `bulk.pipelined` block they cost one round trip."""
    wanted = {"skus": sorted(set(skus))}
    kits = _BUNDLE_COMPONENTS.send(conn, wanted)
    stock = (_ALLOCATION_STOCK_LOCKED if lock else _ALLOCATION_STOCK).send(conn, wanted)
    locations = _LOCATIONS.send(conn, {})

    def rows() -> AllocationRows:
        found: dict[str, list[tuple[str, int]]] = {}
        for bundle, component, quantity in kits():
            found.setdefault(bundle, []).append((component, quantity))
        return AllocationRows(
            kits=found,
            stock={(row[0], row[1]): StockRow._make(row) for row in stock()},
            locations=[code for (code,) in locations()],
        )

    return rows


def allocate(conn: Connection, location: str, demand: Mapping[str, int]) -> None:
    """Add `demand` (pieces per SKU) to the allocated quantity at `location`."""
    allocate_at(conn, {(sku, location): quantity for sku, quantity in demand.items()})


def allocate_at(conn: Connection, demand: Mapping[tuple[str, str], int]) -> None:
    """Add `demand` (pieces per (sku, location)) to the allocated quantities (bulk.py)."""
    add_allocated(conn, demand)


# --- stock records (`ordergate load`) -------------------------------------------------------


def set_stock(conn: Connection, rows: list[dict[str, object]]) -> None:
    """Rows: sku, location, on_hand. Sets on hand; allocations already made are kept."""
    upsert(
        conn,
        t.stock,
        [{key: row[key] for key in ("sku", "location", "on_hand")} for row in rows],
        ["sku", "location"],
    )


# --- reading stock (InventoryService) ------------------------------------------------------


def expired_renames(conn: Connection, codes: Iterable[str], at: datetime) -> dict[str, str]:
    """Old SKUs among `codes` whose rename window has ended: old code -> the new SKU."""
    rows = _EXPIRED_RENAMES.rows(conn, {"codes": sorted(set(codes)), "kind": "renamed", "at": at})
    return {code: sku for code, sku in rows}


def resolve_any_codes(conn: Connection, codes: Iterable[str]) -> dict[str, str]:
    """Canonical SKU per code, for codes that are a SKU, an alias or a barcode (a SKU wins)."""
    codes = set(codes)
    found = {sku: sku for (sku,) in _SKUS.rows(conn, {"codes": sorted(codes)})}
    found.update(resolve_other_codes(conn, codes - set(found)))
    return found


def resolve_other_codes(conn: Connection, codes: Iterable[str]) -> dict[str, str]:
    """SKU per code for codes that are a current alias, renamed SKU or barcode."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = _SKUS_BY_CODE.rows(conn, {"codes": wanted, "at": datetime.now(UTC)})
    return {code: sku for code, sku in rows}


class StockRow(NamedTuple):  # a NamedTuple: made per row on the hot paths, cheap to create
    sku: str
    location: str
    on_hand: int  # sellable pieces there
    allocated: int
    quarantine: int = 0  # pieces there that must not be sold
    on_order: int = 0  # open purchase order lines
    next_expected: str | None = None  # the earliest expected date among them


# A StockRow's fields as a plain tuple, for the hundred rows of a GetStockLevels call, where even
# a NamedTuple costs too much to make (service/stock.py).
StockTuple: TypeAlias = tuple[str, str, int, int, int, int, str | None]


def stock_rows(
    conn: Connection, skus: Iterable[str], locations: Iterable[str] = ()
) -> list[StockRow]:
    """Stock records of `skus` (optionally only at `locations`), in location priority order."""
    wanted = sorted(set(locations))
    rows = (
        _STOCK_BY_PRIORITY_AT.rows(conn, {"skus": sorted(set(skus)), "locations": wanted})
        if wanted
        else _STOCK_BY_PRIORITY.rows(conn, {"skus": sorted(set(skus))})
    )
    return list(map(StockRow._make, rows))


@dataclass(frozen=True)
class ProductsStock:
    skus: set[str]  # the codes that are a product's own SKU
    bundles: set[str]  # those of them that are bundles
    rows: list[StockTuple]  # their stock records, in location priority order


def products_stock(
    conn: Connection, codes: Iterable[str], locations: Iterable[str] = ()
) -> ProductsStock:
    """For the codes that are SKUs, in one statement: which are bundles, and the stock records
    (optionally only at `locations`) of the others (a bundle has none of its own)."""
    wanted = sorted(set(locations))
    skus = sorted(set(codes))
    found = (
        _PRODUCT_STOCK_AT.rows(conn, {"codes": skus, "locations": wanted})
        if wanted
        else _PRODUCT_STOCK.rows(conn, {"codes": skus})
    )
    return ProductsStock(
        {row[0] for row in found},
        {row[0] for row in found if row[1]},
        [
            (sku, location, on_hand, allocated, quarantine, on_order, next_expected)
            for sku, _, location, on_hand, allocated, quarantine, on_order, next_expected in found
            if location is not None
        ],
    )


def all_stock_rows(conn: Connection) -> list[StockRow]:
    """Every stock record, by SKU then location (the stock snapshot's order)."""
    query = select(*_STOCK_COLUMNS).order_by(t.stock.c.sku, t.stock.c.location)
    return list(map(StockRow._make, conn.execute(query).all()))


@dataclass(frozen=True)
class LocationRow:
    code: str
    name: str
    priority: int


def list_locations(
    conn: Connection, *, after: tuple[int, str] | None, limit: int
) -> list[LocationRow]:
    """Locations in priority order, after the (priority, code) position `after`."""
    l = t.locations.c  # noqa: E741
    query = select(l.code, l.name, l.priority).order_by(l.priority, l.code).limit(limit)
    if after is not None:
        query = query.where(
            or_(l.priority > after[0], and_(l.priority == after[0], l.code > after[1]))
        )
    return [LocationRow(r.code, r.name, r.priority) for r in conn.execute(query)]
