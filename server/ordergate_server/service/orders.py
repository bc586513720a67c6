"""Reading orders: one by id, or a filtered, paginated list (AIP-158)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta

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
# Listed by update time, orders changed this recently are not listed yet: a change being
# committed now carries a time a little in the past, and a poller that had moved past that time
# would never see it. Transactions here last milliseconds; this leaves them ample room.
UPDATE_SETTLE = timedelta(seconds=2)


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
            own = principal.client_id if principal.sees_only_own_client else None
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
            if not given and not (name == "client" and principal.sees_only_own_client)
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
    if principal.sees_only_own_client:
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
    by_update: bool = False  # by the time of the last change, for pollers (else as received)

    @property
    def in_creation_window(self) -> bool:
        """Listed by (receipt time, seq) so that a page walks the window's index and costs
        the same however many orders the window holds (a hold reason has its own index)."""
        window = self.created_after is not None or self.created_before is not None
        return window and not self.by_update and not self.hold_code

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
    """A page of orders, oldest first (by receipt, or with `query.by_update` by the last change);
    `fits` bounds the page in bytes (paging.fitting)."""
    size = paging.page_size(page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    if query.hold_code:
        check_hold_code(query.hold_code, "hold_reason")
    filter_digest = query.digest()
    position = decode_position(page_token, filter_digest) if page_token else _START
    cursor = None
    if query.by_update:
        after = position.updated_at or datetime.min.replace(tzinfo=UTC)
        horizon = datetime.now(UTC) - UPDATE_SETTLE
        cursor = orders.UpdateCursor(after, position.seq, horizon)
    by_creation = None
    if query.in_creation_window:
        by_creation = orders.CreationCursor(position.created_at, position.seq)

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
            after_seq=position.seq,
            limit=size + 1,
            by_update=cursor,
            by_creation=by_creation,
        )
    taken = paging.fitting([order for _, order in page[:size]], fits)
    listed = [order for _, order in page[:taken]]
    if query.by_update:  # always a point to resume from: where this page ended
        last = Position(listed[-1].updated_at, page[taken - 1][0]) if listed else position
        next_token = encode_position(last, filter_digest)
    elif len(page) <= taken:
        next_token = ""
    elif query.in_creation_window:
        last = Position(None, page[taken - 1][0], created_at=listed[-1].created_at)
        next_token = encode_position(last, filter_digest)
    else:
        next_token = encode_page_token(page[taken - 1][0], filter_digest)
    pii_access.record_staff_reads(db, principal, listed, "ListOrders")
    return OrderPage(listed, next_token)


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last order's seq, and by update time its updated_at too, or
    in a receipt-time window its created_at."""

    updated_at: datetime | None
    seq: int
    created_at: datetime | None = None


_START = Position(None, 0)


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


def encode_position(position: Position, filter_digest: str) -> str:
    data: dict[str, object] = {"after": position.seq, "filter": filter_digest}
    if position.updated_at is not None:
        data["updated"] = position.updated_at.isoformat()
    if position.created_at is not None:
        data["created"] = position.created_at.isoformat()
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def decode_position(token: str, filter_digest: str) -> Position:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = int(data["after"])
        updated = datetime.fromisoformat(data["updated"]) if "updated" in data else None
        created = datetime.fromisoformat(data["created"]) if "created" in data else None
        same_filter = data["filter"] == filter_digest
    except (ValueError, KeyError, TypeError, AttributeError):
        raise _bad_token("not a token this server issued") from None
    if not same_filter:
        raise _bad_token("the filters differ from the request that returned this token")
    if any(time is not None and time.tzinfo is None for time in (updated, created)):
        raise _bad_token("not a token this server issued")
    return Position(updated, after, created_at=created)


def encode_page_token(after_seq: int, filter_digest: str) -> str:
    """A token resuming after the row `after_seq`, tied to the request's filters."""
    return encode_position(Position(None, after_seq), filter_digest)


def decode_page_token(token: str, filter_digest: str) -> int:
    """The row a token resumes after; INVALID_ARGUMENT PAGE_TOKEN_INVALID for any other."""
    return decode_position(token, filter_digest).seq


def _bad_token(why: str) -> ServiceError:
    return ServiceError(
        ErrorKind.INVALID_ARGUMENT,
        "PAGE_TOKEN_INVALID",
        f"page_token is invalid: {why}.",
        field_violations=[FieldViolation("page_token", why)],
    )
