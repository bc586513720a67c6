"""The signals integration operators watch: queue depth by reason, stuck orders and their alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from ..domain.ids import new_id
from ..domain.model import OrderState
from ..domain.records import EventRecord
from ..storage import Database, alerts, orders, webhooks
from ..storage import tables as t


def held_reason_counts(db: Database) -> dict[str, int]:
    """Held orders per hold reason code (an order with two reasons counts under both), from
    the held orders' codes (order_holds) rather than every held order's reasons."""
    h = t.order_holds.c
    with db.reader() as conn:
        rows = conn.execute(select(h.code, func.count()).group_by(h.code))
        return {code: int(count) for code, count in rows}


def oldest_held_received_at(db: Database) -> datetime | None:
    """When the longest-waiting order on hold was received; None with none on hold."""
    o = t.orders.c
    with db.reader() as conn:
        return conn.execute(
            select(o.created_at)
            .where(o.state == OrderState.ON_HOLD.value)
            .order_by(o.state, o.seq)
            .limit(1)
        ).scalar_one_or_none()


def oldest_pending_webhook(db: Database) -> datetime | None:
    """When the longest-waiting webhook delivery was made; None with none pending."""
    with db.reader() as conn:
        return webhooks.oldest_pending(conn)


def stock_short_count(db: Database) -> int:
    """Orders on hold for stock alone: accepted by the re-check once stock comes in."""
    o = t.orders.c
    with db.reader() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(t.orders)
                .where(o.stock_hold.is_(True), o.state == OrderState.ON_HOLD.value)
            ).scalar_one()
        )


def divergence_counts(db: Database) -> dict[str, int]:
    """INVENTORY_DIVERGENCE alerts ever raised, per location (ReconcileStock)."""
    a = t.alerts.c
    with db.reader() as conn:
        rows = conn.execute(
            select(a.location, func.count())
            .where(a.kind == "INVENTORY_DIVERGENCE")
            .group_by(a.location)
        )
        return {location or "": int(count) for location, count in rows}


@dataclass(frozen=True)
class StuckRule:
    kind: str  # "picking" or "dispatched"
    state: OrderState
    after: timedelta


def rules(picking_hours: float, dispatched_hours: float) -> list[StuckRule]:
    return [
        StuckRule("picking", OrderState.PICKING, timedelta(hours=picking_hours)),
        StuckRule("dispatched", OrderState.DISPATCHED, timedelta(hours=dispatched_hours)),
    ]


def stuck_orders(
    db: Database, stuck_rules: list[StuckRule], now: datetime
) -> dict[str, list[tuple[int, str]]]:
    """Per rule, the (seq, id) of orders in its state with no change for longer than allowed."""
    o = t.orders.c
    found: dict[str, list[tuple[int, str]]] = {}
    with db.reader() as conn:
        for rule in stuck_rules:
            rows = conn.execute(
                select(o.seq, o.id).where(
                    o.state == rule.state.value, o.updated_at < now - rule.after
                )
            )
            found[rule.kind] = [(row.seq, row.id) for row in rows]
    return found


def raise_stuck_alerts(db: Database, stuck_rules: list[StuckRule]) -> int:
    """Give each newly stuck order a STUCK event and an alert, once per stay in its state."""
    now = datetime.now(UTC)
    raised = 0
    for rule in stuck_rules:
        for seq, order_id in stuck_orders(db, [rule], now)[rule.kind]:
            with db.transaction() as tx:
                last = tx.execute(
                    select(t.order_events.c.type)
                    .where(t.order_events.c.order_seq == seq)
                    .order_by(t.order_events.c.seq.desc())
                    .limit(1)
                ).scalar_one_or_none()
                if last == "STUCK":
                    continue  # already raised since it entered this state
                message = f"Order {order_id} has been {rule.state.value} for over {rule.after}."
                orders.insert_events(
                    tx,
                    seq,
                    [
                        EventRecord(
                            new_id(),
                            now,
                            "system",
                            "STUCK",
                            rule.state,
                            rule.state,
                            message,
                        )
                    ],
                )
                alerts.raise_alert(
                    tx,
                    at=now,
                    kind=f"STUCK_{rule.kind.upper()}",
                    message=message,
                    order_ids=[order_id],
                )
                raised += 1
    return raised
