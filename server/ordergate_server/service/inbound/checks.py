"""Input checks the goods-in requests share: texts, quantities, dates, codes, locations."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import Connection

from ...domain.limits import CODE_CHARS, MAX_PIECES, NAME_CHARS, TEXT_CHARS, shown
from ...storage import catalog
from ..errors import ErrorKind, FieldViolation, ServiceError

MAX_LINES = 1000


def invalid(reason: str, message: str, field_name: str) -> ServiceError:
    return ServiceError(
        ErrorKind.INVALID_ARGUMENT,
        reason,
        message,
        field_violations=[FieldViolation(field_name, message)],
    )


def code_text(value: str, field_name: str, what: str) -> str:
    """A required identifier: 1 to CODE_CHARS printable characters, no surrounding space."""
    value = value.strip()
    if not value:
        raise invalid("FIELD_MISSING", f"Give the {what}.", field_name)
    if len(value) > CODE_CHARS or not value.isprintable():
        raise invalid(
            "VALUE_INVALID",
            f"The {what} is 1 to {CODE_CHARS} printable characters.",
            field_name,
        )
    return value


def text(value: str, field_name: str, *, limit: int = TEXT_CHARS, required: str = "") -> str:
    """Free text up to `limit` characters; `required` names what to give when it is empty."""
    value = value.strip()
    if required and not value:
        raise invalid("FIELD_MISSING", f"Give {required}.", field_name)
    if len(value) > limit:
        raise invalid("VALUE_TOO_LONG", f"At most {limit:,} characters.", field_name)
    return value


def name(value: str, field_name: str, what: str) -> str:
    return text(value, field_name, limit=NAME_CHARS, required=f"the {what}")


def pieces(value: int, field_name: str, *, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if not low <= value <= MAX_PIECES:
        raise invalid(
            "QUANTITY_INVALID", f"A quantity is {low} to {MAX_PIECES:,} pieces.", field_name
        )
    return value


def iso_date(value: str, field_name: str) -> str:
    value = value.strip()
    if len(value) == 10:  # fromisoformat also reads 20261205 and week dates: only YYYY-MM-DD
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise invalid("DATE_INVALID", f"{shown(value, 20)} is not a date (YYYY-MM-DD).", field_name)


def request_id(value: str) -> str:
    try:
        uuid.UUID(value)
    except ValueError:
        raise invalid("REQUEST_ID_INVALID", "request_id must be a UUID.", "request_id") from None
    return value


def line_count(count: int, field_name: str = "lines") -> None:
    if not 1 <= count <= MAX_LINES:
        raise invalid("LINES_INVALID", f"Give 1 to {MAX_LINES:,} lines.", field_name)


def location(conn: Connection, code: str, field_name: str = "location_code") -> str:
    known = {row.code for row in catalog.list_locations(conn, after=None, limit=10_000)}
    if code not in known:
        raise invalid("LOCATION_UNKNOWN", f"Unknown location {shown(code)}.", field_name)
    return code


def stocked_sku(conn: Connection, code: str, field_name: str) -> str:
    """The canonical SKU of a product code that holds stock of its own (not a bundle)."""
    sku = catalog.resolve_any_codes(conn, [code]).get(code)
    if sku is None:
        raise ServiceError(
            ErrorKind.NOT_FOUND,
            "PRODUCT_NOT_FOUND",
            f"No product has the code {shown(code)}.",
            field_violations=[FieldViolation(field_name, "unknown")],
        )
    if catalog.bundle_components(conn, [sku]):
        raise invalid("BUNDLE_HAS_NO_STOCK", f"{sku} is a bundle; name its components.", field_name)
    return sku
