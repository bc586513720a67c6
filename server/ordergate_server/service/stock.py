"""Reading live stock: levels per product and location, and the locations themselves."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from sqlalchemy import Connection

from ..domain.limits import shown
from ..storage import Database, catalog
from . import paging
from .errors import ErrorKind, FieldViolation, ServiceError

MAX_CODES = 1000


# Plain tuples, not NamedTuples: a 100-code GetStockLevels call makes a few hundred of them, and
# making a NamedTuple costs about three times a tuple; with them the call took 6-10% more of the
# server's CPU (bench/README.md).
#
# A stock level at one location: (location, on_hand, allocated, kits, quarantine, on_order,
# next_expected). kits is None but for a bundle, where it is the kits its components make there
# (and the other quantities are 0). on_hand is the sellable pieces; next_expected the earliest
# expected date (ISO) of the open purchase order lines counted in on_order, or None.
Level: TypeAlias = tuple[str, int, int, int | None, int, int, str | None]
# One requested code's answer: (requested_code, sku, levels, bundle); sku is "" when the code is
# unknown.
ProductStock: TypeAlias = tuple[str, str, list[Level], bool]


def available(level: Level) -> int:
    on_hand, allocated, kits = level[1], level[2], level[3]
    return on_hand - allocated if kits is None else kits


def bundle_levels(
    components: list[tuple[str, int]], by_sku: dict[str, list[Level]], priority: list[str]
) -> list[Level]:
    """Kits per location: the minimum over components of floor(available / per kit), never
    below 0; a location lacking a component makes none. `priority` orders the locations."""
    holding = {level[0] for sku, _ in components for level in by_sku.get(sku, [])}
    locations = [location for location in priority if location in holding]
    stock = {
        (sku, level[0]): available(level) for sku, levels in by_sku.items() for level in levels
    }
    return [
        (
            location,
            0,
            0,
            min(max(0, stock.get((sku, location), 0) // per_kit) for sku, per_kit in components),
            0,
            0,
            None,
        )
        for location in locations
    ]


def resolve_request(
    conn: Connection, codes: Sequence[str], location_codes: Sequence[str]
) -> tuple[dict[str, str], dict[str, list[tuple[str, int]]]]:
    """Check a stock request (1 to MAX_CODES codes, known locations) and resolve it: the
    canonical SKU per known code, and the components of the bundles among them."""
    check_request(conn, codes, location_codes)
    skus = catalog.resolve_any_codes(conn, codes)
    return skus, catalog.bundle_components(conn, set(skus.values()))


def check_request(conn: Connection, codes: Sequence[str], location_codes: Sequence[str]) -> None:
    """1 to MAX_CODES codes, and only known locations."""
    if not codes:
        raise _invalid("CODES_MISSING", "Ask for at least one product code.", "codes", "empty")
    if len(codes) > MAX_CODES:
        raise _invalid(
            "TOO_MANY_CODES",
            f"At most {MAX_CODES} codes per call; split the request.",
            "codes",
            f"{len(codes)} codes",
        )
    if location_codes:
        known = {row.code for row in catalog.list_locations(conn, after=None, limit=10_000)}
        unknown = sorted(set(location_codes) - known)
        if unknown:
            # The count first and a few names, short: an error never repeats input unbounded.
            named = ", ".join(shown(code, 20) for code in unknown[:3])
            more = f" and {len(unknown) - 3:,} more" if len(unknown) > 3 else ""
            raise _invalid(
                "LOCATION_UNKNOWN",
                f"{len(unknown):,} unknown location(s): {named}{more}.",
                "location_codes",
                f"{len(unknown):,} unknown",
            )


def get_stock_levels(
    db: Database,
    codes: Sequence[str],
    location_codes: Sequence[str] = (),
) -> list[ProductStock]:
    """Stock per requested code, in request order; an unknown code comes back with sku ""."""
    with db.reader() as conn:
        check_request(conn, codes, location_codes)
        skus, kits, rows, priority = _read_levels(conn, codes, location_codes)
    by_sku: dict[str, list[Level]] = defaultdict(list)
    for sku, location, on_hand, allocated, quarantine, on_order, next_expected in rows:
        by_sku[sku].append(
            (location, on_hand, allocated, None, quarantine, on_order, next_expected)
        )
    answers: list[ProductStock] = []
    for code in codes:
        sku = skus.get(code, "")
        if sku in kits:
            answers.append((code, sku, bundle_levels(kits[sku], by_sku, priority), True))
        else:  # a code asked for twice shares its levels list: answers are never changed
            answers.append((code, sku, by_sku.get(sku, []), False))
    return answers


def _read_levels(
    conn: Connection, codes: Sequence[str], location_codes: Sequence[str]
) -> tuple[dict[str, str], dict[str, list[tuple[str, int]]], list[catalog.StockTuple], list[str]]:
    """The canonical SKU per known code, the components of the bundles among them, the stock
    records of the plain products and of the components (each SKU's in location priority
    order), and the locations by priority when there are bundles to count kits for.

    One statement when every code is a plain product's SKU; aliases, barcodes and bundles add
    a statement or two."""
    direct = catalog.products_stock(conn, codes, location_codes)
    skus = {sku: sku for sku in direct.skus}
    skus.update(catalog.resolve_other_codes(conn, set(codes) - direct.skus))
    unread = set(skus.values()) - direct.skus  # products asked for by another code
    maybe_bundles = direct.bundles | unread
    kits = catalog.bundle_components(conn, maybe_bundles) if maybe_bundles else {}
    unread |= {sku for parts in kits.values() for sku, _ in parts}
    unread -= direct.skus - direct.bundles  # their records are in hand already
    rows = direct.rows
    if unread:
        rows = [*rows, *catalog.stock_rows(conn, unread, location_codes)]
    priority = catalog.locations_by_priority(conn) if kits else []
    return skus, kits, rows, priority


@dataclass(frozen=True)
class LocationPage:
    locations: list[catalog.LocationRow]
    next_page_token: str


def list_locations(db: Database, *, page_size: int = 0, page_token: str = "") -> LocationPage:
    size = paging.page_size(page_size, default=100, maximum=1000)
    after = None
    if page_token:
        try:
            priority, code = json.loads(base64.urlsafe_b64decode(page_token.encode()))
            after = (int(priority), str(code))
        except (ValueError, TypeError):
            raise _invalid(
                "PAGE_TOKEN_INVALID", "page_token is invalid.", "page_token", "not issued here"
            ) from None
    with db.reader() as conn:
        rows = catalog.list_locations(conn, after=after, limit=size + 1)
    token = ""
    if len(rows) > size:
        last = rows[size - 1]
        token = base64.urlsafe_b64encode(json.dumps([last.priority, last.code]).encode()).decode()
    return LocationPage(rows[:size], token)


def _invalid(reason: str, message: str, field_name: str, description: str) -> ServiceError:
    return ServiceError(
        ErrorKind.INVALID_ARGUMENT,
        reason,
        message,
        field_violations=[FieldViolation(field_name, description)],
    )
