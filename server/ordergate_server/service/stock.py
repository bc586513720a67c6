"""Reading live stock: levels per product and location, and the locations themselves."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from dataclasses import dataclass, field

from ..storage import Database, catalog
from .errors import ErrorKind, FieldViolation, ServiceError

MAX_CODES = 1000


@dataclass(frozen=True)
class Level:
    location: str  # "" for a total
    on_hand: int
    allocated: int

    @property
    def available(self) -> int:
        return self.on_hand - self.allocated


@dataclass(frozen=True)
class ProductStock:
    requested_code: str
    sku: str  # "" when the code is unknown
    levels: list[Level] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.sku)

    @property
    def total(self) -> Level:
        return Level("", sum(x.on_hand for x in self.levels), sum(x.allocated for x in self.levels))


def get_stock_levels(
    db: Database,
    codes: list[str],
    location_codes: list[str] = (),  # type: ignore[assignment]
) -> list[ProductStock]:
    """Stock per requested code, in request order; unknown codes come back with found=False."""
    if not codes:
        raise _invalid("CODES_MISSING", "Ask for at least one product code.", "codes", "empty")
    if len(codes) > MAX_CODES:
        raise _invalid(
            "TOO_MANY_CODES",
            f"At most {MAX_CODES} codes per call; split the request.",
            "codes",
            f"{len(codes)} codes",
        )
    with db.reader() as conn:
        if location_codes:
            known = {row.code for row in catalog.list_locations(conn, after=None, limit=10_000)}
            unknown = sorted(set(location_codes) - known)
            if unknown:
                raise _invalid(
                    "LOCATION_UNKNOWN",
                    f"Unknown locations: {', '.join(unknown)}.",
                    "location_codes",
                    ", ".join(unknown),
                )
        skus = catalog.resolve_any_codes(conn, codes)
        rows = catalog.stock_rows(conn, set(skus.values()), location_codes)
    by_sku: dict[str, list[Level]] = defaultdict(list)
    for row in rows:
        by_sku[row.sku].append(Level(row.location, row.on_hand, row.allocated))
    return [
        ProductStock(code, skus.get(code, ""), list(by_sku.get(skus.get(code, ""), [])))
        for code in codes
    ]


@dataclass(frozen=True)
class LocationPage:
    locations: list[catalog.LocationRow]
    next_page_token: str


def list_locations(db: Database, *, page_size: int = 0, page_token: str = "") -> LocationPage:
    size = min(page_size or 100, 1000)
    if page_size < 0:
        raise _invalid(
            "PAGE_SIZE_INVALID", "page_size must not be negative.", "page_size", "negative"
        )
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
