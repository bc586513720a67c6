"""The ERP pushes its catalog: idempotent, validated, audited upserts.

Each upsert validates the whole request (every problem named with its field path), compares
what is stored with what was sent, writes only what changed, and audits each created or changed
entity with its before and after state. They take the transaction they run in, so that one
unit of work can hold several of them (`ordergate load` loads a whole file, or nothing):
`in_transaction(db, upsert_products, principal, specs)` runs one on its own.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import Connection

from ..domain.access import Principal
from ..domain.catalog import (
    ContractPriceSpec,
    CreditNoteSpec,
    CustomerSpec,
    LocationSpec,
    PriceListSpec,
    ProductSpec,
)
from ..domain.limits import DECIMAL_CHARS, MAX_INTEGER, shown
from ..storage import Database, audit
from ..storage import catalog_sync as store
from .errors import ErrorKind, FieldViolation, ServiceError

T = TypeVar("T")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class SyncCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


class _Problems:
    """Collects every validation problem, so the caller can fix them all in one go."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(field, description))

    def code(self, field: str, value: str) -> None:
        if not value or len(value) > 64 or value != value.strip():
            self.add(field, "required: 1 to 64 characters, no surrounding spaces")

    def text(self, field: str, value: str) -> None:
        if not value.strip() or len(value) > 200:
            self.add(field, "required: 1 to 200 characters")

    def integer(self, field: str, value: int, low: int) -> None:
        if not low <= value <= MAX_INTEGER:
            self.add(field, f"{low:,} to {MAX_INTEGER:,}")

    def decimal(self, field: str, value: Decimal) -> None:
        if len(str(value)) > DECIMAL_CHARS:
            self.add(field, f"at most {DECIMAL_CHARS} characters as decimal text")

    def currency(self, field: str, value: str) -> None:
        if not _CURRENCY.match(value):
            self.add(field, "an ISO 4217 code such as EUR")

    def unique(self, field: str, keys: Sequence[str]) -> None:
        for key, n in Counter(keys).items():
            if n > 1:
                self.add(field, f"{shown(key)} appears {n} times")

    def raise_if_any(self) -> None:
        if self.violations:
            shown = "; ".join(f"{v.field}: {v.description}" for v in self.violations[:5])
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                "CATALOG_INVALID",
                f"{len(self.violations)} problem(s), nothing was changed: {shown}",
                field_violations=self.violations[:100],
            )


def in_transaction(
    db: Database,
    upsert: Callable[[Connection, Principal, Sequence[T]], SyncCounts],
    principal: Principal,
    specs: Sequence[T],
) -> SyncCounts:
    with db.transaction() as tx:
        return upsert(tx, principal, specs)


def _sync(
    tx: Connection,
    principal: Principal,
    kind: str,
    new: dict[str, store.Snapshot],
    old: dict[str, store.Snapshot],
) -> tuple[SyncCounts, list[str]]:
    """Audit what differs between `old` and `new`; return the counts and the changed keys."""
    now = datetime.now(UTC)
    changed = [key for key, snapshot in new.items() if old.get(key) != snapshot]
    audit.record(
        tx,
        [
            audit.AuditEntry(
                at=now,
                actor=principal.client_name,
                role=principal.role.value,
                action=f"{kind}.{'update' if key in old else 'create'}",
                subject=f"{kind}/{key}",
                before=old.get(key),
                after=new[key],
            )
            for key in changed
        ],
    )
    updated = sum(key in old for key in changed)
    return SyncCounts(len(changed) - updated, updated, len(new) - len(changed)), changed


def _pick(specs: Sequence[T], key: Callable[[T], str], keys: Sequence[str]) -> list[T]:
    wanted = set(keys)
    return [s for s in specs if key(s) in wanted]


def upsert_locations(
    tx: Connection, principal: Principal, specs: Sequence[LocationSpec]
) -> SyncCounts:
    problems = _Problems()
    for i, s in enumerate(specs):
        problems.code(f"locations[{i}].code", s.code)
        problems.text(f"locations[{i}].name", s.name)
        problems.integer(f"locations[{i}].priority", s.priority, -MAX_INTEGER)
    problems.unique("locations", [s.code for s in specs])
    problems.raise_if_any()
    keys = [s.code for s in specs]
    new = {s.code: store.location_snapshot(s) for s in specs}
    counts, changed = _sync(tx, principal, "location", new, store.location_snapshots(tx, keys))
    store.write_locations(tx, _pick(specs, lambda s: s.code, changed))
    return counts


