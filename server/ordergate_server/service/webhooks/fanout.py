"""The fan-out: the order events, the stock changes and the alerts become webhook events, and
each event one delivery per endpoint that wants it ("events are the outbox", DESIGN.md).

Each log is read after a durable cursor (webhook_cursors), advanced in the transaction that
writes the events and deliveries, so a pass that dies changes nothing and the next pass does
its work again: at least once, from the stored logs, nothing held only in memory. On PostgreSQL
one pass runs at a time across workers and replicas (a transaction-level advisory lock).

Log ids come in the order transactions took them, not the order they committed: id 41 may
become visible after 42. A pass stops before a missing id until the entry after it is
GAP_GRACE old (a transaction that took an id and still has not committed after that long rolled
back), so no entry is passed over.

Stock changes are debounced: a pass takes them only once the oldest waiting is
`stock_debounce` old, and then all of them, one `stock.changed` per product with its levels now.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, func, select

from ...domain.ids import new_id
from ...domain.records import OrderRecord
from ...domain.webhooks import order_event_type, wants
from ...storage import Database, orders
from ...storage import tables as t
from ...storage import webhooks as store

GAP_GRACE = timedelta(seconds=30)
BATCH = 500  # log entries read per log and pass
_PASS_LOCK = 726576  # pg_try_advisory_xact_lock key

# The order as a webhook carries it (proto3 JSON of ordergate.v1.Order): the API layer renders it.
OrderRenderer = Callable[[OrderRecord], dict[str, Any]]


class _Logged(Protocol):
    @property
    def seq(self) -> int: ...


@dataclass(frozen=True)
class FannedOut:
    events: int
    deliveries: int


def fan_out(
    db: Database,
    render_order: OrderRenderer,
    *,
    stock_low_at: int,
    stock_debounce: timedelta,
    now: datetime | None = None,
) -> FannedOut:
    """One pass over the three logs."""
    now = now or datetime.now(UTC)
    with db.reader() as conn:
        if not _anything_new(conn):
            return FannedOut(0, 0)  # the usual case: no write transaction for nothing
    with db.transaction() as tx:
        if not db.first_to_take(tx, _PASS_LOCK):
            return FannedOut(0, 0)  # another worker or replica is on it
        endpoints = store.enabled_endpoints(tx)
        writer = _Writer(tx, endpoints, now)
        _order_events(tx, writer, render_order, now)
        _stock_changes(tx, writer, stock_low_at, stock_debounce, now)
        _alerts(tx, writer, now)
        return FannedOut(writer.events, writer.deliveries)


def _anything_new(conn: Connection) -> bool:
    for log, table in store.LOGS.items():
        newest = conn.execute(select(func.max(table.c.seq))).scalar_one_or_none()
        if newest is not None and newest > store.cursor(conn, log):
            return True
    return False


class _Writer:
    """Writes an event and its deliveries, for the endpoints that want it."""

    def __init__(self, tx: Connection, endpoints: list[store.Endpoint], now: datetime) -> None:
        self._tx = tx
        self._endpoints = endpoints
        self._now = now
        self.events = 0
        self.deliveries = 0

    def recipients(self, type_: str, client_id: int | None) -> list[store.Endpoint]:
        return [
            e
            for e in self._endpoints
            if (client_id is None or e.client_id == client_id) and wants(e.event_types, type_)
        ]

    def write(
        self,
        recipients: list[store.Endpoint],
        *,
        event_id: str,
        type_: str,
        client_id: int | None,
        occurred_at: datetime,
        data: dict[str, Any],
    ) -> None:
        seq = store.insert_event(
            self._tx,
            event_id=event_id,
            type_=type_,
            client_id=client_id,
            occurred_at=occurred_at,
            data=data,
        )
        store.insert_deliveries(
            self._tx,
            [
                {
                    "id": new_id(),
                    "event_seq": seq,
                    "endpoint_id": endpoint.id,
                    "state": store.PENDING,
                    "attempts": 0,
                    "next_attempt_at": self._now,
                    "created_at": self._now,
                }
                for endpoint in recipients
            ],
        )
        self.events += 1
        self.deliveries += len(recipients)


def contiguous(
    entries: Sequence[_Logged], after: int, at: Callable[[Any], datetime], now: datetime
) -> list[Any]:
    """The entries that may be taken: from `after` on without a gap, a gap being passed once the
    entry after it is GAP_GRACE old (its transaction rolled back)."""
    taken = []
    expected = after + 1
    for entry in entries:
        if entry.seq != expected and now - at(entry) < GAP_GRACE:
            break  # a missing id that may still commit: wait for it
        taken.append(entry)
        expected = entry.seq + 1
    return taken


def _order_events(
    tx: Connection, writer: _Writer, render_order: OrderRenderer, now: datetime
) -> None:
    after = store.cursor(tx, "order_events")
    logged = contiguous(
        orders.events_after(tx, after, limit=BATCH), after, lambda e: e.event.created_at, now
    )
    rendered: dict[str, dict[str, Any]] = {}
    for entry in logged:
        event = entry.event
        type_ = order_event_type(event.type, event.new_state)
        recipients = writer.recipients(type_, entry.client_id) if type_ else []
        if type_ and recipients:
            if entry.order_id not in rendered:
                order = orders.get_order(tx, client_id=None, order_id=entry.order_id)
                assert order is not None
                rendered[entry.order_id] = render_order(order)
            writer.write(
                recipients,
                event_id=f"evt_{event.id}",
                type_=type_,
                client_id=entry.client_id,
                occurred_at=event.created_at,
                data={
                    "order": rendered[entry.order_id],
                    "change": {
                        "type": event.type,
                        "actor": event.actor,
                        "old_state": event.old_state.value if event.old_state else "",
                        "new_state": event.new_state.value,
                        "detail": event.detail,
                    },
                },
            )
    if logged:
        store.set_cursor(tx, "order_events", logged[-1].seq)


def _stock_changes(
    tx: Connection, writer: _Writer, low_at: int, debounce: timedelta, now: datetime
) -> None:
    after = store.cursor(tx, "stock_changes")
    s = t.stock_changes.c
    rows = tx.execute(
        select(t.stock_changes).where(s.seq > after).order_by(s.seq).limit(BATCH)
    ).all()
    if not rows or now - rows[0].at < debounce:
        return  # nothing waiting, or the oldest change still within the debounce interval
    changes = contiguous(rows, after, lambda r: r.at, now)
    if not changes:
        return
    changed_skus = sorted({c.sku for c in changes})
    for sku in changed_skus:
        recipients = writer.recipients("stock.changed", None)
        if recipients:
            writer.write(
                recipients,
                event_id=f"evt_{new_id()}",
                type_="stock.changed",
                client_id=None,
                occurred_at=max(c.at for c in changes if c.sku == sku),
                data={"sku": sku, "levels": _levels(tx, sku)},
            )
    low = writer.recipients("stock.low", None)
    if low:
        fell: dict[tuple[str, str], datetime] = {}
        for c in changes:
            available_after = c.on_hand_after - c.allocated_after
            available_before = available_after - c.on_hand_delta + c.allocated_delta
            if available_before > low_at >= available_after:
                fell[(c.sku, c.location)] = c.at
        for (sku, location), at in sorted(fell.items()):
            writer.write(
                low,
                event_id=f"evt_{new_id()}",
                type_="stock.low",
                client_id=None,
                occurred_at=at,
                data={"sku": sku, "location": location, "low_stock_level": low_at},
            )
    store.set_cursor(tx, "stock_changes", changes[-1].seq)


def _levels(tx: Connection, sku: str) -> list[dict[str, Any]]:
    st = t.stock.c
    rows = tx.execute(
        select(st.location, st.on_hand, st.allocated, st.quarantine)
        .where(st.sku == sku)
        .order_by(st.location)
    )
    return [
        {
            "location": r.location,
            "on_hand": r.on_hand,
            "allocated": r.allocated,
            "available": r.on_hand - r.allocated,
            "quarantine": r.quarantine,
        }
        for r in rows
    ]


# The alerts that are webhook events, by kind.
_ALERT_EVENTS = {"OVERSOLD": "stock.oversold", "INVENTORY_DIVERGENCE": "stock.divergence"}


def _alerts(tx: Connection, writer: _Writer, now: datetime) -> None:
    after = store.cursor(tx, "alerts")
    a = t.alerts.c
    rows = tx.execute(select(t.alerts).where(a.seq > after).order_by(a.seq).limit(BATCH)).all()
    taken = contiguous(rows, after, lambda r: r.at, now)
    for alert in taken:
        type_ = _ALERT_EVENTS.get(alert.kind)
        recipients = writer.recipients(type_, None) if type_ else []
        if type_ and recipients:
            # Not the orders it names: they are several clients', and the event goes to all.
            data = {"sku": alert.sku, "location": alert.location}
            if alert.kind == "INVENTORY_DIVERGENCE":
                data["message"] = alert.message
            writer.write(
                recipients,
                event_id=f"evt_{new_id()}",
                type_=type_,
                client_id=None,
                occurred_at=alert.at,
                data=data,
            )
    if taken:
        store.set_cursor(tx, "alerts", taken[-1].seq)
