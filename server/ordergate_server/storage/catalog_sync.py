"""Reading and replacing catalog entities as whole snapshots (JSON-able dicts), for the ERP sync.

Each kind has `<kind>_snapshots(conn, keys) -> {key: snapshot}` giving the stored state, and
`write_<kinds>(conn, specs)` replacing the entities named. The service compares snapshots to
decide what changed and audits exactly that.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, select

from ..domain.catalog import (
    ContractPriceSpec,
    CreditNoteSpec,
    CustomerSpec,
    LocationSpec,
    PriceListSpec,
    ProductSpec,
)
from . import tables as t
from .upsert import upsert

T = TypeVar("T")
_CHUNK = 1000  # keys per IN (...) list: well inside SQLite's and PostgreSQL's limits

Snapshot = dict[str, Any]


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# --- locations -------------------------------------------------------------------------------


def location_snapshot(spec: LocationSpec) -> Snapshot:
    return {"name": spec.name, "priority": spec.priority}


def location_snapshots(conn: Connection, codes: Sequence[str]) -> dict[str, Snapshot]:
    found = {}
    for chunk in _chunks(codes):
        for row in conn.execute(select(t.locations).where(t.locations.c.code.in_(chunk))):
            found[row.code] = {"name": row.name, "priority": row.priority}
    return found


def write_locations(conn: Connection, specs: Sequence[LocationSpec]) -> None:
    upsert(
        conn,
        t.locations,
        [{"code": s.code, "name": s.name, "priority": s.priority} for s in specs],
        ["code"],
    )


# --- products --------------------------------------------------------------------------------


def product_snapshot(spec: ProductSpec) -> Snapshot:
    return {
        "name": spec.name,
        "requires_special_handling": spec.requires_special_handling,
        "barcodes": sorted(spec.barcodes),
        "aliases": sorted(spec.aliases),
        "components": sorted([sku, qty] for sku, qty in spec.components),
        "list_price": str(spec.list_price) if spec.list_price is not None else None,
        "list_currency": spec.list_currency or None,
    }


def product_snapshots(conn: Connection, skus: Sequence[str]) -> dict[str, Snapshot]:
    found: dict[str, Snapshot] = {}
    for chunk in _chunks(skus):
        for row in conn.execute(select(t.products).where(t.products.c.sku.in_(chunk))):
            found[row.sku] = {
                "name": row.name,
                "requires_special_handling": bool(row.requires_special_handling),
                "barcodes": [],
                "aliases": [],
                "components": [],
                "list_price": row.list_price,
                "list_currency": row.list_currency,
            }
        codes = select(t.product_codes).where(
            t.product_codes.c.sku.in_(chunk), t.product_codes.c.kind != "renamed"
        )
        for row in conn.execute(codes.order_by(t.product_codes.c.code)):
            kind = "barcodes" if row.kind == "barcode" else "aliases"
            found[row.sku][kind].append(row.code)
        parts = select(t.bundle_components).where(t.bundle_components.c.bundle_sku.in_(chunk))
        for row in conn.execute(parts.order_by(t.bundle_components.c.component_sku)):
            found[row.bundle_sku]["components"].append([row.component_sku, row.quantity])
    return found


def existing_skus(conn: Connection, skus: Iterable[str]) -> set[str]:
    wanted = sorted(set(skus))
    found: set[str] = set()
    for chunk in _chunks(wanted):
        found |= {
            sku
            for (sku,) in conn.execute(select(t.products.c.sku).where(t.products.c.sku.in_(chunk)))
        }
    return found


def write_products(conn: Connection, specs: Sequence[ProductSpec]) -> None:
    if not specs:
        return
    upsert(
        conn,
        t.products,
        [
            {
                "sku": s.sku,
                "name": s.name,
                "requires_special_handling": s.requires_special_handling,
                "list_price": str(s.list_price) if s.list_price is not None else None,
                "list_currency": s.list_currency or None,
            }
            for s in specs
        ],
        ["sku"],
    )
    skus = [s.sku for s in specs]
    for chunk in _chunks(skus):
        conn.execute(
            t.product_codes.delete().where(
                t.product_codes.c.sku.in_(chunk), t.product_codes.c.kind != "renamed"
            )
        )
        conn.execute(
            t.bundle_components.delete().where(t.bundle_components.c.bundle_sku.in_(chunk))
        )
    codes = [
        {"code": code, "kind": kind, "sku": s.sku}
        for s in specs
        for kind, values in (("barcode", s.barcodes), ("alias", s.aliases))
        for code in values
    ]
    upsert(conn, t.product_codes, codes, ["code"])
    parts = [
        {"bundle_sku": s.sku, "component_sku": sku, "quantity": qty}
        for s in specs
        for sku, qty in s.components
    ]
    if parts:
        conn.execute(t.bundle_components.insert(), parts)


# --- customers -------------------------------------------------------------------------------


def customer_snapshot(spec: CustomerSpec) -> Snapshot:
    return {
        "name": spec.name,
        "currency": spec.currency,
        "requires_special_handling": spec.requires_special_handling,
        "client": spec.client or None,
        "price_list": spec.price_list or None,
    }


def customer_snapshots(conn: Connection, accounts: Sequence[str]) -> dict[str, Snapshot]:
    found = {}
    c = t.customers.c
    for chunk in _chunks(accounts):
        query = (
            select(t.customers, t.clients.c.name.label("client_name"))
            .outerjoin(t.clients, t.clients.c.id == c.client_id)
            .where(c.account.in_(chunk))
        )
        for row in conn.execute(query):
            found[row.account] = {
                "name": row.name,
                "currency": row.currency,
                "requires_special_handling": bool(row.requires_special_handling),
                "client": row.client_name,
                "price_list": row.price_list,
            }
    return found


def write_customers(
    conn: Connection, specs: Sequence[CustomerSpec], client_ids: dict[str, int]
) -> None:
    upsert(
        conn,
        t.customers,
        [
            {
                "account": s.account,
                "name": s.name,
                "currency": s.currency,
                "requires_special_handling": s.requires_special_handling,
                "client_id": client_ids[s.client] if s.client else None,
                "price_list": s.price_list or None,
            }
            for s in specs
        ],
        ["account"],
    )


def client_ids(conn: Connection, names: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = conn.execute(
        select(t.clients.c.name, t.clients.c.id).where(t.clients.c.name.in_(wanted))
    )
    return {name: int(id_) for name, id_ in rows}


def existing_price_lists(conn: Connection, codes: Iterable[str]) -> set[str]:
    wanted = sorted(set(codes))
    if not wanted:
        return set()
    return {
        c
        for (c,) in conn.execute(
            select(t.price_lists.c.code).where(t.price_lists.c.code.in_(wanted))
        )
    }


def existing_customers(conn: Connection, accounts: Iterable[str]) -> set[str]:
    wanted = sorted(set(accounts))
    found: set[str] = set()
    for chunk in _chunks(wanted):
        found |= {
            a
            for (a,) in conn.execute(
                select(t.customers.c.account).where(t.customers.c.account.in_(chunk))
            )
        }
    return found


# --- price lists -----------------------------------------------------------------------------


def price_list_snapshot(spec: PriceListSpec) -> Snapshot:
    return {
        "name": spec.name,
        "currency": spec.currency,
        "entries": sorted(
            [e.sku, e.min_quantity, str(e.unit_price), _when(e.valid_from), _when(e.valid_to)]
            for e in spec.entries
        ),
    }


def price_list_snapshots(conn: Connection, codes: Sequence[str]) -> dict[str, Snapshot]:
    found: dict[str, Snapshot] = {}
    for row in conn.execute(select(t.price_lists).where(t.price_lists.c.code.in_(codes))):
        found[row.code] = {"name": row.name, "currency": row.currency, "entries": []}
    e = t.price_list_entries.c
    for row in conn.execute(select(t.price_list_entries).where(e.price_list.in_(codes))):
        found[row.price_list]["entries"].append(
            [row.sku, row.min_quantity, row.unit_price, _when(row.valid_from), _when(row.valid_to)]
        )
    for snapshot in found.values():
        snapshot["entries"].sort()
    return found


def write_price_lists(conn: Connection, specs: Sequence[PriceListSpec]) -> None:
    upsert(
        conn,
        t.price_lists,
        [{"code": s.code, "name": s.name, "currency": s.currency} for s in specs],
        ["code"],
    )
    codes = [s.code for s in specs]
    conn.execute(t.price_list_entries.delete().where(t.price_list_entries.c.price_list.in_(codes)))
    rows = [
        {
            "price_list": s.code,
            "sku": e.sku,
            "min_quantity": e.min_quantity,
            "unit_price": str(e.unit_price),
            "valid_from": e.valid_from,
            "valid_to": e.valid_to,
        }
        for s in specs
        for e in s.entries
    ]
    if rows:
        conn.execute(t.price_list_entries.insert(), rows)


# --- contract prices (one entity per customer) --------------------------------------------------


def contract_snapshot(specs: Sequence[ContractPriceSpec]) -> Snapshot:
    return {
        "prices": sorted(
            [s.sku, str(s.unit_price), _when(s.valid_from), _when(s.valid_to)] for s in specs
        )
    }


def contract_snapshots(conn: Connection, customers: Sequence[str]) -> dict[str, Snapshot]:
    grouped: dict[str, list[list[Any]]] = defaultdict(list)
    for row in conn.execute(
        select(t.contract_prices).where(t.contract_prices.c.customer.in_(customers))
    ):
        grouped[row.customer].append(
            [row.sku, row.unit_price, _when(row.valid_from), _when(row.valid_to)]
        )
    return {customer: {"prices": sorted(prices)} for customer, prices in grouped.items()}


def write_contract_prices(
    conn: Connection, customers: Sequence[str], specs: Sequence[ContractPriceSpec]
) -> None:
    conn.execute(t.contract_prices.delete().where(t.contract_prices.c.customer.in_(customers)))
    if specs:
        conn.execute(
            t.contract_prices.insert(),
            [
                {
                    "customer": s.customer,
                    "sku": s.sku,
                    "unit_price": str(s.unit_price),
                    "valid_from": s.valid_from,
                    "valid_to": s.valid_to,
                }
                for s in specs
            ],
        )


# --- credit notes ----------------------------------------------------------------------------


def credit_note_snapshot(spec: CreditNoteSpec) -> Snapshot:
    return {
        "customer": spec.customer,
        "currency": spec.currency,
        "amount": str(spec.amount),
        "remaining": str(spec.remaining),
        "issued_at": _when(spec.issued_at),
        "expires_at": _when(spec.expires_at),
    }


def credit_note_snapshots(conn: Connection, ids: Sequence[str]) -> dict[str, Snapshot]:
    return {
        row.id: {
            "customer": row.customer,
            "currency": row.currency,
            "amount": row.amount,
            "remaining": row.remaining,
            "issued_at": _when(row.issued_at),
            "expires_at": _when(row.expires_at),
        }
        for row in conn.execute(select(t.credit_notes).where(t.credit_notes.c.id.in_(ids)))
    }


def write_credit_notes(conn: Connection, specs: Sequence[CreditNoteSpec]) -> None:
    upsert(
        conn,
        t.credit_notes,
        [
            {
                "id": s.id,
                "customer": s.customer,
                "currency": s.currency,
                "amount": str(s.amount),
                "remaining": str(s.remaining),
                "issued_at": s.issued_at,
                "expires_at": s.expires_at,
            }
            for s in specs
        ],
        ["id"],
    )


def code_owners(conn: Connection, codes: Iterable[str]) -> dict[str, str]:
    """Which product each alias or barcode names today."""
    wanted = sorted(set(codes))
    owners: dict[str, str] = {}
    for chunk in _chunks(wanted):
        rows = conn.execute(
            select(t.product_codes.c.code, t.product_codes.c.sku).where(
                t.product_codes.c.code.in_(chunk)
            )
        )
        owners.update({code: sku for code, sku in rows})
    return owners


def rename_product(conn: Connection, old: str, new: str, valid_until: datetime) -> dict[str, int]:
    """Fold product `old` into `new`: its stock (every bucket, per location), codes, bundle
    memberships, prices, order, purchase order and return lines move to `new`; `old` stays a
    code of `new` (kind 'renamed') until `valid_until`. Prices `new` already has win over `old`'s.
    Returns what moved, for the audit log."""
    moved = {"stock_records": 0, "codes": 0, "order_lines": 0}
    s = t.stock.c
    for row in conn.execute(select(t.stock).where(s.sku == old)).all():
        target = conn.execute(
            select(t.stock).where(s.sku == new, s.location == row.location).with_for_update()
        ).first()
        if target is None:
            conn.execute(
                t.stock.insert().values(sku=new, location=row.location, on_hand=0, allocated=0)
            )
        conn.execute(
            t.stock.update()
            .where(s.sku == new, s.location == row.location)
            .values(
                on_hand=s.on_hand + row.on_hand,
                allocated=s.allocated + row.allocated,
                quarantine=s.quarantine + row.quarantine,
                on_order=s.on_order + row.on_order,
                next_expected=_earliest(target.next_expected if target else None, row),
            )
        )
        moved["stock_records"] += 1
    conn.execute(t.stock.delete().where(s.sku == old))
    moved["codes"] = conn.execute(
        t.product_codes.update().where(t.product_codes.c.sku == old).values(sku=new)
    ).rowcount
    b = t.bundle_components.c
    conn.execute(
        t.bundle_components.update().where(b.component_sku == old).values(component_sku=new)
    )
    conn.execute(t.bundle_components.update().where(b.bundle_sku == old).values(bundle_sku=new))
    for table in (t.price_list_entries, t.contract_prices):
        if conn.execute(select(table.c.sku).where(table.c.sku == new).limit(1)).first():
            conn.execute(table.delete().where(table.c.sku == old))
        else:
            conn.execute(table.update().where(table.c.sku == old).values(sku=new))
    moved["order_lines"] = conn.execute(
        t.order_lines.update().where(t.order_lines.c.sku == old).values(sku=new)
    ).rowcount
    for lines in (t.purchase_order_lines, t.return_lines):
        conn.execute(lines.update().where(lines.c.sku == old).values(sku=new))
    conn.execute(t.products.delete().where(t.products.c.sku == old))
    upsert(
        conn,
        t.product_codes,
        [{"code": old, "kind": "renamed", "sku": new, "valid_until": valid_until}],
        ["code"],
    )
    return moved


def _earliest(mine: str | None, other: Any) -> str | None:
    dates = [d for d in (mine, other.next_expected) if d]
    return min(dates) if dates else None


def renamed_to(conn: Connection, code: str) -> str | None:
    c = t.product_codes.c
    row = conn.execute(select(c.sku).where(c.code == code, c.kind == "renamed")).first()
    return row.sku if row else None


def code_valid_until(conn: Connection, code: str) -> datetime | None:
    c = t.product_codes.c
    row = conn.execute(select(c.valid_until).where(c.code == code)).first()
    return row.valid_until if row else None


def set_code_valid_until(conn: Connection, code: str, valid_until: datetime) -> None:
    c = t.product_codes.c
    conn.execute(t.product_codes.update().where(c.code == code).values(valid_until=valid_until))
