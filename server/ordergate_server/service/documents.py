"""The documents behind orders: the exact bytes received, for people to read and correct."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..domain.access import Principal
from ..domain.model import Channel
from ..formats import document_format
from ..storage import Database, orders, submissions
from . import pii_access
from .errors import ErrorKind, ServiceError
from .order_access import not_found

CONTENT_TYPE = "application/xml"


@dataclass(frozen=True)
class OrderDocument:
    order_id: str
    document: bytes
    content_type: str
    format: str  # formats.NATIVE_FORMAT, UBL_FORMAT or UNKNOWN_FORMAT
    channel: Channel
    received_at: datetime
    request_id: str


def get_order_document(db: Database, principal: Principal, order_id: str) -> OrderDocument:
    """The document the order's current content came from (the latest submission that created
    or replaced it), exactly as received. A website sees only its own orders' documents;
    staff reads are audited as reads of the order (personal data is in the document)."""
    with db.reader() as conn:
        own = principal.client_id if principal.sees_only_own_client else None
        order = orders.get_order(conn, client_id=own, order_id=order_id)
        if order is None:
            raise not_found(order_id)
        stored = submissions.current_document(conn, order_id)
    if stored is None:
        raise ServiceError(
            ErrorKind.NOT_FOUND,
            "DOCUMENT_NOT_FOUND",
            f"Order {order_id}'s document is no longer kept.",
            metadata={"order": order_id},
        )
    pii_access.record_staff_reads(db, principal, [order], "GetOrderDocument")
    return OrderDocument(
        order_id=order_id,
        document=stored.payload,
        content_type=CONTENT_TYPE,
        format=document_format(stored.payload),
        channel=Channel(stored.channel),
        received_at=stored.received_at,
        request_id=stored.request_id,
    )
