"""Batch files: several orders in one `<Orders xmlns="urn:ordergate:order:v1">` wrapper.

Only the file drop reads batches (a gRPC caller sends one order per SubmitOrder, or streams them
with SubmitOrders). Each order in a batch is cut out as a document of its own and goes through
`read_order` like any other, so a batch adds no second way of reading an order.
"""

from __future__ import annotations

from lxml import etree

from .native import NAMESPACE
from .safe_xml import DocumentLimits, XmlRejected, parse_untrusted

BATCH_TAG = f"{{{NAMESPACE}}}Orders"
# A batch may be this many times larger (in elements) than the single-order limit allows.
MAX_ORDERS_PER_BATCH = 1000


def split_batch(payload: bytes, limits: DocumentLimits) -> list[bytes] | None:
    """The orders of a batch file, each as a standalone UTF-8 document; None if `payload` is
    not a readable batch (then it is read as one order, which gives any error its usual
    reason)."""
    batch_limits = DocumentLimits(
        max_depth=limits.max_depth + 1, max_elements=limits.max_elements * MAX_ORDERS_PER_BATCH
    )
    try:
        root = parse_untrusted(payload, batch_limits)
    except XmlRejected:
        return None
    if root.tag != BATCH_TAG:
        return None
    # Each child keeps the namespace declarations it needs when serialized on its own.
    return [
        etree.tostring(child, xml_declaration=True, encoding="UTF-8")
        for child in root
        if isinstance(child.tag, str)
    ]