def upsert_products(
    tx: Connection, principal: Principal, specs: Sequence[ProductSpec]
) -> SyncCounts:
    problems = _Problems()
    in_request = {s.sku for s in specs}
    bundles_in_request = {s.sku for s in specs if s.components}
    for i, s in enumerate(specs):
        problems.code(f"products[{i}].sku", s.sku)
        problems.text(f"products[{i}].name", s.name)
        for j, code in enumerate((*s.barcodes, *s.aliases)):
            problems.code(f"products[{i}].codes[{j}]", code)
            if code in in_request:
                problems.add(f"products[{i}].codes[{j}]", f"{shown(code)} is a SKU of its own")
        if s.list_price is not None:
            if s.list_price < 0:
                problems.add(f"products[{i}].list_price", "must not be negative")
            problems.decimal(f"products[{i}].list_price", s.list_price)
            problems.currency(f"products[{i}].list_currency", s.list_currency)
        for j, (sku, quantity) in enumerate(s.components):
            problems.integer(f"products[{i}].components[{j}].quantity", quantity, 1)
            if sku == s.sku or sku in bundles_in_request:
                problems.add(f"products[{i}].components[{j}].sku", "a component cannot be a bundle")
    problems.unique("products", [s.sku for s in specs])
    problems.unique("products.codes", [c for s in specs for c in (*s.barcodes, *s.aliases)])
    components = {sku for s in specs for sku, _ in s.components} - in_request
    missing = components - store.existing_skus(tx, components)
    for sku in sorted(missing):
        problems.add("products.components", f"unknown component SKU {shown(sku)}")
    # A code may move between products only when both are in this request.
    codes = {code: s.sku for s in specs for code in (*s.barcodes, *s.aliases)}
    for code, owner in store.code_owners(tx, codes).items():
        if owner != codes[code] and owner not in in_request:
            problems.add("products.codes", f"{shown(code)} already names product {shown(owner)}")
    for code in sorted(store.existing_skus(tx, codes)):
        problems.add("products.codes", f"{shown(code)} is the SKU of another product")
    problems.raise_if_any()
    keys = [s.sku for s in specs]
    new = {s.sku: store.product_snapshot(s) for s in specs}
    counts, changed = _sync(tx, principal, "product", new, store.product_snapshots(tx, keys))
    store.write_products(tx, _pick(specs, lambda s: s.sku, changed))
    return counts


def upsert_customers(
    tx: Connection, principal: Principal, specs: Sequence[CustomerSpec]
) -> SyncCounts:
    problems = _Problems()
    for i, s in enumerate(specs):
        problems.code(f"customers[{i}].account", s.account)
        problems.text(f"customers[{i}].name", s.name)
        problems.currency(f"customers[{i}].currency", s.currency)
    problems.unique("customers", [s.account for s in specs])
    clients = store.client_ids(tx, (s.client for s in specs if s.client))
    lists = store.existing_price_lists(tx, (s.price_list for s in specs if s.price_list))
    for i, s in enumerate(specs):
        if s.client and s.client not in clients:
            problems.add(f"customers[{i}].client", f"no API client named {shown(s.client)}")
        if s.price_list and s.price_list not in lists:
            problems.add(f"customers[{i}].price_list", f"no price list {shown(s.price_list)}")
    problems.raise_if_any()
    keys = [s.account for s in specs]
    new = {s.account: store.customer_snapshot(s) for s in specs}
    counts, changed = _sync(tx, principal, "customer", new, store.customer_snapshots(tx, keys))
    store.write_customers(tx, _pick(specs, lambda s: s.account, changed), clients)
    return counts


def upsert_price_lists(
    tx: Connection, principal: Principal, specs: Sequence[PriceListSpec]
) -> SyncCounts:
    problems = _Problems()
    for i, s in enumerate(specs):
        problems.code(f"price_lists[{i}].code", s.code)
        problems.text(f"price_lists[{i}].name", s.name)
        problems.currency(f"price_lists[{i}].currency", s.currency)
        for j, e in enumerate(s.entries):
            problems.integer(f"price_lists[{i}].entries[{j}].min_quantity", e.min_quantity, 1)
            if e.unit_price < 0:
                problems.add(f"price_lists[{i}].entries[{j}].unit_price", "must not be negative")
            problems.decimal(f"price_lists[{i}].entries[{j}].unit_price", e.unit_price)
            if e.valid_to is not None and e.valid_to <= e.valid_from:
                problems.add(f"price_lists[{i}].entries[{j}].valid_to", "must be after valid_from")
        problems.unique(
            f"price_lists[{i}].entries",
            [f"{e.sku}@{e.min_quantity}@{e.valid_from.isoformat()}" for e in s.entries],
        )
    problems.unique("price_lists", [s.code for s in specs])
    skus = {e.sku for s in specs for e in s.entries}
    for sku in sorted(skus - store.existing_skus(tx, skus)):
        problems.add("price_lists.entries", f"unknown SKU {shown(sku)}")
    problems.raise_if_any()
    keys = [s.code for s in specs]
    new = {s.code: store.price_list_snapshot(s) for s in specs}
    counts, changed = _sync(tx, principal, "price_list", new, store.price_list_snapshots(tx, keys))
    store.write_price_lists(tx, _pick(specs, lambda s: s.code, changed))
    return counts


