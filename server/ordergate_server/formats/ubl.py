"""OASIS UBL 2.1 Order documents (and the PEPPOL BIS Order 3 profile of them): mapping to the
domain's OrderDraft, and the PEPPOL rules that matter for acceptance.

The mapping is described field by field in docs/ubl.md. Like the native mapping it judges
nothing the mandatory-field rules judge (a missing SKU, a bad phone); what it adds are the rules
of the standard itself, returned as `document_reasons` with the PEPPOL rule id:

- PEPPOL-T01-R001  each line id unique in the order            -> LINE_NUMBER_DUPLICATE
- PEPPOL-T01-R003  every amount in the document currency       -> CURRENCY_INCONSISTENT
- PEPPOL-T01-R004  no negative quantity                         -> QUANTITY_INVALID
- PEPPOL-T01-R008  stated line total = sum of line amounts      -> TOTAL_MISMATCH
and two of Ordergate's own for what a warehouse cannot ship as ordered: a quantity in a unit
other than pieces (UNIT_UNSUPPORTED) and lines that ask for different delivery addresses
(DELIVERY_SPLIT).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation

from lxml import etree

from ..domain.limits import shown
from ..domain.model import Address, Delivery, HoldCode, HoldReason, LineDraft, OrderDraft
from .schemas import UBL_ORDER_XSD

NAMESPACE = "urn:oasis:names:specification:ubl:schema:xsd:Order-2"
ROOT_TAG = f"{{{NAMESPACE}}}Order"
SCHEMA = UBL_ORDER_XSD
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
_NS = {"cac": CAC, "cbc": CBC}
PEPPOL_ORDER_CUSTOMIZATION = "urn:fdc:peppol.eu:poacc:trns:order:3"

# UN/ECE Recommendation 20 codes that count single pieces: C62 "one", H87 "piece", EA "each",
# NAR "number of articles". A quantity without a unit code is taken as pieces too.
PIECE_UNITS = frozenset({"C62", "H87", "EA", "NAR"})
# A line id that is a line number: ASCII digits that fit an INTEGER column. Any other line id
# ("A1", "²", twenty digits) numbers the line by its position instead.
_LINE_NUMBER = re.compile(r"[0-9]{1,9}")


@functools.lru_cache(maxsize=256)
def _clark(path: str) -> str:
    """A "cac:Name/cbc:Name" path in Clark notation ({namespace}Name). lxml caches a path it
    has parsed, but keyed with the namespace map, which it sorts into the key on every call;
    a Clark path is its own key (mapping an order: 356 -> 322 us, bench/ubl_orders.py)."""
    for prefix, namespace in _NS.items():
        path = path.replace(f"{prefix}:", f"{{{namespace}}}")
    return path


def find(element: etree._Element, path: str) -> etree._Element | None:
    return element.find(_clark(path))


def iterfind(element: etree._Element, path: str) -> Iterator[etree._Element]:
    return element.iterfind(_clark(path))


def text_at(element: etree._Element | None, path: str) -> str:
    if element is None:
        return ""
    found = find(element, path)
    return (found.text or "").strip() if found is not None else ""


def texts_at(element: etree._Element, path: str) -> list[str]:
    return [t for e in iterfind(element, path) if (t := (e.text or "").strip())]


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text) if text else None
    except InvalidOperation:
        return None
    return value if value is not None and value.is_finite() else None


def order_id_of(root: etree._Element) -> str:
    """The order id (cbc:ID) of a UBL order, read even when the document fails the schema."""
    if root.tag != ROOT_TAG:
        return ""
    value = text_at(root, "cbc:ID")
    return value if 0 < len(value) <= 64 and value.isprintable() else ""


def customer_of(root: etree._Element) -> str:
    """The buyer (customer account) of a UBL order, read even when it fails the schema."""
    if root.tag != ROOT_TAG:
        return ""
    value = customer_account(root)
    return value if 0 < len(value) <= 64 and value.isprintable() else ""


def _timestamp(day: str, clock: str, *, end_of_day: bool = False) -> datetime | None:
    """A UBL date (+ time) as an aware datetime; a time without a zone is UTC. A date alone is
    its first moment, or its last for the end of a period."""
    if not day:
        return None
    try:
        moment = datetime.combine(
            date.fromisoformat(day[:10]),
            time.fromisoformat(clock.replace("Z", "+00:00"))
            if clock
            else (time(23, 59, 59) if end_of_day else time()),
        )
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _address(address: etree._Element | None, name: str) -> Address:
    if address is None:
        return Address(name=name)
    street = text_at(address, "cbc:StreetName")
    number = text_at(address, "cbc:BuildingNumber")
    if street and number:
        street = f"{street} {number}"
    lines = [
        street,
        text_at(address, "cbc:AdditionalStreetName"),
        *texts_at(address, "cac:AddressLine/cbc:Line"),
    ]
    return Address(
        name=name,
        street_lines=tuple(line for line in lines if line)[:3],
        city=text_at(address, "cbc:CityName"),
        postal_code=text_at(address, "cbc:PostalZone"),
        region=text_at(address, "cbc:CountrySubentity"),
        country_code=text_at(address, "cac:Country/cbc:IdentificationCode"),
    )


def customer_account(root: etree._Element) -> str:
    """The buyer as our customer: the account we (the supplier) gave them, else the buyer
    party's first identifier (often a GLN), else its electronic address."""
    buyer = find(root, "cac:BuyerCustomerParty")
    if buyer is None:
        return ""
    return (
        text_at(buyer, "cbc:SupplierAssignedAccountID")
        or next(iter(texts_at(buyer, "cac:Party/cac:PartyIdentification/cbc:ID")), "")
        or text_at(buyer, "cac:Party/cbc:EndpointID")
    )


