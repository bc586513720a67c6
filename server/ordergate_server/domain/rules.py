"""Mandatory-field rules: every problem with an order, reported at once, each with a field path.

The rules never fix anything. A missing or ambiguous field holds the order; a person decides.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .countries import ISO_3166_ALPHA2
from .limits import capped, shown
from .model import MAX_LINE_QUANTITY, Customer, HoldCode, HoldReason, OrderDraft, Product

# 7 to 15 digits, optionally led by "+", with spaces and dashes between groups.
_PHONE_SHAPE = re.compile(r"^\+?[0-9][0-9 \-]*[0-9]$")


@dataclass(frozen=True)
class CatalogFacts:
    """What the rules need to know from the catalog about one order, looked up beforehand.

    `products` maps each line's catalog key (the code as submitted, and whether it was given as a
    barcode) to the product it resolves to; keys absent from the map are unknown.
    """

    products: Mapping[tuple[str, bool], Product]
    customer: Customer | None
    ordering_client_id: int | None = None  # the API client submitting the order
    # Old SKUs whose rename window has ended: old code -> the SKU to order instead.
    renamed: Mapping[str, str] = field(default_factory=dict)


def check_order(draft: OrderDraft, facts: CatalogFacts) -> list[HoldReason]:
    """Return every rule the order breaks (empty when it may go on to allocation), at most
    limits.MAX_HOLD_REASONS of them and then one MORE_REASONS with the total."""
    reasons: list[HoldReason] = list(draft.document_reasons)
    hold = reasons.append
    # A customer tied to another website client is, to this client, no customer at all: the
    # same reason and message as an unknown account, and nothing of it (its currency, its
    # handling needs) shows through, so tenants cannot find each other's customers.
    if facts.customer is not None and facts.customer.client_id not in (
        None,
        facts.ordering_client_id,
    ):
        facts = replace(facts, customer=None)

    if not draft.client_order_id:
        hold(HoldReason(HoldCode.ORDER_ID_MISSING, "order_id", "The order has no order id."))

    if not draft.customer_account:
        hold(
            HoldReason(HoldCode.CUSTOMER_MISSING, "customer_account", "No customer account given.")
        )
    elif facts.customer is None:
        hold(
            HoldReason(
                HoldCode.CUSTOMER_UNKNOWN,
                "customer_account",
                f"Customer account {shown(draft.customer_account)} is not in the catalog.",
            )
        )

    if not draft.currency:
        hold(HoldReason(HoldCode.CURRENCY_MISSING, "currency", "No currency given."))
    elif facts.customer is not None and draft.currency != facts.customer.currency:
        hold(
            HoldReason(
                HoldCode.CURRENCY_MISMATCH,
                "currency",
                f"Order currency {draft.currency} differs from the customer's currency "
                f"{facts.customer.currency}.",
            )
        )

    reasons.extend(_address_reasons(draft))
    reasons.extend(_phone_reasons(draft.delivery.phone))
    reasons.extend(_line_reasons(draft, facts))
    reasons.extend(_special_handling_reasons(draft, facts))
    return capped(_once_per_field(reasons))


def _once_per_field(reasons: list[HoldReason]) -> list[HoldReason]:
    """One reason per (code, field): a document rule (first, with its rule id) and the same
    finding by an Ordergate rule (a negative quantity, say) are reported once."""
    seen: set[tuple[HoldCode, str]] = set()
    unique = []
    for reason in reasons:
        if (reason.code, reason.field) not in seen:
            seen.add((reason.code, reason.field))
            unique.append(reason)
    return unique


def _address_reasons(draft: OrderDraft) -> list[HoldReason]:
    address = draft.delivery.address
    reasons = []
    required = {
        "street_lines": any(line.strip() for line in address.street_lines),
        "postal_code": bool(address.postal_code.strip()),
        "city": bool(address.city.strip()),
        "country_code": bool(address.country_code.strip()),
    }
    for name, present in required.items():
        if not present:
            reasons.append(
                HoldReason(
                    HoldCode.ADDRESS_INCOMPLETE,
                    f"delivery.address.{name}",
                    f"The delivery address has no {name.replace('_', ' ')}.",
                )
            )
    country = address.country_code.strip()
    if country and country not in ISO_3166_ALPHA2:
        reasons.append(
            HoldReason(
                HoldCode.COUNTRY_INVALID,
                "delivery.address.country_code",
                f"{shown(country)} is not an ISO 3166-1 alpha-2 country code.",
            )
        )
    return reasons


def _phone_reasons(phone: str) -> list[HoldReason]:
    phone = phone.strip()
    if not phone:
        return [
            HoldReason(HoldCode.PHONE_MISSING, "delivery.phone", "No contact phone number given.")
        ]
    digits = sum(ch.isdigit() for ch in phone)
    if not _PHONE_SHAPE.match(phone) or not 7 <= digits <= 15:
        return [
            HoldReason(
                HoldCode.PHONE_INVALID,
                "delivery.phone",
                # The number itself is not repeated: hold reasons are not encrypted at rest.
                "The contact phone is not a plausible phone number (7 to 15 digits; '+', spaces "
                "and dashes allowed).",
            )
        ]
    return []


def _line_reasons(draft: OrderDraft, facts: CatalogFacts) -> list[HoldReason]:
    reasons = []
    numbers = Counter(line.line_number for line in draft.lines)
    for index, line in enumerate(draft.lines):
        path = f"lines[{index}]"
        if numbers[line.line_number] > 1:
            reasons.append(
                HoldReason(
                    HoldCode.LINE_NUMBER_DUPLICATE,
                    f"{path}.line_number",
                    f"Line number {line.line_number} is used by more than one line.",
                )
            )
        if not line.code:
            reasons.append(
                HoldReason(
                    HoldCode.SKU_MISSING,
                    f"{path}.sku",
                    f"Line {line.line_number} names no SKU or barcode.",
                )
            )
        elif not line.code_is_barcode and line.code in facts.renamed:
            reasons.append(
                HoldReason(
                    HoldCode.SKU_RENAMED,
                    f"{path}.sku",
                    f"Line {line.line_number}: SKU {shown(line.code)} was renamed to "
                    f"{facts.renamed[line.code]!r}; the old code is no longer accepted.",
                )
            )
        elif line.catalog_key not in facts.products:
            kind = "Barcode" if line.code_is_barcode else "SKU"
            reasons.append(
                HoldReason(
                    HoldCode.SKU_UNKNOWN,
                    f"{path}.{'barcode' if line.code_is_barcode else 'sku'}",
                    f"Line {line.line_number}: {kind} {shown(line.code)} is not in the catalog.",
                )
            )
        if line.quantity == 0:
            given = shown(line.quantity_text) if line.quantity_text else "missing"
            reasons.append(
                HoldReason(
                    HoldCode.QUANTITY_INVALID,
                    f"{path}.quantity",
                    f"Line {line.line_number}: quantity {given} is not a positive whole number "
                    f"of at most {MAX_LINE_QUANTITY:,}.",
                )
            )
    return reasons


def _special_handling_reasons(draft: OrderDraft, facts: CatalogFacts) -> list[HoldReason]:
    if draft.delivery.special_handling.strip():
        return []
    needing = sorted(
        {
            product.sku
            for line in draft.lines
            if (product := facts.products.get(line.catalog_key)) is not None
            and product.requires_special_handling
        }
    )
    reasons = []
    if needing:
        reasons.append(
            HoldReason(
                HoldCode.SPECIAL_HANDLING_REQUIRED,
                "delivery.special_handling",
                f"Product(s) {', '.join(needing)} require special-handling instructions.",
            )
        )
    if facts.customer is not None and facts.customer.requires_special_handling:
        reasons.append(
            HoldReason(
                HoldCode.SPECIAL_HANDLING_REQUIRED,
                "delivery.special_handling",
                f"Customer {facts.customer.account} requires special-handling instructions.",
            )
        )
    return reasons
