"""The UBL 2.1 OrderResponse that answers a submitted order (PEPPOL BIS Order Response shape).

The response code follows UNCL 4343 as PEPPOL uses it:
- AP (accepted): the order is accepted, or has moved on from there (picking, dispatched, ...);
- AB (received, pending): the order is on hold in the exception queue and may yet be released
  or corrected; each hold reason is a Note;
- RE (rejected): the order was cancelled.
"""

from __future__ import annotations

from datetime import UTC, datetime

from lxml import etree

from ..domain.model import OrderState
from ..domain.records import OrderRecord
from .ubl import CAC, CBC

NAMESPACE = "urn:oasis:names:specification:ubl:schema:xsd:OrderResponse-2"
PEPPOL_ORDER_RESPONSE = "urn:fdc:peppol.eu:poacc:trns:order_response:3"
PEPPOL_ORDERING_PROFILE = "urn:fdc:peppol.eu:poacc:bis:ordering:3"
_NSMAP = {None: NAMESPACE, "cac": CAC, "cbc": CBC}


def response_code(state: OrderState) -> str:
    if state is OrderState.ON_HOLD:
        return "AB"
    if state is OrderState.CANCELLED:
        return "RE"
    return "AP"


def order_response(
    order: OrderRecord,
    *,
    seller_name: str,
    issued: datetime,
    amendment: tuple[str, bool, str] | None = None,
) -> bytes:
    """A UBL 2.1 OrderResponse document for `order`, as UTF-8 bytes. With `amendment` (the
    buyer's document type, whether it was carried out, why not) it answers that document: AP
    when done, RE when refused, the reason as a Note; the order's own state does not matter."""
    code = response_code(order.state)
    notes = [
        f"{reason.code.value}{f' [{reason.rule}]' if reason.rule else ''}: {reason.message}"
        for reason in (order.hold_reasons if order.state is OrderState.ON_HOLD else ())
    ]
    kind = ""
    if amendment is not None:
        kind, accepted, why = amendment
        code = "AP" if accepted else "RE"
        notes = [f"{kind} {'carried out' if accepted else 'refused'}" + (f": {why}" if why else "")]
    issued = issued.astimezone(UTC)
    root = etree.Element(f"{{{NAMESPACE}}}OrderResponse", nsmap=_NSMAP)  # type: ignore[arg-type]

    def cbc(parent: etree._Element, name: str, text: str) -> etree._Element:
        element = etree.SubElement(parent, f"{{{CBC}}}{name}")
        element.text = text
        return element

    def cac(parent: etree._Element, name: str) -> etree._Element:
        return etree.SubElement(parent, f"{{{CAC}}}{name}")

    # Element order is the schema's sequence.
    cbc(root, "CustomizationID", PEPPOL_ORDER_RESPONSE)
    cbc(root, "ProfileID", PEPPOL_ORDERING_PROFILE)
    # A response per order and code: the AB sent while held and the AP after release differ.
    suffix = f"{kind}-{code}" if kind else code
    cbc(root, "ID", f"{order.id}-{suffix}" if order.id else f"validation-{suffix}")
    if order.id:
        cbc(root, "SalesOrderID", order.id)
    cbc(root, "IssueDate", issued.date().isoformat())
    cbc(root, "IssueTime", issued.time().replace(microsecond=0).isoformat() + "Z")
    cbc(root, "OrderResponseCode", code)
    for note in notes:
        cbc(root, "Note", note)
    if len(order.currency) == 3:
        cbc(root, "DocumentCurrencyCode", order.currency)
    cbc(cac(root, "OrderReference"), "ID", order.client_order_id or "unknown")
    seller = cac(cac(root, "SellerSupplierParty"), "Party")
    cbc(cac(seller, "PartyName"), "Name", seller_name)
    buyer = cac(cac(root, "BuyerCustomerParty"), "Party")
    if order.customer_account:
        cbc(cac(buyer, "PartyIdentification"), "ID", order.customer_account)
    else:
        cbc(cac(buyer, "PartyName"), "Name", order.client)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