def to_draft(root: etree._Element) -> OrderDraft:
    """Map a schema-valid UBL 2.1 Order to an OrderDraft, with the PEPPOL rules it breaks."""
    currency = text_at(root, "cbc:DocumentCurrencyCode")
    reasons: list[HoldReason] = []
    items = list(iterfind(root, "cac:OrderLine/cac:LineItem"))

    lines = []
    for index, item in enumerate(items):
        line_id = text_at(item, "cbc:ID")
        seller_sku = text_at(item, "cac:Item/cac:SellersItemIdentification/cbc:ID")
        gtin = text_at(item, "cac:Item/cac:StandardItemIdentification/cbc:ID")
        quantity = find(item, "cbc:Quantity")
        quantity_text = (quantity.text or "").strip() if quantity is not None else ""
        unit = quantity.get("unitCode", "") if quantity is not None else ""
        path = f"lines[{index}]"
        if unit and unit not in PIECE_UNITS:
            reasons.append(
                HoldReason(
                    HoldCode.UNIT_UNSUPPORTED,
                    f"{path}.quantity",
                    f"Line {shown(line_id)}: unit {shown(unit)} is not a count of pieces; order "
                    f"in pieces (unitCode {', '.join(sorted(PIECE_UNITS))}).",
                )
            )
        amount = _decimal(quantity_text)
        if amount is not None and amount < 0:
            reasons.append(
                HoldReason(
                    HoldCode.QUANTITY_INVALID,
                    f"{path}.quantity",
                    f"Line {shown(line_id)}: the ordered quantity {shown(quantity_text)} is "
                    "negative.",
                    rule="PEPPOL-T01-R004",
                )
            )
        lines.append(
            LineDraft(
                line_number=int(line_id) if _LINE_NUMBER.fullmatch(line_id) else index + 1,
                code=seller_sku or gtin,
                code_is_barcode=not seller_sku and bool(gtin),
                quantity_text=quantity_text,
                unit_price=_unit_price(item),
            )
        )
    reasons += _duplicate_line_ids(items)
    reasons += _currency_reasons(root, currency)
    reasons += _total_reasons(root, items)

    delivery, delivery_reasons = _delivery(root, items)
    reasons += delivery_reasons
    notes = texts_at(root, "cbc:Note")
    line_notes = [
        f"Line {text_at(line, 'cac:LineItem/cbc:ID')}: {note}"
        for line in iterfind(root, "cac:OrderLine")
        for note in texts_at(line, "cbc:Note")
    ]
    handling = [
        *notes,
        *texts_at(root, "cac:DeliveryTerms/cbc:SpecialTerms"),
        *texts_at(root, "cac:Delivery/cac:Shipment/cbc:HandlingInstructions"),
        *texts_at(
            root, "cac:OrderLine/cac:LineItem/cac:Delivery/cac:Shipment/cbc:HandlingInstructions"
        ),
        *line_notes,
    ]
    customization = text_at(root, "cbc:CustomizationID")
    return OrderDraft(
        client_order_id=text_at(root, "cbc:ID"),
        order_time=_timestamp(text_at(root, "cbc:IssueDate"), text_at(root, "cbc:IssueTime")),
        customer_account=customer_account(root),
        channel="peppol" if customization.startswith(PEPPOL_ORDER_CUSTOMIZATION) else "ubl",
        currency=currency,
        delivery=Delivery(
            address=delivery.address,
            phone=delivery.phone,
            email=delivery.email,
            window_start=delivery.window_start,
            window_end=delivery.window_end,
            special_handling="; ".join(dict.fromkeys(handling)),
        ),
        lines=tuple(lines),
        notes="\n".join([*notes, *line_notes]),
        document_reasons=tuple(reasons),
    )


def _unit_price(item: etree._Element) -> Decimal | None:
    price = _decimal(text_at(item, "cac:Price/cbc:PriceAmount"))
    base = _decimal(text_at(item, "cac:Price/cbc:BaseQuantity"))
    if price is None:
        return None
    if not base:
        return price
    try:
        return price / base
    except ArithmeticError:  # an exponent past Decimal's range: kept undivided, shown as is
        return price


