"""What the console's integration health page shows: per client, orders in and how long since
the last; held orders by reason and the oldest; unreadable documents; webhook deliveries that
fail. Read from the database, so every worker and replica shows the same."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, func, select

from ..storage import Database
from ..storage import tables as t
from ..storage.webhooks import FAILED, PENDING
from . import monitoring


@dataclass(frozen=True)
class ClientIntake:
    client: str
    role: str
    orders_last_day: int
    held_last_day: int
    problems_last_day: int  # documents that could not be read as an order (problem submissions)
    last_order_at: datetime | None  # None: not among the newest RECENT_ORDERS orders


@dataclass(frozen=True)
class IntegrationHealth:
    clients: list[ClientIntake]
    held_by_reason: dict[str, int]
    oldest_held_at: datetime | None
    webhook_failed: int  # deliveries given up on (FAILED)
    webhook_retrying: int  # deliveries pending after at least one failed attempt
    webhook_endpoints_disabled: int


# The per-client figures read at most this many of the newest orders (by the primary key), so
# the page costs the same with a year of history as with a day's.
RECENT_ORDERS = 10_000


def website_clients(db: Database) -> list[str]:
    with db.reader() as conn:
        rows = conn.execute(
            select(t.clients.c.name).where(t.clients.c.role == "website").order_by(t.clients.c.name)
        )
        return [row.name for row in rows]


def integration_health(db: Database, now: datetime | None = None) -> IntegrationHealth:
    now = now or datetime.now(UTC)
    since = now - timedelta(days=1)
    o, c = t.orders.c, t.clients.c
    d, e = t.webhook_deliveries.c, t.webhook_endpoints.c
    with db.reader() as conn:
        newest = conn.execute(select(func.max(o.seq))).scalar_one() or 0
        recent = (
            select(o.client_id, o.created_at, o.state, o.problem_submission)
            .where(o.seq > newest - RECENT_ORDERS)
            .subquery()
        )
        r = recent.c
        in_day = r.created_at >= since
        per_client = (
            select(
                c.name,
                c.role,
                func.count(case((in_day, 1))).label("orders"),
                func.count(case((and_(in_day, r.state == "ON_HOLD"), 1))).label("held"),
                func.count(case((and_(in_day, r.problem_submission), 1))).label("problems"),
                func.max(r.created_at).label("last_at"),
            )
            .select_from(t.clients.outerjoin(recent, r.client_id == c.id))
            .where(c.role == "website")
            .group_by(c.name, c.role)
            .order_by(c.name)
        )
        clients = [
            ClientIntake(
                row.name,
                row.role,
                int(row.orders),
                int(row.held),
                int(row.problems),
                _utc(row.last_at),
            )
            for row in conn.execute(per_client)
        ]
        failed = conn.execute(select(func.count()).where(d.state == FAILED)).scalar_one()
        retrying = conn.execute(
            select(func.count()).where(d.state == PENDING, d.attempts > 0)
        ).scalar_one()
        disabled = conn.execute(
            select(func.count()).select_from(t.webhook_endpoints).where(e.enabled.is_(False))
        ).scalar_one()
    return IntegrationHealth(
        clients,
        monitoring.held_reason_counts(db),
        monitoring.oldest_held_received_at(db),
        int(failed),
        int(retrying),
        int(disabled),
    )


def _utc(value: datetime | None) -> datetime | None:
    # max() of a timestamp column comes back without the column's type on SQLite.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
