"""Orders, their lines and events."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, bindparam, exists, func, select, tuple_

from ..domain.lifecycle import HOLDS_STOCK
from ..domain.model import (
    STOCK_HOLDS,
    Address,
    Delivery,
    HoldCode,
    HoldReason,
    OrderSource,
    OrderState,
    ShipmentState,
)
from ..domain.records import EventRecord, LineRecord, OrderRecord, ShipmentRecord
from . import pii
from . import tables as t
from .bulk import BulkInsert, KeyLookup
from .driver_query import DriverQuery, Later
from .one_of import one_of


@dataclass(frozen=True)
class OrderKey:
    """Where an existing order is, and what a resubmission needs to know about it."""

    seq: int
    id: str
    state: OrderState
    content_sha256: str
    created_at: datetime
    held_from: str | None  # set while on a manual hold

    @property
    def replaceable(self) -> bool:
        """Whether a resubmission replaces it: held by the rules, not by a person (a manual
        hold keeps its stock and waits for a manager)."""
        return self.state is OrderState.ON_HOLD and self.held_from is None


# An order's identity: (client_id, the buyer's order id, the buyer's customer account). A buyer
# of "" (none could be read) names no order: such a submission never replaces another.
Identity = tuple[int, str, str]

# Built once: on the submit path, building a Core statement costs more than running it.
_o = t.orders.c
_KEY = select(_o.seq, _o.id, _o.state, _o.content_sha256, _o.created_at, _o.held_from)
_FIND_BY_IDENTITY = _KEY.where(
    and_(
        _o.client_id == bindparam("client_id"),
        _o.client_order_id == bindparam("order_id"),
        _o.customer_account == bindparam("customer"),
    )
)
_FIND_BY_IDENTITY_LOCKED = _FIND_BY_IDENTITY.with_for_update()
_FIND_MANY_STATEMENT = select(_o.client_id, _o.client_order_id, _o.customer_account).where(
    and_(
        one_of(_o.client_id, "client_ids"),
        one_of(_o.client_order_id, "order_ids"),
    )
)
# Once per group-commit batch: straight through the driver (driver_query.py).
_FIND_MANY_BY_CLIENT_ORDER_ID = DriverQuery(_FIND_MANY_STATEMENT)
_FIND_MANY_BY_CLIENT_ORDER_ID_LOCKED = DriverQuery(_FIND_MANY_STATEMENT.with_for_update())
_INSERT_ORDER = t.orders.insert().returning(_o.seq)
_ORDER_COLUMNS = (
    "client_id",
    "id",
    "client_order_id",
    "customer_account",
    "channel",
    "currency",
    "order_time",
    "created_at",
    "updated_at",
    "state",
    "hold_reasons",
    "delivery",
    "notes",
    "allocation_location",
    "problem_submission",
    "content_sha256",
    "source",
    "entered_by",
    "stock_hold",
    "held_from",
)
_INSERT_ORDERS = BulkInsert(t.orders, _ORDER_COLUMNS)
_LINE_COLUMNS = (
    "order_seq",
    "position",
    "line_number",
    "submitted_code",
    "sku",
    "quantity",
    "unit_price",
    "cancelled_quantity",
    "shipped_quantity",
)
_EVENT_COLUMNS = (
    "id",
    "order_seq",
    "created_at",
    "actor",
    "type",
    "old_state",
    "new_state",
    "detail",
)
_INSERT_LINES = BulkInsert(t.order_lines, _LINE_COLUMNS)
_INSERT_EVENTS = BulkInsert(t.order_events, _EVENT_COLUMNS)
# A batch's lines and events, given with their order's id instead of its seq (bulk.py).
_SEQ_OF_ORDER_ID = KeyLookup("order_seq", _o.id, _o.seq)
_INSERT_LINES_OF_NEW = BulkInsert(t.order_lines, _LINE_COLUMNS, lookup=_SEQ_OF_ORDER_ID)
_INSERT_EVENTS_OF_NEW = BulkInsert(t.order_events, _EVENT_COLUMNS, lookup=_SEQ_OF_ORDER_ID)
_INSERT_HOLDS = BulkInsert(t.order_holds, ("order_seq", "code"))
_INSERT_HOLDS_OF_NEW = BulkInsert(t.order_holds, ("order_seq", "code"), lookup=_SEQ_OF_ORDER_ID)


def find_by_identity(
    conn: Connection, identity: Identity, *, lock: bool = False
) -> OrderKey | None:
    """The order with this (client, order id, buyer), if any; None for a buyer of ""."""
    client_id, client_order_id, customer = identity
    if not client_order_id or not customer:
        return None
    row = conn.execute(
        _FIND_BY_IDENTITY_LOCKED if lock else _FIND_BY_IDENTITY,
        {"client_id": client_id, "order_id": client_order_id, "customer": customer},
    ).first()
    if row is None:
        return None
    return OrderKey(
        row.seq, row.id, OrderState(row.state), row.content_sha256, row.created_at, row.held_from
    )


def key_of(conn: Connection, order_id: str, *, lock: bool = False) -> OrderKey | None:
    """What a resubmission needs to know of the order with this server id (locked with
    `lock`)."""
    query = _KEY.where(_o.id == order_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        return None
    return OrderKey(
        row.seq, row.id, OrderState(row.state), row.content_sha256, row.created_at, row.held_from
    )


def send_existing_identities(
    conn: Connection, keys: Iterable[Identity], *, lock: bool = False
) -> Later[set[Identity]]:
    """Which identities of `keys` (client_id, order id, buyer) name an order already, in one
    statement sent ahead (DriverQuery.send): call the result for the set. With `lock`, the
    order rows with those ids stay locked (PostgreSQL)."""
    wanted = {key for key in keys if key[1] and key[2]}
    if not wanted:
        return set
    rows = (_FIND_MANY_BY_CLIENT_ORDER_ID_LOCKED if lock else _FIND_MANY_BY_CLIENT_ORDER_ID).send(
        conn,
        {
            "client_ids": sorted({client_id for client_id, _, _ in wanted}),
            "order_ids": sorted({order_id for _, order_id, _ in wanted}),
        },
    )
    return lambda: {(c, o, a) for c, o, a in rows() if a is not None} & wanted


def insert_order(conn: Connection, client_id: int, order: OrderRecord) -> int:
    """Store a new order with its lines and events; returns its seq."""
    seq: int = conn.execute(
        _INSERT_ORDER, {"client_id": client_id, **_order_values(conn, order)}
    ).scalar_one()
    _INSERT_LINES(conn, _line_rows([(seq, order.lines)]))
    _INSERT_HOLDS(conn, _hold_rows([(seq, order)]))
    insert_events(conn, seq, order.events)
    return seq


def insert_orders(conn: Connection, new: Sequence[tuple[int, OrderRecord]]) -> None:
    """Store new orders (client_id, order) with their lines and events in three statements for
    any number of orders: the rows, all lines, all events. Nothing is read back in between (the
    lines and events find their order's seq by its id), so in a `bulk.pipelined` block the
    three go out together."""
    if not new:
        return
    _INSERT_ORDERS(conn, [_order_row(conn, client_id, order) for client_id, order in new])
    _INSERT_LINES_OF_NEW(conn, _line_rows([(order.id, order.lines) for _, order in new]))
    _INSERT_HOLDS_OF_NEW(conn, _hold_rows([(order.id, order) for _, order in new]))
    _INSERT_EVENTS_OF_NEW(conn, _event_rows([(order.id, order.events) for _, order in new]))


def replace_order(conn: Connection, seq: int, order: OrderRecord) -> None:
    """Overwrite a held order's content with a resubmission (lines replaced; events kept; how
    it came in, and who entered it, stay)."""
    values = _order_values(conn, order)
    del values["id"], values["created_at"], values["source"], values["entered_by"]
    conn.execute(t.orders.update().where(t.orders.c.seq == seq).values(**values))
    conn.execute(t.order_lines.delete().where(t.order_lines.c.order_seq == seq))
    _INSERT_LINES(conn, _line_rows([(seq, order.lines)]))
    conn.execute(t.order_holds.delete().where(t.order_holds.c.order_seq == seq))
    _INSERT_HOLDS(conn, _hold_rows([(seq, order)]))


def set_state(
    conn: Connection,
    seq: int,
    state: OrderState,
    now: datetime,
    *,
    hold_reasons: Sequence[HoldReason] = (),
    allocation_location: str | None,
    held_from: OrderState | None = None,
) -> None:
    """Move an order to `state` with these hold reasons (none unless ON_HOLD) and allocation;
    the order's hold codes (order_holds) and stock_hold follow the reasons."""
    codes = {reason.code for reason in hold_reasons}
    conn.execute(
        t.orders.update()
        .where(t.orders.c.seq == seq)
        .values(
            state=state.value,
            hold_reasons=[r.to_dict() for r in hold_reasons],
            stock_hold=bool(codes) and codes <= STOCK_HOLDS,
            allocation_location=allocation_location or None,
            held_from=held_from.value if held_from else None,
            updated_at=now,
        )
    )
    conn.execute(t.order_holds.delete().where(t.order_holds.c.order_seq == seq))
    _INSERT_HOLDS(conn, [(seq, code.value) for code in sorted(codes)])