def _delivery(
    root: etree._Element, items: list[etree._Element]
) -> tuple[Delivery, list[HoldReason]]:
    """Where the order goes: the header's cac:Delivery, else the lines' own (all the same)."""
    header = find(root, "cac:Delivery")
    line_deliveries = [d for item in items if (d := find(item, "cac:Delivery")) is not None]
    reasons = []
    chosen = header
    if header is None or find(header, "cac:DeliveryLocation/cac:Address") is None:
        with_address = [
            d for d in line_deliveries if find(d, "cac:DeliveryLocation/cac:Address") is not None
        ]
        if with_address:
            chosen = with_address[0]
            first = _address(find(chosen, "cac:DeliveryLocation/cac:Address"), "")
            if any(
                _address(find(d, "cac:DeliveryLocation/cac:Address"), "") != first
                for d in with_address[1:]
            ):
                reasons.append(
                    HoldReason(
                        HoldCode.DELIVERY_SPLIT,
                        "delivery.address",
                        "Lines ask for delivery to different addresses; one order ships to "
                        "one address. Send one order per address.",
                    )
                )
    buyer = find(root, "cac:BuyerCustomerParty/cac:Party")
    party = find(chosen, "cac:DeliveryParty") if chosen is not None else None
    name = text_at(party, "cac:PartyName/cbc:Name") or text_at(buyer, "cac:PartyName/cbc:Name")
    address_element = (
        find(chosen, "cac:DeliveryLocation/cac:Address") if chosen is not None else None
    )
    period = find(chosen, "cac:RequestedDeliveryPeriod") if chosen is not None else None
    return (
        Delivery(
            address=_address(address_element, name),
            phone=text_at(party, "cac:Contact/cbc:Telephone")
            or text_at(buyer, "cac:Contact/cbc:Telephone"),
            email=text_at(party, "cac:Contact/cbc:ElectronicMail")
            or text_at(buyer, "cac:Contact/cbc:ElectronicMail"),
            window_start=_timestamp(
                text_at(period, "cbc:StartDate"), text_at(period, "cbc:StartTime")
            ),
            window_end=_timestamp(
                text_at(period, "cbc:EndDate"), text_at(period, "cbc:EndTime"), end_of_day=True
            ),
        ),
        reasons,
    )


def _duplicate_line_ids(items: list[etree._Element]) -> list[HoldReason]:
    ids = [text_at(item, "cbc:ID") for item in items]
    return [
        HoldReason(
            HoldCode.LINE_NUMBER_DUPLICATE,
            f"lines[{index}].line_number",
            f"Line id {shown(line_id)} is used by more than one order line.",
            rule="PEPPOL-T01-R001",
        )
        for index, line_id in enumerate(ids)
        if ids.count(line_id) > 1
    ]


def _currency_reasons(root: etree._Element, currency: str) -> list[HoldReason]:
    """Every amount stated in the document currency (PEPPOL-T01-R003); one reason per currency."""
    others = sorted(
        {
            other
            for element in root.iter()
            if (other := element.get("currencyID")) is not None and other != currency
        }
    )
    return [
        HoldReason(
            HoldCode.CURRENCY_INCONSISTENT,
            "currency",
            f"Amounts are stated in {shown(other)} but the document currency is "
            f"{shown(currency) if currency else 'not given'}; an order is stated in one currency.",
            rule="PEPPOL-T01-R003",
        )
        for other in others
    ]


def _total_reasons(root: etree._Element, items: list[etree._Element]) -> list[HoldReason]:
    """The stated sum of line amounts equals the lines' amounts (PEPPOL-T01-R008), when given."""
    stated = _decimal(text_at(root, "cac:AnticipatedMonetaryTotal/cbc:LineExtensionAmount"))
    if stated is None:
        return []
    amounts = [_decimal(text_at(item, "cbc:LineExtensionAmount")) for item in items]
    try:
        total = sum((a for a in amounts if a is not None), Decimal(0))
        if total.quantize(_CENT) == stated.quantize(_CENT):
            return []
    except ArithmeticError:  # amounts past Decimal's precision: no sum to compare
        return [
            _total_mismatch(
                f"The stated sum of line amounts {shown(str(stated))} cannot be checked: the "
                "amounts have more digits than a sum can be formed of."
            )
        ]
    return [
        _total_mismatch(
            f"The stated sum of line amounts {shown(str(stated))} differs from the sum of the "
            f"order lines' amounts {shown(str(total))}."
        )
    ]


_CENT = Decimal("0.01")


def _total_mismatch(message: str) -> HoldReason:
    return HoldReason(HoldCode.TOTAL_MISMATCH, "total", message, rule="PEPPOL-T01-R008")
