"""Reading orders: one by id, or a filtered, paginated list (AIP-158)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from ..domain.access import Principal
from ..domain.model import OrderState
from ..domain.records import OrderRecord
from ..storage import Database, orders
from . import paging, pii_access
from .errors import ErrorKind, FieldViolation, ServiceError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def get_order(
    db: Database, principal: Principal, *, order_id: str = "", client_order_id: str = ""
) -> OrderRecord:
    """One order. A website asking for another client's order gets NOT_FOUND, exactly as for an
    order that does not exist, so ids of other tenants cannot be probed."""
    if not order_id and not client_order_id:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "ORDER_LOOKUP_MISSING",
            "Give the order's id or client_order_id.",
            field_violations=[FieldViolation("id", "one of id or client_order_id is required")],
        )
    own_only = principal.sees_only_own_orders or bool(client_order_id)
    with db.reader() as conn:
        order = orders.get_order(
            conn,
            client_id=principal.client_id if own_only else None,
            order_id=order_id,
            client_order_id=client_order_id,
        )
    if order is None:
        raise ServiceError(
            ErrorKind.NOT_FOUND,
            "ORDER_NOT_FOUND",
            f"No order {order_id or client_order_id} is visible to this client.",
            metadata={"order": order_id or client_order_id},
        )
    pii_access.record_staff_reads(db, principal, [order], "GetOrder")
    return order


@dataclass(frozen=True)
class OrderPage:
    orders: list[OrderRecord]
    next_page_token: str


def list_orders(
    db: Database,
    principal: Principal,
    *,
    page_size: int = 0,
    page_token: str = "",
    state: OrderState | None = None,
    customer_account: str = "",
    client: str = "",
    fits: Callable[[OrderRecord], bool] | None = None,
) -> OrderPage:
    """A page of orders, oldest first; `fits` bounds the page in bytes (paging.fitting)."""
    size = paging.page_size(page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    if principal.sees_only_own_orders and client and client != principal.client_name:
        raise ServiceError(
            ErrorKind.PERMISSION_DENIED,
            "CLIENT_FILTER_FORBIDDEN",
            "A website key lists only its own orders.",
            field_violations=[FieldViolation("client", "only your own client name is allowed")],
        )
    filter_digest = hashlib.sha256(
        json.dumps([state.value if state else "", customer_account, client]).encode()
    ).hexdigest()[:16]
    after_seq = decode_page_token(page_token, filter_digest) if page_token else 0

    with db.reader() as conn:
        client_id: int | None = None
        if principal.sees_only_own_orders:
            client_id = principal.client_id
        elif client:
            client_id = orders.client_id_by_name(conn, client)
            if client_id is None:
                return OrderPage([], "")
        page = orders.list_orders(
            conn,
            orders.OrderFilter(client_id=client_id, state=state, customer_account=customer_account),
            after_seq=after_seq,
            limit=size + 1,
        )
    taken = paging.fitting([order for _, order in page[:size]], fits)
    next_token = encode_page_token(page[taken - 1][0], filter_digest) if len(page) > taken else ""
    listed = [order for _, order in page[:taken]]
    pii_access.record_staff_reads(db, principal, listed, "ListOrders")
    return OrderPage(listed, next_token)


def encode_page_token(after_seq: int, filter_digest: str) -> str:
    raw = json.dumps({"after": after_seq, "filter": filter_digest}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_page_token(token: str, filter_digest: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = int(data["after"])
        same_filter = data["filter"] == filter_digest
    except (ValueError, KeyError, TypeError):
        raise _bad_token("not a token this server issued") from None
    if not same_filter:
        raise _bad_token("the filters differ from the request that returned this token")
    return after


def _bad_token(why: str) -> ServiceError:
    return ServiceError(
        ErrorKind.INVALID_ARGUMENT,
        "PAGE_TOKEN_INVALID",
        f"page_token is invalid: {why}.",
        field_violations=[FieldViolation("page_token", why)],
    )