def replace_lines(conn: Connection, seq: int, lines: Sequence[LineRecord]) -> None:
    """An order's lines, all of them anew (a buyer's OrderChange)."""
    conn.execute(t.order_lines.delete().where(t.order_lines.c.order_seq == seq))
    _INSERT_LINES(conn, _line_rows([(seq, lines)]))


def set_line_quantities(conn: Connection, seq: int, lines: Sequence[LineRecord]) -> None:
    """Store the cancelled and shipped pieces of an order's lines (in document order)."""
    for position, line in enumerate(lines):
        conn.execute(
            t.order_lines.update()
            .where(t.order_lines.c.order_seq == seq, t.order_lines.c.position == position)
            .values(cancelled_quantity=line.cancelled, shipped_quantity=line.shipped)
        )


def _hold_rows(per_order: Sequence[tuple[Any, OrderRecord]]) -> list[tuple[Any, str]]:
    """order_holds rows of held orders: each distinct code once, under the order's key."""
    return [
        (key, code)
        for key, order in per_order
        if order.state is OrderState.ON_HOLD
        for code in sorted({reason.code.value for reason in order.hold_reasons})
    ]


def insert_events(conn: Connection, order_seq: int, events: Sequence[EventRecord]) -> None:
    _INSERT_EVENTS(conn, _event_rows([(order_seq, events)]))


