"""Mandatory-field rules: pure functions, no server or database."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from ordergate_server.domain.model import (
    Address,
    Customer,
    Delivery,
    LineDraft,
    OrderDraft,
    Product,
    whole_positive_quantity,
)
from ordergate_server.domain.rules import CatalogFacts, check_order

ADDRESS = Address("Goods In", ("Lindenstraße 12",), "Hamburg", "20095", "", "DE")
DRAFT = OrderDraft(
    client_order_id="W-1",
    order_time=None,
    customer_account="C-1",
    channel="web",
    currency="EUR",
    delivery=Delivery(ADDRESS, phone="+49 40 1234567"),
    lines=(LineDraft(1, "SKU-1", False, "2"),),
)
FACTS = CatalogFacts({("SKU-1", False): Product("SKU-1")}, Customer("C-1", "EUR"))


def found(draft: OrderDraft, facts: CatalogFacts = FACTS) -> list[tuple[str, str]]:
    return [(r.code.value, r.field) for r in check_order(draft, facts)]


def test_a_complete_order_breaks_no_rule() -> None:
    assert found(DRAFT) == []


def test_missing_order_id_customer_and_currency() -> None:
    draft = replace(DRAFT, client_order_id="", customer_account="", currency="")
    assert found(draft, replace(FACTS, customer=None)) == [
        ("ORDER_ID_MISSING", "order_id"),
        ("CUSTOMER_MISSING", "customer_account"),
        ("CURRENCY_MISSING", "currency"),
    ]


def test_unknown_customer_and_currency_mismatch() -> None:
    assert found(DRAFT, replace(FACTS, customer=None)) == [("CUSTOMER_UNKNOWN", "customer_account")]
    assert found(replace(DRAFT, currency="USD")) == [("CURRENCY_MISMATCH", "currency")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("12", 12),
        ("3.0", 3),
        (" 4 ", 4),
        ("0", None),
        ("-2", None),
        ("1.5", None),
        ("", None),
        ("abc", None),
        ("NaN", None),
        ("Infinity", None),
        ("1e3", 1000),
        ("007", 7),
        ("000", None),
        ("\u0663", 3),  # ARABIC-INDIC DIGIT THREE: read as before, by Decimal
        ("\u00b2", None),  # SUPERSCRIPT TWO: isdigit() says yes, int() says no
        ("2147483647", 2147483647),  # the most an INTEGER column holds
        ("2147483648", None),
        ("2147483647.0", 2147483647),
        ("9" * 40, None),
    ],
)
def test_quantity_must_be_a_positive_whole_number(text: str, expected: int | None) -> None:
    assert whole_positive_quantity(text) == expected


def test_line_rules_report_every_line_with_its_path() -> None:
    lines = (
        LineDraft(1, "SKU-1", False, "0"),
        LineDraft(2, "", False, "1"),
        LineDraft(2, "999", True, "1"),
    )
    assert found(replace(DRAFT, lines=lines)) == [
        ("QUANTITY_INVALID", "lines[0].quantity"),
        ("LINE_NUMBER_DUPLICATE", "lines[1].line_number"),
        ("SKU_MISSING", "lines[1].sku"),
        ("LINE_NUMBER_DUPLICATE", "lines[2].line_number"),
        ("SKU_UNKNOWN", "lines[2].barcode"),
    ]


@pytest.mark.parametrize("missing", ["street_lines", "postal_code", "city", "country_code"])
def test_each_missing_address_part_is_named(missing: str) -> None:
    empty: dict[str, Any] = {missing: () if missing == "street_lines" else "  "}
    draft = replace(DRAFT, delivery=replace(DRAFT.delivery, address=replace(ADDRESS, **empty)))
    assert found(draft) == [("ADDRESS_INCOMPLETE", f"delivery.address.{missing}")]


@pytest.mark.parametrize("country", ["XX", "de", "DEU", "UK"])
def test_country_must_be_iso_alpha2(country: str) -> None:
    draft = replace(
        DRAFT, delivery=replace(DRAFT.delivery, address=replace(ADDRESS, country_code=country))
    )
    assert found(draft) == [("COUNTRY_INVALID", "delivery.address.country_code")]


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+49 40 1234567", []),
        ("040-123 4567", []),
        ("1234567", []),
        ("+123456789012345", []),
        ("", [("PHONE_MISSING", "delivery.phone")]),
        ("123456", [("PHONE_INVALID", "delivery.phone")]),
        ("+1234567890123456", [("PHONE_INVALID", "delivery.phone")]),
        ("+49 (40) 1234567", [("PHONE_INVALID", "delivery.phone")]),
        ("call me", [("PHONE_INVALID", "delivery.phone")]),
        ("12++34567", [("PHONE_INVALID", "delivery.phone")]),
    ],
)
def test_phone_plausibility(phone: str, expected: list[tuple[str, str]]) -> None:
    assert found(replace(DRAFT, delivery=replace(DRAFT.delivery, phone=phone))) == expected


def test_special_handling_required_by_product_or_customer() -> None:
    fragile = CatalogFacts(
        {("SKU-1", False): Product("SKU-1", requires_special_handling=True)}, FACTS.customer
    )
    assert found(DRAFT, fragile) == [("SPECIAL_HANDLING_REQUIRED", "delivery.special_handling")]
    picky = replace(FACTS, customer=Customer("C-1", "EUR", requires_special_handling=True))
    assert found(DRAFT, picky) == [("SPECIAL_HANDLING_REQUIRED", "delivery.special_handling")]
    handled = replace(DRAFT, delivery=replace(DRAFT.delivery, special_handling="Fragile"))
    assert found(handled, fragile) == []
    assert found(handled, picky) == []
