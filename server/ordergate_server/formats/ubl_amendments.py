"""UBL 2.1 OrderCancellation and OrderChange: a buyer cancelling or changing an order it sent.

Both name the order by its OrderReference (the buyer's order number) and the buyer party, the
same (buyer, order number) that identifies the order. An OrderChange lists order lines with a
LineStatusCode (UNCL 1229 as PEPPOL Advanced Ordering uses it): 1 a line added, 2 a line
deleted, 3 a line changed (its quantity is the new quantity ordered), 4 (or none) unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from ..domain.limits import shown
from ..domain.model import HoldCode, HoldReason
from .schemas import UBL_DIR
from .ubl import customer_account, find, iterfind, text_at

CANCELLATION_NAMESPACE = "urn:oasis:names:specification:ubl:schema:xsd:OrderCancellation-2"
CHANGE_NAMESPACE = "urn:oasis:names:specification:ubl:schema:xsd:OrderChange-2"
CANCELLATION_TAG = f"{{{CANCELLATION_NAMESPACE}}}OrderCancellation"
CHANGE_TAG = f"{{{CHANGE_NAMESPACE}}}OrderChange"
SCHEMAS = {
    CANCELLATION_TAG: UBL_DIR / "xsd" / "maindoc" / "UBL-OrderCancellation-2.1.xsd",
    CHANGE_TAG: UBL_DIR / "xsd" / "maindoc" / "UBL-OrderChange-2.1.xsd",
}
KINDS = {CANCELLATION_TAG: "OrderCancellation", CHANGE_TAG: "OrderChange"}

ADDED, DELETED, CHANGED, UNCHANGED = "1", "2", "3", "4"
_WHOLE = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True)
class ChangedLine:
    line_number: int
    status: str  # ADDED, DELETED, CHANGED or UNCHANGED
    code: str  # the seller's SKU, else the GTIN
    code_is_barcode: bool
    quantity: int | None  # the new quantity ordered; None when not a whole number of pieces


@dataclass(frozen=True)
class BuyerAmendment:
    """What a buyer asks of one of its orders."""

    kind: str  # "OrderCancellation" or "OrderChange"
    document_id: str  # the amendment's own cbc:ID ("" for an OrderChange without one)
    client_order_id: str  # the order it amends: OrderReference/cbc:ID
    customer_account: str
    note: str  # why (CancellationNote, Note)
    lines: tuple[ChangedLine, ...] = ()


def read_amendment(root: etree._Element, schema: etree.XMLSchema) -> BuyerAmendment | HoldReason:
    """The amendment in a schema-valid document; or the first reason it cannot be one."""
    if not schema.validate(root):
        entry = next(iter(schema.error_log))  # type: ignore[call-overload]
        return HoldReason(HoldCode.SCHEMA_INVALID, "", f"Line {entry.line}: {entry.message}")
    kind = KINDS[root.tag]
    notes = _texts_of(root, "cbc:CancellationNote") or _texts_of(root, "cbc:Note")
    lines = []
    for item in iterfind(root, "cac:OrderLine/cac:LineItem"):
        line_id = text_at(item, "cbc:ID")
        if not _WHOLE.fullmatch(line_id):
            return HoldReason(
                HoldCode.SCHEMA_INVALID,
                "",
                f"Line id {shown(line_id)}: an OrderChange names lines by their number.",
            )
        seller_sku = text_at(item, "cac:Item/cac:SellersItemIdentification/cbc:ID")
        gtin = text_at(item, "cac:Item/cac:StandardItemIdentification/cbc:ID")
        quantity = text_at(item, "cbc:Quantity")
        lines.append(
            ChangedLine(
                line_number=int(line_id),
                status=text_at(item, "cbc:LineStatusCode") or UNCHANGED,
                code=seller_sku or gtin,
                code_is_barcode=not seller_sku and bool(gtin),
                quantity=int(quantity) if _WHOLE.fullmatch(quantity) else None,
            )
        )
    reference = find(root, "cac:OrderReference")
    return BuyerAmendment(
        kind=kind,
        document_id=text_at(root, "cbc:ID"),
        client_order_id=text_at(reference, "cbc:ID") if reference is not None else "",
        customer_account=customer_account(root),
        note="; ".join(notes)[:2000],
        lines=tuple(lines),
    )


def _texts_of(root: etree._Element, path: str) -> list[str]:
    return [text for e in iterfind(root, path) if (text := (e.text or "").strip())]
