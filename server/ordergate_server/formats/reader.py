"""From raw bytes to an OrderDraft: safe parse -> detect the format -> XSD -> mapping."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from lxml import etree

from ..domain.limits import CODE_CHARS, MAX_HOLD_REASONS, capped, shown, unstorable_reasons
from ..domain.model import HoldCode, HoldReason, OrderDraft
from . import native, ubl, ubl_amendments
from .safe_xml import DocumentLimits, XmlRejected, parse_untrusted
from .schemas import compiled
from .sniff import unsupported_format
from .ubl_amendments import BuyerAmendment

__all__ = [
    "BuyerAmendment",
    "DocumentLimits",
    "UnreadableOrder",
    "document_format",
    "read_document",
    "read_order",
]

NATIVE_FORMAT = "ordergate-order-v1"
UBL_FORMAT = "ubl-2.1-order"
UNKNOWN_FORMAT = "unknown"


@dataclass(frozen=True)
class UnreadableOrder:
    """A submission that could not be read as an order; stored ON_HOLD as a problem submission.

    Its order id and buyer are kept when they could be read (a schema-invalid document): with
    both, a corrected resubmission by the same buyer replaces it. Without a buyer it is never
    replaced, and replaces nothing (malformed XML)."""

    reasons: tuple[HoldReason, ...]
    client_order_id: str = ""
    customer_account: str = ""


_NAMESPACE_IN_MESSAGE = re.compile(r"\{[^}]*\}")


def read_order(
    payload: bytes, limits: DocumentLimits | None = None
) -> OrderDraft | UnreadableOrder:
    """An order document; anything else (a buyer's amendment too) as UnreadableOrder."""
    document = read_document(payload, limits)
    if isinstance(document, BuyerAmendment):
        return UnreadableOrder(
            (
                HoldReason(
                    HoldCode.SCHEMA_INVALID,
                    "",
                    f"A UBL {document.kind} amends an order; it is not one itself.",
                ),
            )
        )
    return document


def read_document(
    payload: bytes, limits: DocumentLimits | None = None
) -> OrderDraft | UnreadableOrder | BuyerAmendment:
    """An order, a buyer's amendment of one (UBL OrderCancellation, OrderChange), or why the
    payload is neither."""
    named = unsupported_format(payload)
    if named:  # before parsing: a cXML DOCTYPE or an EDIFACT interchange would not parse
        return UnreadableOrder(
            (
                HoldReason(
                    HoldCode.FORMAT_UNSUPPORTED,
                    "",
                    f"This is a {named} document, which Ordergate does not read: send an "
                    f"Order in namespace {native.NAMESPACE} (native) or {ubl.NAMESPACE} "
                    "(UBL 2.1 / PEPPOL).",
                ),
            )
        )
    try:
        root = parse_untrusted(payload, limits or DocumentLimits())
    except XmlRejected as rejected:  # the parser's message may quote the document: capped
        return UnreadableOrder(tuple(capped([rejected.reason])))
    if root.tag in ubl_amendments.SCHEMAS:
        amendment = ubl_amendments.read_amendment(root, compiled(ubl_amendments.SCHEMAS[root.tag]))
        if isinstance(amendment, HoldReason):
            return UnreadableOrder(tuple(capped([amendment])))
        return amendment

    # The format is told by the root element and its namespace, never by a guess at content.
    if root.tag == native.ROOT_TAG:
        schema_path, to_draft = native.SCHEMA, native.to_draft
        order_id_of, customer_of = native.order_id_of, native.customer_of
    elif root.tag == ubl.ROOT_TAG:
        schema_path, to_draft = ubl.SCHEMA, ubl.to_draft
        order_id_of, customer_of = ubl.order_id_of, ubl.customer_of
    else:
        return UnreadableOrder(
            (
                HoldReason(
                    HoldCode.SCHEMA_INVALID,
                    "",
                    f"Unknown document type {shown(root.tag, 120)}: expected an Order in namespace "
                    f"{native.NAMESPACE} (native) or {ubl.NAMESPACE} (UBL 2.1).",
                ),
            )
        )
    schema = compiled(schema_path)
    if not schema.validate(root):
        # Only the reasons kept are made (each looks its element up): a document with 80,000
        # disallowed attributes took 2 s of CPU when all were.
        entries = _entries(schema.error_log)
        reasons = [_schema_reason(root, entry) for entry in entries[: MAX_HOLD_REASONS + 1]]
        reasons += [_UNLISTED] * (len(entries) - len(reasons))  # counted by `capped`
        return UnreadableOrder(
            tuple(capped(reasons)),
            client_order_id=order_id_of(root),
            customer_account=customer_of(root),
        )
    draft = to_draft(root)
    unstorable = unstorable_reasons(draft)
    if unstorable:
        return UnreadableOrder(
            tuple(capped(unstorable)),
            client_order_id=_storable(draft.client_order_id),
            customer_account=_storable(draft.customer_account),
        )
    return draft


def _storable(code: str) -> str:
    """An id or code as kept with a problem submission: "" when it is too long to keep."""
    return code if len(code) <= CODE_CHARS else ""


def document_format(payload: bytes, limits: DocumentLimits | None = None) -> str:
    """What a stored document is, by its root element (parsed as safely as at intake):
    NATIVE_FORMAT, UBL_FORMAT, or UNKNOWN_FORMAT for anything else or unreadable."""
    try:
        root = parse_untrusted(payload, limits or DocumentLimits())
    except XmlRejected:
        return UNKNOWN_FORMAT
    return {native.ROOT_TAG: NATIVE_FORMAT, ubl.ROOT_TAG: UBL_FORMAT}.get(root.tag, UNKNOWN_FORMAT)


# Stands in for the schema errors past those kept, so that `capped` counts them all.
_UNLISTED = HoldReason(HoldCode.SCHEMA_INVALID, "", "")


def _entries(log: etree._ErrorLog) -> list[etree._LogEntry]:
    return list(cast(Iterable[etree._LogEntry], log))


def _schema_reason(root: etree._Element, entry: etree._LogEntry) -> HoldReason:
    return HoldReason(
        HoldCode.SCHEMA_INVALID,
        _readable_path(root, entry.path),
        f"Line {entry.line}: {_NAMESPACE_IN_MESSAGE.sub('', entry.message)}",
    )


def _readable_path(root: etree._Element, xpath: str | None) -> str:
    """Turn libxml2's '/*/*[2]/*[1]' into 'Order/Lines/Line[2]/LineNumber' for people."""
    if not xpath:
        return ""
    try:
        found = cast(list[object], root.getroottree().xpath(xpath))
    except etree.XPathError:
        return xpath
    if not found or not isinstance(found[0], etree._Element):
        return xpath
    parts = []
    element: etree._Element | None = found[0]
    while element is not None:
        name = etree.QName(element).localname
        parent = element.getparent()
        if parent is not None:
            siblings = [e for e in parent if e.tag == element.tag]
            if len(siblings) > 1:
                name += f"[{siblings.index(element) + 1}]"
        parts.append(name)
        element = parent
    return "/".join(reversed(parts))
