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


# Newly stuck orders flagged per rule in one pass of the checker. A first start on years of
# history (or a carrier feed that never reports delivery) can find tens of thousands at once:
# flagged in one go they would hold the writer for minutes and bury the alert list. Each pass
# flags at most this many, oldest first, in one transaction under one alert; the gauge
# (stuck_counts) shows the whole number at once, so nothing is hidden while the rest follow.
STUCK_BATCH = 500


def stuck_counts(db: Database, stuck_rules: list[StuckRule], now: datetime) -> dict[str, int]:
    """Per rule, how many orders are in its state with no change for longer than allowed."""
    o = t.orders.c
    with db.reader() as conn:
        return {
            rule.kind: int(
                conn.execute(
                    select(func.count())
                    .select_from(t.orders)
                    .where(o.state == rule.state.value, o.updated_at < now - rule.after)
                ).scalar_one()
            )
            for rule in stuck_rules
        }


def raise_stuck_alerts(db: Database, stuck_rules: list[StuckRule], batch: int = STUCK_BATCH) -> int:
    """Give newly stuck orders a STUCK event each (once per stay in the state) and, per rule,
    one alert naming them; at most `batch` orders per rule, oldest first, per call."""
    now = datetime.now(UTC)
    o = t.orders.c
    e = t.order_events.c
    raised = 0
    for rule in stuck_rules:
        # Flagged already: a STUCK event since the order last changed (entering the state sets
        # updated_at; a STUCK event does not), so a later stay in the state is flagged again.
        flagged = (
            select(e.seq)
            .where(e.order_seq == o.seq, e.type == "STUCK", e.created_at >= o.updated_at)
            .exists()
        )
        with db.transaction() as tx:
            found = tx.execute(
                select(o.seq, o.id)
                .where(
                    o.state == rule.state.value,
                    o.updated_at < now - rule.after,
                    ~flagged,
                )
                .order_by(o.updated_at, o.seq)
                .limit(batch)
            ).all()
            if not found:
                continue
            for seq, order_id in found:
                message = f"Order {order_id} has been {rule.state.value} for over {rule.after}."
                orders.insert_events(
                    tx,
                    seq,
                    [
                        EventRecord(
                            new_id(), now, "system", "STUCK", rule.state, rule.state, message
                        )
                    ],
                )
            ids = [order_id for _, order_id in found]
            alerts.raise_alert(
                tx,
                at=now,
                kind=f"STUCK_{rule.kind.upper()}",
                message=(
                    f"Order {ids[0]} has been {rule.state.value} for over {rule.after}."
                    if len(ids) == 1
                    else f"{len(ids)} orders have been {rule.state.value} for over {rule.after}."
                ),
                order_ids=ids,
            )
            raised += len(found)
    return raised
