"""Loading a catalog from a JSON or CSV file (`ordergate load`).

JSON: one object with any of the lists "locations", "products", "price_lists", "customers",
"contract_prices", "credit_notes" and "stock". CSV: one kind per file, named by `kind` or by the
file name (products.csv ...), with a header row; list fields are "|"-separated, bundle
components are "SKU:QUANTITY|SKU:QUANTITY"; price lists (nested entries) are JSON only.

The file goes through the same validated, audited upserts as CatalogService (the actor in the
audit log is "ordergate load"), in one transaction: all of it, or on any error none of it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..domain.access import Principal, Role
from ..domain.catalog import (
    ContractPriceSpec,
    CreditNoteSpec,
    CustomerSpec,
    LocationSpec,
    PriceEntry,
    PriceListSpec,
    ProductSpec,
)
from ..domain.limits import MAX_PIECES
from ..storage import Database, catalog
from . import catalog_sync
from .errors import ServiceError

KINDS = (
    "locations",
    "products",
    "price_lists",
    "customers",
    "contract_prices",
    "credit_notes",
    "stock",
)
LOADER = Principal(client_id=0, client_name="ordergate load", role=Role.ADMIN)
_BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


class CatalogFileError(ValueError):
    """The file cannot be loaded; the message names the row and field."""


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ValueError(f"{value!r} is not true or false")


def _codes(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else str(value).split("|")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _components(value: Any) -> tuple[tuple[str, int], ...]:
    if isinstance(value, list):
        return tuple((str(c["sku"]), int(c["quantity"])) for c in value)
    parts = []
    for item in _codes(value):
        sku, _, quantity = item.partition(":")
        parts.append((sku, int(quantity or "1")))
    return tuple(parts)


def _currency(value: Any) -> str:
    text = str(value).strip()
    if len(text) != 3 or not text.isalpha() or not text.isupper():
        raise ValueError(f"{value!r} is not an ISO 4217 code such as EUR")
    return text


def _decimal(value: Any) -> Decimal:
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a decimal number")
    return result


def _pieces(value: Any) -> int:
    pieces = int(value)
    if not 0 <= pieces <= MAX_PIECES:
        raise ValueError(f"{pieces} is not 0 to {MAX_PIECES:,}")
    return pieces


def _time(value: Any) -> datetime:
    result = datetime.fromisoformat(str(value))
    return result if result.tzinfo else result.replace(tzinfo=UTC)


# field -> (required, converter); fields absent from a row take the spec's default.
_FIELDS: dict[str, dict[str, tuple[bool, Callable[[Any], Any]]]] = {
    "locations": {"code": (True, str), "name": (True, str), "priority": (False, int)},
    "products": {
        "sku": (True, str),
        "name": (True, str),
        "requires_special_handling": (False, _boolean),
        "aliases": (False, _codes),
        "barcodes": (False, _codes),
        "components": (False, _components),
        "list_price": (False, _decimal),
        "list_currency": (False, _currency),
    },
    "price_lists": {
        "code": (True, str),
        "name": (True, str),
        "currency": (True, _currency),
        "entries": (False, lambda v: v),  # checked below, row by row
    },
    "customers": {
        "account": (True, str),
        "name": (True, str),
        "currency": (True, _currency),
        "requires_special_handling": (False, _boolean),
        "client": (False, str),
        "price_list": (False, str),
    },
    "contract_prices": {
        "customer_account": (True, str),
        "sku": (True, str),
        "unit_price": (True, _decimal),
        "valid_from": (False, _time),
        "valid_to": (False, _time),
    },
    "credit_notes": {
        "id": (True, str),
        "customer_account": (True, str),
        "currency": (True, _currency),
        "amount": (True, _decimal),
        "remaining": (True, _decimal),
        "issued_at": (False, _time),
        "expires_at": (False, _time),
    },
    "stock": {"sku": (True, str), "location": (True, str), "on_hand": (True, _pieces)},
}
_ENTRY_FIELDS: dict[str, tuple[bool, Callable[[Any], Any]]] = {
    "sku": (True, str),
    "min_quantity": (False, int),
    "unit_price": (True, _decimal),
    "valid_from": (False, _time),
    "valid_to": (False, _time),
}


def read_catalog_file(path: Path, kind: str | None = None) -> dict[str, list[dict[str, Any]]]:
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CatalogFileError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not set(data) <= set(KINDS):
            raise CatalogFileError(f"{path}: expected an object with keys among {', '.join(KINDS)}")
        return {k: _check_rows(k, v, _FIELDS[k]) for k, v in data.items()}
    kind = kind or path.stem
    if kind not in KINDS or kind == "price_lists":
        raise CatalogFileError(
            f"{path}: say which kind of rows it holds (--kind; price lists are JSON only)"
        )
    with path.open(newline="", encoding="utf-8") as handle:
        return {kind: _check_rows(kind, list(csv.DictReader(handle)), _FIELDS[kind])}


def load_catalog(db: Database, data: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Apply everything in `data` in one transaction; returns the row count per kind."""
    sync = catalog_sync
    try:
        with db.transaction() as tx:
            sync.upsert_locations(
                tx, LOADER, [LocationSpec(**r) for r in data.get("locations", [])]
            )
            sync.upsert_products(tx, LOADER, [ProductSpec(**r) for r in data.get("products", [])])
            sync.upsert_price_lists(
                tx, LOADER, [_price_list(r) for r in data.get("price_lists", [])]
            )
            sync.upsert_customers(
                tx, LOADER, [CustomerSpec(**r) for r in data.get("customers", [])]
            )
            sync.upsert_contract_prices(
                tx, LOADER, [_contract(r) for r in data.get("contract_prices", [])]
            )
            sync.upsert_credit_notes(tx, LOADER, [_credit(r) for r in data.get("credit_notes", [])])
            catalog.set_stock(tx, data.get("stock", []))
    except ServiceError as exc:
        problems = "; ".join(f"{v.field}: {v.description}" for v in exc.field_violations)
        raise CatalogFileError(problems or exc.message) from None
    return {kind: len(rows) for kind, rows in data.items()}


