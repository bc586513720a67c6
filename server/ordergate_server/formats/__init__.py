"""XML in: hardened parsing, schema validation and mapping of each accepted format to an OrderDraft.

The one entry point is `read_order(payload)`. It never raises for bad input: a document that
cannot be read as an order comes back as `UnreadableOrder` with hold reasons, so the caller can
store it as a problem submission (nothing is lost).
"""

from .reader import (
    BuyerAmendment,
    DocumentLimits,
    UnreadableOrder,
    document_format,
    read_document,
    read_order,
)

__all__ = [
    "BuyerAmendment",
    "DocumentLimits",
    "UnreadableOrder",
    "document_format",
    "read_document",
    "read_order",
]
