"""Loading locations, products, stock and customers from a JSON or CSV file (`ordergate load`).

JSON: one object with any of the lists "locations", "products", "stock", "customers".
CSV: one kind per file, named by `kind` or by the file name (products.csv ...); a header row
with the field names below; list fields (aliases, barcodes) separated by "|".
The whole file is loaded in one transaction: all of it or, on any error, none of it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..storage import Database, catalog

KINDS = ("locations", "products", "stock", "customers")

# field -> (required, converter)
_FIELDS: dict[str, dict[str, tuple[bool, Callable[[Any], Any]]]] = {
    "locations": {"code": (True, str), "name": (True, str), "priority": (False, int)},
    "products": {
        "sku": (True, str),
        "name": (True, str),
        "requires_special_handling": (False, lambda v: _boolean(v)),
        "aliases": (False, lambda v: _codes(v)),
        "barcodes": (False, lambda v: _codes(v)),
    },
    "stock": {"sku": (True, str), "location": (True, str), "on_hand": (True, int)},
    "customers": {
        "account": (True, str),
        "name": (True, str),
        "currency": (True, lambda v: _currency(v)),
        "requires_special_handling": (False, lambda v: _boolean(v)),
    },
}


class CatalogFileError(ValueError):
    """The file cannot be loaded; the message names the row and field."""


def read_catalog_file(path: Path, kind: str | None = None) -> dict[str, list[dict[str, Any]]]:
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CatalogFileError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not set(data) <= set(KINDS):
            raise CatalogFileError(f"{path}: expected an object with keys among {', '.join(KINDS)}")
        return {k: _check_rows(k, v) for k, v in data.items()}
    kind = kind or path.stem
    if kind not in KINDS:
        raise CatalogFileError(
            f"{path}: say which kind of rows it holds (--kind {'|'.join(KINDS)})"
        )
    with path.open(newline="", encoding="utf-8") as handle:
        return {kind: _check_rows(kind, list(csv.DictReader(handle)))}


def load_catalog(db: Database, data: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Upsert everything in `data` in one transaction; returns the row count per kind."""
    with db.transaction() as tx:
        catalog.upsert_locations(tx, data.get("locations", []))
        catalog.upsert_products(tx, data.get("products", []))
        catalog.upsert_customers(tx, data.get("customers", []))
        catalog.set_stock(tx, data.get("stock", []))
    return {kind: len(rows) for kind, rows in data.items()}


def _check_rows(kind: str, rows: Any) -> list[dict[str, Any]]:
    if not isinstance(rows, list):
        raise CatalogFileError(f"{kind}: expected a list of rows")
    spec = _FIELDS[kind]
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
            except (TypeError, ValueError) as exc:
                raise CatalogFileError(f"{kind} row {number}: {name}: {exc}") from None
        checked.append(clean)
    return checked


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ValueError(f"{value!r} is not true or false")


def _codes(value: Any) -> list[str]:
    items = value if isinstance(value, list) else str(value).split("|")
    return [str(item).strip() for item in items if str(item).strip()]


def _currency(value: Any) -> str:
    text = str(value).strip()
    if len(text) != 3 or not text.isalpha() or not text.isupper():
        raise ValueError(f"{value!r} is not an ISO 4217 code such as EUR")
    return text
