"""Price resolution: the precedence table (contract > price list break > list price), with dates."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ordergate_server.domain.catalog import ContractPriceSpec, PriceEntry
from ordergate_server.domain.pricing import PriceSource, PricingFacts, resolve_price

JAN = datetime(2026, 1, 1, tzinfo=UTC)
JUN = datetime(2026, 6, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

CONTRACT = ContractPriceSpec("C", "S", Decimal("7.00"), JUN, DEC)  # June to November
BREAKS = (
    PriceEntry("S", 1, Decimal("10.00"), EPOCH),
    PriceEntry("S", 10, Decimal("9.00"), EPOCH),
    PriceEntry("S", 50, Decimal("8.00"), EPOCH, JUN),  # the 50+ break ended in June
    PriceEntry("S", 100, Decimal("7.50"), JUN),  # a 100+ break from June
)
ALL = PricingFacts(
    customer_currency="EUR",
    contract_prices=(CONTRACT,),
    price_list="EU",
    price_list_currency="EUR",
    price_list_entries=BREAKS,
    list_price=Decimal("12.00"),
    list_currency="USD",
)
NO_CONTRACT = PricingFacts(**{**ALL.__dict__, "contract_prices": ()})
ONLY_LIST_PRICE = PricingFacts(
    customer_currency="EUR", list_price=Decimal("12.00"), list_currency="USD"
)


@pytest.mark.parametrize(
    ("facts", "quantity", "at", "expected"),
    [
        (ALL, 1, JUN, ("7.00", "EUR", PriceSource.CONTRACT)),  # contract wins, any quantity
        (ALL, 500, JUN, ("7.00", "EUR", PriceSource.CONTRACT)),
        (ALL, 1, JAN, ("10.00", "EUR", PriceSource.PRICE_LIST)),  # contract not yet valid
        (ALL, 1, DEC, ("10.00", "EUR", PriceSource.PRICE_LIST)),  # valid_to is exclusive
        (NO_CONTRACT, 9, JAN, ("10.00", "EUR", PriceSource.PRICE_LIST)),
        (NO_CONTRACT, 10, JAN, ("9.00", "EUR", PriceSource.PRICE_LIST)),  # break reached
        (NO_CONTRACT, 60, JAN, ("8.00", "EUR", PriceSource.PRICE_LIST)),
        (NO_CONTRACT, 60, JUN, ("9.00", "EUR", PriceSource.PRICE_LIST)),  # 50+ expired
        (NO_CONTRACT, 100, JUN, ("7.50", "EUR", PriceSource.PRICE_LIST)),
        (ONLY_LIST_PRICE, 3, JAN, ("12.00", "USD", PriceSource.LIST_PRICE)),  # never converted
    ],
)
def test_precedence(
    facts: PricingFacts, quantity: int, at: datetime, expected: tuple[str, str, PriceSource]
) -> None:
    price = resolve_price(quantity, at, facts)
    assert price is not None
    assert (str(price.unit_price), price.currency, price.source) == expected


def test_the_rule_names_the_break() -> None:
    price = resolve_price(10, JAN, NO_CONTRACT)
    assert price is not None
    assert price.rule == "price list EU, from 10 pieces"


def test_no_rule_no_price() -> None:
    assert resolve_price(1, JAN, PricingFacts(customer_currency="EUR")) is None
