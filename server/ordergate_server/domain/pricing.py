"""Which price a customer pays: contract price, then price list break, then list price."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .catalog import ContractPriceSpec, PriceEntry


class PriceSource(enum.Enum):
    CONTRACT = "CONTRACT"
    PRICE_LIST = "PRICE_LIST"
    LIST_PRICE = "LIST_PRICE"


@dataclass(frozen=True)
class Price:
    unit_price: Decimal
    currency: str
    source: PriceSource
    rule: str


@dataclass(frozen=True)
class PricingFacts:
    """What is known about one SKU for one customer, looked up beforehand."""

    customer_currency: str
    contract_prices: Sequence[ContractPriceSpec] = ()
    price_list: str = ""
    price_list_currency: str = ""
    price_list_entries: Sequence[PriceEntry] = ()
    list_price: Decimal | None = None
    list_currency: str = ""


def resolve_price(quantity: int, at: datetime, facts: PricingFacts) -> Price | None:
    """The price that applies, or None when no rule gives one."""
    contracts = [c for c in facts.contract_prices if c.applies(at)]
    if contracts:
        # The most recently started agreement wins where several overlap.
        chosen = max(contracts, key=lambda c: c.valid_from)
        return Price(
            chosen.unit_price, facts.customer_currency, PriceSource.CONTRACT, "contract price"
        )
    breaks = [e for e in facts.price_list_entries if e.applies(at) and e.min_quantity <= quantity]
    if breaks:
        # The largest break reached; among equal breaks, the lower price.
        best = max(breaks, key=lambda e: (e.min_quantity, -e.unit_price))
        return Price(
            best.unit_price,
            facts.price_list_currency,
            PriceSource.PRICE_LIST,
            f"price list {facts.price_list}, from {best.min_quantity} pieces",
        )
    if facts.list_price is not None:
        return Price(facts.list_price, facts.list_currency, PriceSource.LIST_PRICE, "list price")
    return None
