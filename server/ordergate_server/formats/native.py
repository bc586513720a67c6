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


def to_draft(root: etree._Element) -> OrderDraft:
    """Map a schema-valid native order to the domain's OrderDraft (no judgement here)."""
    address = root.find("o:Delivery/o:Address", _NS)
    assert address is not None  # guaranteed by the schema
    lines = []
    for line in root.iterfind("o:Lines/o:Line", _NS):
        barcode = _text(line, "o:Barcode")
        lines.append(
            LineDraft(
                line_number=int(_text(line, "o:LineNumber")),
                code=barcode or _text(line, "o:Sku"),
                code_is_barcode=bool(barcode),
                quantity_text=_text(line, "o:Quantity"),
                unit_price=_decimal(_text(line, "o:UnitPrice")),
            )
        )
    return OrderDraft(
        client_order_id=_text(root, "o:OrderId"),
        order_time=_timestamp(_text(root, "o:OrderDate")),
        customer_account=_text(root, "o:CustomerAccount"),
        channel=_text(root, "o:Channel"),
        currency=_text(root, "o:Currency"),
        delivery=Delivery(
            address=Address(
                name=_text(address, "o:Name"),
                street_lines=tuple(
                    (s.text or "").strip() for s in address.iterfind("o:Street", _NS)
                ),
                city=_text(address, "o:City"),
                postal_code=_text(address, "o:PostalCode"),
                region=_text(address, "o:Region"),
                country_code=_text(address, "o:Country"),
            ),
            phone=_text(root, "o:Delivery/o:Contact/o:Phone"),
            email=_text(root, "o:Delivery/o:Contact/o:Email"),
            window_start=_timestamp(_text(root, "o:Delivery/o:Window/o:Earliest")),
            window_end=_timestamp(_text(root, "o:Delivery/o:Window/o:Latest")),
            special_handling=_text(root, "o:Delivery/o:SpecialHandling"),
        ),
        lines=tuple(lines),
        notes=_text(root, "o:Notes"),
    )