def _event_rows(per_order: Sequence[tuple[Any, Sequence[EventRecord]]]) -> list[tuple[Any, ...]]:
    """Event rows in _EVENT_COLUMNS' order, each order's events under its key (seq or id)."""
    return [
        (
            e.id,
            order,
            e.created_at,
            e.actor,
            e.type,
            e.old_state.value if e.old_state else None,
            e.new_state.value,
            e.detail,
        )
        for order, events in per_order
        for e in events
    ]


def get_order(conn: Connection, *, client_id: int | None, order_id: str) -> OrderRecord | None:
    """One order by server id; `client_id` restricts to one client's orders."""
    query = _order_select().where(t.orders.c.id == order_id)
    if client_id is not None:
        query = query.where(t.orders.c.client_id == client_id)
    rows = conn.execute(query).all()
    return _assemble(conn, rows)[0][1] if rows else None


def orders_with_client_order_id(
    conn: Connection, client_order_id: str, *, client_id: int | None, customer_account: str
) -> list[OrderRecord]:
    """The orders (at most two: enough to tell one from several) with this order id of the
    shop's, of one client and one buyer when given."""
    o = t.orders.c
    query = _order_select().where(o.client_order_id == client_order_id)
    if client_id is not None:
        query = query.where(o.client_id == client_id)
    if customer_account:
        query = query.where(o.customer_account == customer_account)
    return [order for _, order in _assemble(conn, conn.execute(query.limit(2)).all())]


