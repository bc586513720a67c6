"""The native Ordergate order format (urn:ordergate:order:v1): schema check and mapping."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from lxml import etree

from ..domain.model import Address, Delivery, LineDraft, OrderDraft
from .schemas import NATIVE_ORDER_XSD

NAMESPACE = "urn:ordergate:order:v1"
ROOT_TAG = f"{{{NAMESPACE}}}Order"
SCHEMA = NATIVE_ORDER_XSD
_NS = {"o": NAMESPACE}


def _text(element: etree._Element, path: str) -> str:
    found = element.find(path, _NS)
    return (found.text or "").strip() if found is not None else ""


def _timestamp(text: str) -> datetime | None:
    """xs:dateTime or xs:date as an aware datetime; a value without a zone is taken as UTC."""
    if not text:
        return None
    try:
        if "T" in text:
            value = datetime.fromisoformat(text)
        else:  # xs:date, possibly with a zone suffix that Python's date parser does not take
            value = datetime.combine(date.fromisoformat(text[:10]), datetime.min.time())
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


def order_id_of(root: etree._Element) -> str:
    """The order id of a native document, read even when the document fails the schema, so a
    corrected resubmission finds the held problem submission it replaces."""
    if root.tag != ROOT_TAG:
        return ""
    value = _text(root, "o:OrderId")
    return value if 0 < len(value) <= 64 and value.isprintable() else ""


def customer_of(root: etree._Element) -> str:
    """The customer account of a native document, read even when it fails the schema (with
    the order id, it names the order a corrected resubmission replaces)."""
    if root.tag != ROOT_TAG:
        return ""
    value = _text(root, "o:CustomerAccount")
    return value if 0 < len(value) <= 64 and value.isprintable() else ""


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


# Tags in Clark notation: matching a child's tag against these is a string comparison, where
# find("o:Name", namespaces) parses its path again on every call (most of the mapping's time).
_LINES, _LINE, _DELIVERY, _ADDRESS, _CONTACT, _WINDOW, _STREET = map(
    _q, ("Lines", "Line", "Delivery", "Address", "Contact", "Window", "Street")
)

(
    _ORDER_ID,
    _ORDER_DATE,
    _CUSTOMER_ACCOUNT,
    _CHANNEL,
    _CURRENCY,
    _NOTES,
    _NAME,
    _CITY,
    _POSTAL_CODE,
    _REGION,
    _COUNTRY,
    _PHONE,
    _EMAIL,
    _EARLIEST,
    _LATEST,
    _SPECIAL_HANDLING,
    _LINE_NUMBER,
    _SKU,
    _BARCODE,
    _QUANTITY,
    _UNIT_PRICE,
) = map(
    _q,
    (
        "OrderId",
        "OrderDate",
        "CustomerAccount",
        "Channel",
        "Currency",
        "Notes",
        "Name",
        "City",
        "PostalCode",
        "Region",
        "Country",
        "Phone",
        "Email",
        "Earliest",
        "Latest",
        "SpecialHandling",
        "LineNumber",
        "Sku",
        "Barcode",
        "Quantity",
        "UnitPrice",
    ),
)


def _children(element: etree._Element | None) -> dict[str, str]:
    """The stripped text of each child element by tag; the first of a repeated tag wins (as
    find() does). Comments and processing instructions are not elements and are skipped."""
    texts: dict[str, str] = {}
    if element is not None:
        for child in element:
            tag = child.tag
            if isinstance(tag, str) and tag not in texts:
                texts[tag] = (child.text or "").strip()
    return texts


def _child(element: etree._Element | None, tag: str) -> etree._Element | None:
    if element is None:
        return None
    for child in element:
        if child.tag == tag:
            return child
    return None


def to_draft(root: etree._Element) -> OrderDraft:
    """Map a schema-valid native order to the domain's OrderDraft (no judgement here)."""
    order = _children(root)
    delivery_element = _child(root, _DELIVERY)
    address_element = _child(delivery_element, _ADDRESS)
    assert address_element is not None  # guaranteed by the schema
    delivery = _children(delivery_element)
    address = _children(address_element)
    contact = _children(_child(delivery_element, _CONTACT))
    window = _children(_child(delivery_element, _WINDOW))
    lines = []
    lines_element = _child(root, _LINES)
    for line_element in lines_element if lines_element is not None else ():
        if line_element.tag != _LINE:
            continue
        line = _children(line_element)
        barcode = line.get(_BARCODE, "")
        lines.append(
            LineDraft(
                line_number=int(line.get(_LINE_NUMBER, "")),
                code=barcode or line.get(_SKU, ""),
                code_is_barcode=bool(barcode),
                quantity_text=line.get(_QUANTITY, ""),
                unit_price=_decimal(line.get(_UNIT_PRICE, "")),
            )
        )
    return OrderDraft(
        client_order_id=order.get(_ORDER_ID, ""),
        order_time=_timestamp(order.get(_ORDER_DATE, "")),
        customer_account=order.get(_CUSTOMER_ACCOUNT, ""),
        channel=order.get(_CHANNEL, ""),
        currency=order.get(_CURRENCY, ""),
        delivery=Delivery(
            address=Address(
                name=address.get(_NAME, ""),
                street_lines=tuple(
                    (s.text or "").strip() for s in address_element if s.tag == _STREET
                ),
                city=address.get(_CITY, ""),
                postal_code=address.get(_POSTAL_CODE, ""),
                region=address.get(_REGION, ""),
                country_code=address.get(_COUNTRY, ""),
            ),
            phone=contact.get(_PHONE, ""),
            email=contact.get(_EMAIL, ""),
            window_start=_timestamp(window.get(_EARLIEST, "")),
            window_end=_timestamp(window.get(_LATEST, "")),
            special_handling=delivery.get(_SPECIAL_HANDLING, ""),
        ),
        lines=tuple(lines),
        notes=order.get(_NOTES, ""),
    )
