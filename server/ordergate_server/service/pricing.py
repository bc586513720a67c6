"""Customer prices and credit for storefront checkout."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Connection

from ..domain.access import Principal
from ..domain.catalog import CreditNoteSpec
from ..domain.pricing import Price, PricingFacts, resolve_price
from ..storage import Database, catalog, pricing
from . import paging
from .errors import ErrorKind, FieldViolation, ServiceError

MAX_ITEMS = 1000


@dataclass(frozen=True)
class PricedItem:
    requested_code: str
    sku: str  # "" when unknown
    quantity: int
    price: Price | None


@dataclass(frozen=True)
class CustomerPrices:
    account: str
    currency: str
    items: list[PricedItem]


def _customer(conn: Connection, principal: Principal, account: str) -> pricing.PricingCustomer:
    found = pricing.customer(conn, account)
    # A website sees only customers of its own client; others look exactly like unknown ones.
    if found is None or (principal.sees_only_own_client and found.client_id != principal.client_id):
        raise ServiceError(
            ErrorKind.NOT_FOUND,
            "CUSTOMER_NOT_FOUND",
            f"No customer {account!r} is visible to this client.",
            metadata={"customer_account": account},
        )
    return found


def get_customer_prices(
    db: Database,
    principal: Principal,
    account: str,
    items: Sequence[tuple[str, int]],
    at: datetime | None = None,
) -> CustomerPrices:
    if not items or len(items) > MAX_ITEMS:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "ITEMS_INVALID",
            f"Ask for 1 to {MAX_ITEMS} items.",
            field_violations=[FieldViolation("items", f"{len(items)} items")],
        )
    bad = [
        FieldViolation(f"items[{i}].quantity", "at least 1")
        for i, (_, q) in enumerate(items)
        if q < 1
    ]
    if bad:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "ITEMS_INVALID",
            "Quantities must be at least 1.",
            field_violations=bad,
        )
    at = at or datetime.now(UTC)
    with db.reader() as conn:
        customer = _customer(conn, principal, account)
        skus = catalog.resolve_any_codes(conn, (code for code, _ in items))
        prices = prices_in(conn, customer, [(skus.get(c, ""), q) for c, q in items], at)
    answers = [
        PricedItem(code, skus.get(code, ""), quantity, price)
        for (code, quantity), price in zip(items, prices, strict=True)
    ]
    return CustomerPrices(account, customer.currency, answers)


def prices_in(
    conn: Connection,
    customer: pricing.PricingCustomer,
    items: Sequence[tuple[str, int]],
    at: datetime,
) -> list[Price | None]:
    """The price of each (canonical SKU, quantity) for the customer at `at`, by the precedence
    of domain/pricing.py; None for an unknown SKU ("") or one no rule prices."""
    known = {sku for sku, _ in items if sku}
    contracts = pricing.contract_prices(conn, customer.account, known)
    entries = (
        pricing.price_list_entries(conn, customer.price_list, known) if customer.price_list else {}
    )
    list_prices = pricing.list_prices(conn, known)
    prices: list[Price | None] = []
    for sku, quantity in items:
        if not sku:
            prices.append(None)
            continue
        list_price, list_currency = list_prices.get(sku, (None, ""))
        facts = PricingFacts(
            customer_currency=customer.currency,
            contract_prices=contracts.get(sku, []),
            price_list=customer.price_list,
            price_list_currency=customer.price_list_currency,
            price_list_entries=entries.get(sku, []),
            list_price=list_price,
            list_currency=list_currency,
        )
        prices.append(resolve_price(quantity, at, facts))
    return prices


@dataclass(frozen=True)
class CreditPage:
    notes: list[CreditNoteSpec]
    balances: dict[str, Decimal]
    next_page_token: str


def list_credit_notes(
    db: Database, principal: Principal, account: str, *, page_size: int = 0, page_token: str = ""
) -> CreditPage:
    size = paging.page_size(page_size, default=100, maximum=1000)
    now = datetime.now(UTC)
    with db.reader() as conn:
        _customer(conn, principal, account)
        after = _decode(page_token) if page_token else ""
        notes = pricing.open_credit_notes(conn, account, now, after_id=after, limit=size + 1)
        balances = pricing.credit_balances(conn, account, now)
    token = (
        base64.urlsafe_b64encode(notes[size - 1].id.encode()).decode() if len(notes) > size else ""
    )
    return CreditPage(notes[:size], balances, token)


def _decode(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "PAGE_TOKEN_INVALID",
            "page_token is invalid.",
            field_violations=[FieldViolation("page_token", "not issued here")],
        ) from None