@dataclass(frozen=True)
class OrderFilter:
    client_id: int | None = None
    state: OrderState | None = None
    customer_account: str = ""
    hold_code: str = ""  # only held orders with this hold reason code
    source: OrderSource | None = None
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # inclusive
    updated_after: datetime | None = None  # inclusive
    updated_before: datetime | None = None  # inclusive


def list_orders(
    conn: Connection,
    where: OrderFilter,
    *,
    after_seq: int = 0,
    limit: int,
    by_update: UpdateCursor | None = None,
    by_creation: CreationCursor | None = None,
) -> list[tuple[int, OrderRecord]]:
    """Orders matching `where`, at most `limit`: with seq > after_seq, oldest first; with
    `by_update`, by (updated_at, seq) after its position and changed before its horizon; with
    `by_creation`, by (created_at, seq) after its position."""
    o, h = t.orders.c, t.order_holds.c
    order: tuple[Any, ...] = (o.seq,) if by_update is None else (o.updated_at, o.seq)
    if by_creation is not None:
        # A receipt-time window walked along the (created_at, seq) index and stopped at the
        # page. Ordered by seq, every order in the window was read and sorted before the page
        # was cut, so a page cost as much as the window held (a week of a busy shop: 80 ms).
        query = _order_select()
        if by_creation.created_at is not None:
            query = query.where(
                tuple_(o.created_at, o.seq) > tuple_(by_creation.created_at, by_creation.seq)
            )
        order = (o.created_at, o.seq)
    elif by_update is None and where.hold_code:
        # By the held orders' codes, walked in order along their index (code, order_seq) and
        # stopped at the page: listed through IN (subquery), every held order with the code
        # was read first (on SQLite, 13 ms with 80,000 held orders; this way 0.4 ms).
        query = (
            _order_select()
            .join(t.order_holds, h.order_seq == o.seq)
            .where(h.code == where.hold_code, h.order_seq > after_seq)
        )
        order = (h.order_seq,)  # the same as o.seq, but SQLite only sees the index's order
    elif by_update is None:
        query = _order_select().where(o.seq > after_seq)
    else:
        query = _order_select().where(
            tuple_(o.updated_at, o.seq) > tuple_(by_update.updated_at, by_update.seq),
            o.updated_at < by_update.horizon,
        )
    by_time = by_update is not None or by_creation is not None
    if by_time and where.hold_code:  # by the held orders' codes (an index)
        query = query.where(o.seq.in_(select(h.order_seq).where(h.code == where.hold_code)))
    if where.client_id is not None:
        query = query.where(o.client_id == where.client_id)
    if where.state is not None:
        query = query.where(o.state == where.state.value)
    if where.customer_account:
        query = query.where(o.customer_account == where.customer_account)
    if where.source is not None:
        query = query.where(o.source == where.source.value)
    if where.created_after is not None:
        query = query.where(o.created_at >= where.created_after)
    if where.created_before is not None:
        query = query.where(o.created_at <= where.created_before)
    if where.updated_after is not None:
        query = query.where(o.updated_at >= where.updated_after)
    if where.updated_before is not None:
        query = query.where(o.updated_at <= where.updated_before)
    rows = conn.execute(query.order_by(*order).limit(limit)).all()
    return _assemble(conn, rows)


@dataclass(frozen=True)
class CreationCursor:
    """Where a list by receipt time resumes: after (created_at, seq); at the start when
    `created_at` is None."""

    created_at: datetime | None
    seq: int


