"""Reading orders: one by id, or a filtered, paginated list (AIP-158)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import astuple, dataclass
from datetime import datetime

from sqlalchemy import Connection

from ..domain.access import Principal
from ..domain.limits import shown
from ..domain.model import HoldCode, OrderSource, OrderState
from ..domain.records import OrderRecord
from ..storage import Database, orders
from . import paging, pii_access
from .errors import ErrorKind, FieldViolation, ServiceError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def get_order(
    db: Database,
    principal: Principal,
    *,
    order_id: str = "",
    client_order_id: str = "",
    client: str = "",
    customer_account: str = "",
) -> OrderRecord:
    """One order, by the server's id or by the shop's order number.

    By the shop's order number a website looks among its own orders; staff among every
    client's, narrowed by `client` (the API client's name) and `customer_account` (the buyer:
    one client may relay several buyers who use the same numbers). Several orders matching is
    INVALID_ARGUMENT ORDER_LOOKUP_AMBIGUOUS, saying what narrows it. A website asking for
    another client's order gets NOT_FOUND, exactly as for an order that does not exist, so ids
    of other tenants cannot be probed."""
    if not order_id and not client_order_id:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "ORDER_LOOKUP_MISSING",
            "Give the order's id or client_order_id.",
            field_violations=[FieldViolation("id", "one of id or client_order_id is required")],
        )
    with db.reader() as conn:
        if order_id:
            own = principal.client_id if principal.sees_only_own_orders else None
            order = orders.get_order(conn, client_id=own, order_id=order_id)
            found = [order] if order is not None else []
        else:
            client_id = _client_scope(conn, principal, client)
            found = (
                []
                if client_id == _NO_SUCH_CLIENT
                else orders.orders_with_client_order_id(
                    conn, client_order_id, client_id=client_id, customer_account=customer_account
                )
            )
    if not found:
        raise ServiceError(
            ErrorKind.NOT_FOUND,
            "ORDER_NOT_FOUND",
            f"No order {shown(order_id or client_order_id)} is visible to this client.",
            metadata={"order": order_id or client_order_id},
        )
    if len(found) > 1:
        narrow = [
            name
            for name, given in (("client", client), ("customer_account", customer_account))
            if not given and not (name == "client" and principal.sees_only_own_orders)
        ]
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "ORDER_LOOKUP_AMBIGUOUS",
            f"Several orders have the order number {shown(client_order_id)}; name the "
            f"{' or the '.join(narrow) or 'server id'} as well.",
            field_violations=[FieldViolation(name, "names which order") for name in narrow],
        )
    pii_access.record_staff_reads(db, principal, found, "GetOrder")
    return found[0]


_NO_SUCH_CLIENT = -1


def _client_scope(conn: Connection, principal: Principal, client: str) -> int | None:
    """Whose orders a lookup may see: a website only its own (another client named is
    PERMISSION_DENIED CLIENT_FILTER_FORBIDDEN); staff every client's, or the one named
    (_NO_SUCH_CLIENT when there is none by that name)."""
    if principal.sees_only_own_orders:
        if client and client != principal.client_name:
            raise ServiceError(
                ErrorKind.PERMISSION_DENIED,
                "CLIENT_FILTER_FORBIDDEN",
                "A website key sees only its own orders.",
                field_violations=[FieldViolation("client", "only your own client name is allowed")],
            )
        return principal.client_id
    if not client:
        return None
    found = orders.client_id_by_name(conn, client)
    return _NO_SUCH_CLIENT if found is None else found


@dataclass(frozen=True)
class OrderPage:
    orders: list[OrderRecord]
    next_page_token: str


@dataclass(frozen=True)
class OrderQuery:
    """ListOrders' filters; each empty or None means "any"."""

    state: OrderState | None = None
    customer_account: str = ""
    client: str = ""
    hold_code: str = ""
    source: OrderSource | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None

    def digest(self) -> str:
        """What a page token is tied to: the same filters, or the token is refused."""
        values = [str(value) if value is not None else "" for value in astuple(self)]
        return hashlib.sha256(json.dumps(values).encode()).hexdigest()[:16]


def list_orders(
    db: Database,
    principal: Principal,
    *,
    page_size: int = 0,
    page_token: str = "",
    query: OrderQuery = OrderQuery(),
    fits: Callable[[OrderRecord], bool] | None = None,
) -> OrderPage:
    """A page of orders, oldest first; `fits` bounds the page in bytes (paging.fitting)."""
    size = paging.page_size(page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    if query.hold_code:
        check_hold_code(query.hold_code, "hold_reason")
    filter_digest = query.digest()
    after_seq = decode_page_token(page_token, filter_digest) if page_token else 0

    with db.reader() as conn:
        client_id = _client_scope(conn, principal, query.client)
        if client_id == _NO_SUCH_CLIENT:
            return OrderPage([], "")
        page = orders.list_orders(
            conn,
            orders.OrderFilter(
                client_id=client_id,
                state=query.state,
                customer_account=query.customer_account,
                hold_code=query.hold_code,
                source=query.source,
                created_after=query.created_after,
                created_before=query.created_before,
                updated_after=query.updated_after,
                updated_before=query.updated_before,
            ),
            after_seq=after_seq,
            limit=size + 1,
        )
    taken = paging.fitting([order for _, order in page[:size]], fits)
    next_token = encode_page_token(page[taken - 1][0], filter_digest) if len(page) > taken else ""
    listed = [order for _, order in page[:taken]]
    pii_access.record_staff_reads(db, principal, listed, "ListOrders")
    return OrderPage(listed, next_token)


def check_hold_code(code: str, field: str) -> None:
    """A hold reason code filter must name a code there is (an unknown one would silently
    match nothing)."""
    if code not in HoldCode.__members__:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "REASON_CODE_UNKNOWN",
            f"{shown(code)} is not a hold reason code (docs/order-format.md lists them).",
            field_violations=[FieldViolation(field, "not a hold reason code")],
        )


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
