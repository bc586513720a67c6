"""A manual order (a phone or e-mail order) as the form gives it, written as a native order
document: the console submits it with SubmitOrder like any other, so it meets the same schema,
rules and stock as a website's order, and the order is MANUAL, entered by the person."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

NAMESPACE = "urn:ordergate:order:v1"
MAX_LINES = 20


@dataclass
class ManualOrder:
    order_id: str
    customer_account: str
    currency: str = "EUR"
    name: str = ""
    street: str = ""
    city: str = ""
    postal_code: str = ""
    country: str = ""
    phone: str = ""
    email: str = ""
    notes: str = ""
    lines: list[tuple[str, str]] = field(default_factory=list)  # (product code, quantity)


def from_form(form: dict[str, str]) -> ManualOrder:
    lines = []
    for n in range(1, MAX_LINES + 1):
        code = form.get(f"code-{n}", "").strip()
        quantity = form.get(f"quantity-{n}", "").strip()
        if code or quantity:
            lines.append((code, quantity))
    return ManualOrder(
        order_id=form.get("order_id", "").strip(),
        customer_account=form.get("customer_account", "").strip(),
        currency=form.get("currency", "EUR").strip().upper(),
        name=form.get("name", "").strip(),
        street=form.get("street", "").strip(),
        city=form.get("city", "").strip(),
        postal_code=form.get("postal_code", "").strip(),
        country=form.get("country", "").strip().upper(),
        phone=form.get("phone", "").strip(),
        email=form.get("email", "").strip(),
        notes=form.get("notes", "").strip(),
        lines=lines,
    )


def document(order: ManualOrder, now: datetime | None = None) -> bytes:
    """The native document. Empty fields are left out, so that what is missing is held with
    the reason the rules give (a phone order without a phone number is held for it) rather
    than refused by the form."""
    now = now or datetime.now(UTC)
    root = etree.Element(f"{{{NAMESPACE}}}Order", nsmap={None: NAMESPACE})  # type: ignore[dict-item]

    def add(parent: etree._Element, tag: str, text: str = "") -> etree._Element:
        child = etree.SubElement(parent, f"{{{NAMESPACE}}}{tag}")
        if text:
            child.text = text
        return child

    add(root, "OrderId", order.order_id)
    add(root, "OrderDate", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    add(root, "CustomerAccount", order.customer_account)
    add(root, "Channel", "manual")
    add(root, "Currency", order.currency or "EUR")
    delivery = add(root, "Delivery")
    address = add(delivery, "Address")
    for tag, value in (
        ("Name", order.name),
        ("Street", order.street),
        ("City", order.city),
        ("PostalCode", order.postal_code),
        ("Country", order.country),
    ):
        if value:
            add(address, tag, value)
    if order.phone or order.email:
        contact = add(delivery, "Contact")
        if order.phone:
            add(contact, "Phone", order.phone)
        if order.email:
            add(contact, "Email", order.email)
    lines = add(root, "Lines")
    for number, (code, quantity) in enumerate(order.lines, start=1):
        line = add(lines, "Line")
        add(line, "LineNumber", str(number))
        add(line, "Sku", code)
        add(line, "Quantity", quantity)
    if order.notes:
        add(root, "Notes", order.notes)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