@dataclass(frozen=True)
class UpdateCursor:
    """Where a list by update time resumes: after (updated_at, seq), up to `horizon`."""

    updated_at: datetime
    seq: int
    horizon: datetime


def _order_row(conn: Connection, client_id: int, order: OrderRecord) -> tuple[Any, ...]:
    values = _order_values(conn, order) | {"client_id": client_id}
    return tuple(values[name] for name in _ORDER_COLUMNS)


def _order_values(conn: Connection, order: OrderRecord) -> dict[str, Any]:
    return {
        "id": order.id,
        "client_order_id": order.client_order_id or None,
        "customer_account": order.customer_account or None,
        "channel": order.channel,
        "currency": order.currency,
        "order_time": order.order_time,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "state": order.state.value,
        "hold_reasons": [r.to_dict() for r in order.hold_reasons],
        "delivery": pii.seal_json(conn, _delivery_to_json(order.delivery), "orders.delivery"),
        "notes": order.notes,
        "allocation_location": order.allocation_location or None,
        "problem_submission": order.problem_submission,
        "content_sha256": order.content_sha256,
        "source": order.source.value,
        "entered_by": order.entered_by or None,
        "stock_hold": order.stock_hold,
        "held_from": order.held_from.value if order.held_from else None,
    }


def _line_rows(per_order: Sequence[tuple[Any, Sequence[LineRecord]]]) -> list[tuple[Any, ...]]:
    """Line rows in _LINE_COLUMNS' order, each order's lines under its key (seq or id)."""
    return [
        (
            order,
            position,
            line.line_number,
            line.submitted_code,
            line.sku or None,
            line.quantity,
            str(line.unit_price) if line.unit_price is not None else None,
            line.cancelled,
            line.shipped,
        )
        for order, lines in per_order
        for position, line in enumerate(lines)
    ]


def _order_select() -> Select[Any]:
    return select(t.orders, t.clients.c.name.label("client_name")).join(
        t.clients, t.clients.c.id == t.orders.c.client_id
    )


def _assemble(conn: Connection, rows: Sequence[Row[Any]]) -> list[tuple[int, OrderRecord]]:
    """Attach lines and events to order rows: two more statements for the whole page."""
    seqs = [row.seq for row in rows]
    if not seqs:
        return []
    lines: dict[int, list[LineRecord]] = defaultdict(list)
    for line in conn.execute(
        select(t.order_lines)
        .where(t.order_lines.c.order_seq.in_(seqs))
        .order_by(t.order_lines.c.order_seq, t.order_lines.c.position)
    ):
        lines[line.order_seq].append(
            LineRecord(
                line_number=line.line_number,
                submitted_code=line.submitted_code,
                sku=line.sku or "",
                quantity=line.quantity,
                unit_price=Decimal(line.unit_price) if line.unit_price is not None else None,
                cancelled=line.cancelled_quantity,
                shipped=line.shipped_quantity,
            )
        )
    events: dict[int, list[EventRecord]] = defaultdict(list)
    for event in conn.execute(
        select(t.order_events)
        .where(t.order_events.c.order_seq.in_(seqs))
        .order_by(t.order_events.c.seq)
    ):
        events[event.order_seq].append(
            EventRecord(
                id=event.id,
                created_at=event.created_at,
                actor=event.actor,
                type=event.type,
                old_state=OrderState(event.old_state) if event.old_state else None,
                new_state=OrderState(event.new_state),
                detail=event.detail,
            )
        )
    shipments = _shipments(conn, seqs, lines)
    return [
        (
            row.seq,
            OrderRecord(
                id=row.id,
                client=row.client_name,
                client_order_id=row.client_order_id or "",
                customer_account=row.customer_account or "",
                channel=row.channel,
                currency=row.currency,
                order_time=row.order_time,
                created_at=row.created_at,
                updated_at=row.updated_at,
                state=OrderState(row.state),
                hold_reasons=tuple(
                    HoldReason(HoldCode(r["code"]), r["field"], r["message"], r.get("rule", ""))
                    for r in row.hold_reasons
                ),
                delivery=_delivery_from_json(pii.open_json(conn, row.delivery, "orders.delivery")),
                lines=tuple(lines[row.seq]),
                notes=row.notes,
                allocation_location=row.allocation_location or "",
                problem_submission=bool(row.problem_submission),
                content_sha256=row.content_sha256,
                events=tuple(events[row.seq]),
                source=OrderSource(row.source),
                entered_by=row.entered_by or "",
                stock_hold=bool(row.stock_hold),
                held_from=OrderState(row.held_from) if row.held_from else None,
                shipments=tuple(shipments[row.seq]),
            ),
        )
        for row in rows
    ]