def _price_list(row: dict[str, Any]) -> PriceListSpec:
    entries = tuple(
        PriceEntry(
            sku=e["sku"],
            min_quantity=e.get("min_quantity", 1),
            unit_price=e["unit_price"],
            valid_from=e.get("valid_from", _BEGINNING),
            valid_to=e.get("valid_to"),
        )
        for e in _check_rows(
            f"price list {row['code']} entries", row.get("entries", []), _ENTRY_FIELDS
        )
    )
    return PriceListSpec(row["code"], row["name"], row["currency"], entries)


def _contract(row: dict[str, Any]) -> ContractPriceSpec:
    return ContractPriceSpec(
        row["customer_account"],
        row["sku"],
        row["unit_price"],
        row.get("valid_from", _BEGINNING),
        row.get("valid_to"),
    )


def _credit(row: dict[str, Any]) -> CreditNoteSpec:
    return CreditNoteSpec(
        row["id"],
        row["customer_account"],
        row["currency"],
        row["amount"],
        row["remaining"],
        row.get("issued_at", datetime.now(UTC)),
        row.get("expires_at"),
    )


def _check_rows(
    kind: str, rows: Any, spec: dict[str, tuple[bool, Callable[[Any], Any]]]
) -> list[dict[str, Any]]:
    if not isinstance(rows, list):
        raise CatalogFileError(f"{kind}: expected a list of rows")
    checked = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise CatalogFileError(f"{kind} row {number}: expected an object")
        unknown = set(row) - set(spec)
        if unknown:
            raise CatalogFileError(f"{kind} row {number}: unknown fields {sorted(unknown)}")
        clean = {}
        for name, (required, convert) in spec.items():
            value = row.get(name)
            if value in (None, ""):
                if required:
                    raise CatalogFileError(f"{kind} row {number}: {name} is required")
                continue
            try:
                clean[name] = convert(value)
            except (TypeError, ValueError, KeyError) as exc:
                raise CatalogFileError(f"{kind} row {number}: {name}: {exc}") from None
        checked.append(clean)
    return checked