def upsert_contract_prices(
    tx: Connection, principal: Principal, specs: Sequence[ContractPriceSpec]
) -> SyncCounts:
    problems = _Problems()
    for i, s in enumerate(specs):
        if s.unit_price < 0:
            problems.add(f"contract_prices[{i}].unit_price", "must not be negative")
        problems.decimal(f"contract_prices[{i}].unit_price", s.unit_price)
        if s.valid_to is not None and s.valid_to <= s.valid_from:
            problems.add(f"contract_prices[{i}].valid_to", "must be after valid_from")
    problems.unique(
        "contract_prices", [f"{s.customer}/{s.sku}@{s.valid_from.isoformat()}" for s in specs]
    )
    customers = sorted({s.customer for s in specs})
    for account in sorted(set(customers) - store.existing_customers(tx, customers)):
        problems.add("contract_prices.customer_account", f"unknown customer {shown(account)}")
    skus = {s.sku for s in specs}
    for sku in sorted(skus - store.existing_skus(tx, skus)):
        problems.add("contract_prices.sku", f"unknown SKU {shown(sku)}")
    problems.raise_if_any()
    new = {c: store.contract_snapshot([s for s in specs if s.customer == c]) for c in customers}
    old = store.contract_snapshots(tx, customers)
    counts, changed = _sync(tx, principal, "contract_prices", new, old)
    store.write_contract_prices(tx, changed, _pick(specs, lambda s: s.customer, changed))
    return counts


def upsert_credit_notes(
    tx: Connection, principal: Principal, specs: Sequence[CreditNoteSpec]
) -> SyncCounts:
    problems = _Problems()
    for i, s in enumerate(specs):
        problems.code(f"credit_notes[{i}].id", s.id)
        problems.currency(f"credit_notes[{i}].currency", s.currency)
        if s.amount < 0 or not 0 <= s.remaining <= s.amount:
            problems.add(f"credit_notes[{i}].remaining", "0 <= remaining <= amount, amount >= 0")
        problems.decimal(f"credit_notes[{i}].amount", s.amount)
        problems.decimal(f"credit_notes[{i}].remaining", s.remaining)
    problems.unique("credit_notes", [s.id for s in specs])
    customers = {s.customer for s in specs}
    for account in sorted(customers - store.existing_customers(tx, customers)):
        problems.add("credit_notes.customer_account", f"unknown customer {shown(account)}")
    problems.raise_if_any()
    keys = [s.id for s in specs]
    new = {s.id: store.credit_note_snapshot(s) for s in specs}
    counts, changed = _sync(
        tx, principal, "credit_note", new, store.credit_note_snapshots(tx, keys)
    )
    store.write_credit_notes(tx, _pick(specs, lambda s: s.id, changed))
    return counts


def rename_sku(
    tx: Connection, principal: Principal, old: str, new: str, transition_end: datetime
) -> bool:
    """Rename product `old` to `new` (which must exist): both codes name one stock until
    `transition_end`, after which orders with the old code are held (SKU_RENAMED).
    Returns False when this rename was already done with this window (nothing changed)."""
    problems = _Problems()
    problems.code("old_sku", old)
    problems.code("new_sku", new)
    if old == new:
        problems.add("new_sku", "must differ from old_sku")
    problems.raise_if_any()
    if not store.existing_skus(tx, [new]):
        problems.add("new_sku", f"no product {shown(new)}: push it with UpsertProducts first")
    already = store.renamed_to(tx, old)
    if already is not None and already != new:
        problems.add("old_sku", f"{shown(old)} was already renamed to {shown(already)}")
    if already is None and not store.existing_skus(tx, [old]):
        problems.add("old_sku", f"no product {shown(old)}")
    problems.raise_if_any()
    before = {"old_sku": old, "new_sku": new}
    after = {**before, "transition_end": transition_end.isoformat()}
    if already == new:
        current = store.code_valid_until(tx, old)
        if current == transition_end:
            return False
        store.set_code_valid_until(tx, old, transition_end)
        moved: dict[str, int] = {}
    else:
        moved = store.rename_product(tx, old, new, transition_end)
    audit.record(
        tx,
        [
            audit.AuditEntry(
                at=datetime.now(UTC),
                actor=principal.client_name,
                role=principal.role.value,
                action="product.rename",
                subject=f"product/{old}",
                before=before,
                after={**after, "moved": moved},
            )
        ],
    )
    return True