def _shipments(
    conn: Connection, seqs: Sequence[int], lines: dict[int, list[LineRecord]]
) -> dict[int, list[ShipmentRecord]]:
    """The shipments of the orders `seqs`, oldest first, each with (line number, pieces)."""
    found: dict[int, list[ShipmentRecord]] = defaultdict(list)
    sh, sl = t.shipments.c, t.shipment_lines.c
    rows = conn.execute(
        select(t.shipments).where(sh.order_seq.in_(seqs)).order_by(sh.order_seq, sh.seq)
    ).all()
    if not rows:
        return found
    contents: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for shipment_seq, position, quantity in conn.execute(
        select(sl.shipment_seq, sl.position, sl.quantity)
        .where(sl.shipment_seq.in_([row.seq for row in rows]))
        .order_by(sl.shipment_seq, sl.position)
    ):
        contents[shipment_seq].append((position, quantity))
    for row in rows:
        order_lines = lines[row.order_seq]
        found[row.order_seq].append(
            ShipmentRecord(
                id=row.id,
                carrier=row.carrier,
                tracking_number=row.tracking_number or "",
                tracking_url=row.tracking_url or "",
                state=ShipmentState(row.state),
                without_tracking=bool(row.without_tracking),
                created_at=row.created_at,
                updated_at=row.updated_at,
                delivered_at=row.delivered_at,
                actor=row.actor,
                lines=tuple(
                    (order_lines[position].line_number, quantity)
                    for position, quantity in contents[row.seq]
                ),
            )
        )
    return found


def _delivery_to_json(delivery: Delivery) -> dict[str, Any]:
    a = delivery.address
    return {
        "name": a.name,
        "street_lines": list(a.street_lines),
        "city": a.city,
        "postal_code": a.postal_code,
        "region": a.region,
        "country_code": a.country_code,
        "phone": delivery.phone,
        "email": delivery.email,
        "window_start": delivery.window_start.isoformat() if delivery.window_start else None,
        "window_end": delivery.window_end.isoformat() if delivery.window_end else None,
        "special_handling": delivery.special_handling,
    }


def _delivery_from_json(data: dict[str, Any]) -> Delivery:
    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    return Delivery(
        address=Address(
            name=data["name"],
            street_lines=tuple(data["street_lines"]),
            city=data["city"],
            postal_code=data["postal_code"],
            region=data["region"],
            country_code=data["country_code"],
        ),
        phone=data["phone"],
        email=data["email"],
        window_start=when(data["window_start"]),
        window_end=when(data["window_end"]),
        special_handling=data["special_handling"],
    )


def client_id_by_name(conn: Connection, name: str) -> int | None:
    row = conn.execute(select(t.clients.c.id).where(t.clients.c.name == name)).first()
    return int(row.id) if row else None


@dataclass(frozen=True)
class AllocatedOrder:
    seq: int
    id: str
    state: OrderState
    quantity: int  # pieces of the SKU asked about that this order holds (bundles expanded)


