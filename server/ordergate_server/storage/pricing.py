"""Reading what prices and credit a customer has."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, Connection, and_, or_, select

from ..domain.catalog import ContractPriceSpec, CreditNoteSpec, PriceEntry
from . import tables as t


@dataclass(frozen=True)
class PricingCustomer:
    account: str
    currency: str
    client_id: int | None
    price_list: str
    price_list_currency: str


def customer(conn: Connection, account: str) -> PricingCustomer | None:
    c = t.customers.c
    row = conn.execute(
        select(
            c.account,
            c.currency,
            c.client_id,
            c.price_list,
            t.price_lists.c.currency.label("pl_currency"),
        )
        .outerjoin(t.price_lists, t.price_lists.c.code == c.price_list)
        .where(c.account == account)
    ).first()
    if row is None:
        return None
    return PricingCustomer(
        row.account, row.currency, row.client_id, row.price_list or "", row.pl_currency or ""
    )


def contract_prices(
    conn: Connection, account: str, skus: Iterable[str]
) -> dict[str, list[ContractPriceSpec]]:
    found: dict[str, list[ContractPriceSpec]] = defaultdict(list)
    cp = t.contract_prices.c
    for row in conn.execute(
        select(t.contract_prices).where(and_(cp.customer == account, cp.sku.in_(set(skus))))
    ):
        found[row.sku].append(
            ContractPriceSpec(
                row.customer, row.sku, Decimal(row.unit_price), row.valid_from, row.valid_to
            )
        )
    return found


def price_list_entries(
    conn: Connection, code: str, skus: Iterable[str]
) -> dict[str, list[PriceEntry]]:
    found: dict[str, list[PriceEntry]] = defaultdict(list)
    e = t.price_list_entries.c
    for row in conn.execute(
        select(t.price_list_entries).where(and_(e.price_list == code, e.sku.in_(set(skus))))
    ):
        found[row.sku].append(
            PriceEntry(
                row.sku, row.min_quantity, Decimal(row.unit_price), row.valid_from, row.valid_to
            )
        )
    return found


def list_prices(conn: Connection, skus: Iterable[str]) -> dict[str, tuple[Decimal | None, str]]:
    p = t.products.c
    return {
        row.sku: (Decimal(row.list_price) if row.list_price else None, row.list_currency or "")
        for row in conn.execute(
            select(p.sku, p.list_price, p.list_currency).where(p.sku.in_(set(skus)))
        )
    }


def _open(account: str, at: datetime) -> ColumnElement[bool]:
    n = t.credit_notes.c
    return and_(n.customer == account, or_(n.expires_at.is_(None), n.expires_at > at))


def open_credit_notes(
    conn: Connection, account: str, at: datetime, *, after_id: str, limit: int
) -> list[CreditNoteSpec]:
    """Open notes (remaining above zero, not expired) by id, after `after_id`."""
    n = t.credit_notes.c
    rows = conn.execute(
        select(t.credit_notes).where(_open(account, at), n.id > after_id).order_by(n.id)
    )
    notes = []
    for row in rows:
        remaining = Decimal(row.remaining)
        if remaining > 0:
            notes.append(
                CreditNoteSpec(
                    row.id,
                    row.customer,
                    row.currency,
                    Decimal(row.amount),
                    remaining,
                    row.issued_at,
                    row.expires_at,
                )
            )
            if len(notes) == limit:
                break
    return notes


def credit_balances(conn: Connection, account: str, at: datetime) -> dict[str, Decimal]:
    """Remaining credit per currency over every open note (decimal strings summed exactly)."""
    n = t.credit_notes.c
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for currency, remaining in conn.execute(
        select(n.currency, n.remaining).where(_open(account, at))
    ):
        if Decimal(remaining) > 0:
            totals[currency] += Decimal(remaining)
    return dict(sorted(totals.items()))