def holding_stock(conn: Connection, sku: str, location: str) -> list[AllocatedOrder]:
    """Orders whose allocation at `location` includes `sku` (directly or in a bundle), newest
    first."""
    per_kit = {sku: 1} | {
        bundle: quantity
        for bundle, quantity in conn.execute(
            select(t.bundle_components.c.bundle_sku, t.bundle_components.c.quantity).where(
                t.bundle_components.c.component_sku == sku
            )
        )
    }
    o, line = t.orders.c, t.order_lines.c
    rows = conn.execute(
        select(
            o.seq,
            o.id,
            o.state,
            line.sku,
            (line.quantity - line.cancelled_quantity - line.shipped_quantity).label("open"),
        )
        .join(t.order_lines, line.order_seq == o.seq)
        .where(
            o.allocation_location == location,
            o.state.in_([s.value for s in HOLDS_STOCK]),
            line.sku.in_(list(per_kit)),
        )
        .order_by(o.seq.desc())
    )
    held: dict[int, AllocatedOrder] = {}
    for row in rows:
        pieces = row.open * per_kit[row.sku]
        previous = held.get(row.seq)
        held[row.seq] = AllocatedOrder(
            row.seq, row.id, OrderState(row.state), pieces + (previous.quantity if previous else 0)
        )
    return list(held.values())


def stock_held(
    conn: Connection,
    *,
    skus: Collection[str] | None,
    after_seq: int,
    limit: int,
    lock: bool,
) -> list[tuple[int, OrderRecord]]:
    """Orders on hold for stock alone (stock_hold), oldest first, after `after_seq`, at most
    `limit`; with `skus`, only those with a line of one of them. With `lock`, their rows stay
    locked until the transaction ends (PostgreSQL), taken in seq order."""
    o, line = t.orders.c, t.order_lines.c
    query = select(o.seq).where(
        o.stock_hold.is_(True), o.state == OrderState.ON_HOLD.value, o.seq > after_seq
    )
    if skus is not None:
        query = query.where(exists().where(line.order_seq == o.seq, line.sku.in_(sorted(skus))))
    query = query.order_by(o.seq).limit(limit)
    if lock:
        query = query.with_for_update(of=t.orders)
    seqs = [row.seq for row in conn.execute(query)]
    if not seqs:
        return []
    return _assemble(
        conn, conn.execute(_order_select().where(o.seq.in_(seqs)).order_by(o.seq)).all()
    )


def seq_of(conn: Connection, order_id: str, *, lock: bool = False) -> int | None:
    """The row number of an order; with `lock`, the order row stays locked (PostgreSQL)."""
    query = select(t.orders.c.seq).where(t.orders.c.id == order_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return int(row.seq) if row else None


@dataclass(frozen=True)
class LoggedEvent:
    seq: int
    order_id: str
    client_order_id: str
    client_id: int
    client: str
    event: EventRecord


def event_seq(conn: Connection, event_id: str) -> int | None:
    row = conn.execute(select(t.order_events.c.seq).where(t.order_events.c.id == event_id)).first()
    return int(row.seq) if row else None


def last_event_seq(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(t.order_events.c.seq), 0))).scalar_one())


def events_after(conn: Connection, seq: int, *, limit: int = 1000) -> list[LoggedEvent]:
    """Every order event after `seq`, oldest first, with its order and client."""
    e, o = t.order_events.c, t.orders.c
    rows = conn.execute(
        select(
            t.order_events,
            o.id.label("order_id"),
            o.client_order_id,
            o.client_id,
            t.clients.c.name.label("client_name"),
        )
        .join(t.orders, o.seq == e.order_seq)
        .join(t.clients, t.clients.c.id == o.client_id)
        .where(e.seq > seq)
        .order_by(e.seq)
        .limit(limit)
    )
    return [
        LoggedEvent(
            row.seq,
            row.order_id,
            row.client_order_id or "",
            row.client_id,
            row.client_name,
            EventRecord(
                id=row.id,
                created_at=row.created_at,
                actor=row.actor,
                type=row.type,
                old_state=OrderState(row.old_state) if row.old_state else None,
                new_state=OrderState(row.new_state),
                detail=row.detail,
            ),
        )
        for row in rows
    ]
