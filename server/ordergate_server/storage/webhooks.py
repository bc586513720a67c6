"""Webhook endpoints, events, deliveries and attempts (tables.webhook_*)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, func, or_, select, update

from . import pii
from . import tables as t

PENDING, DELIVERED, FAILED = "PENDING", "DELIVERED", "FAILED"


@dataclass(frozen=True)
class Endpoint:
    id: str
    client_id: int
    client: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: str
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime

    def secrets(self, now: datetime) -> list[str]:
        """The secrets that sign now: the current one, and during a rotation's overlap the
        previous one too (a receiver still holding it keeps verifying)."""
        current = [self.secret]
        if self.previous_secret and self.previous_secret_until and now < self.previous_secret_until:
            current.append(self.previous_secret)
        return current


def _endpoints() -> Any:
    e = t.webhook_endpoints.c
    return select(t.webhook_endpoints, t.clients.c.name.label("client")).join(
        t.clients, t.clients.c.id == e.client_id
    )


def _endpoint(conn: Connection, row: Row[Any]) -> Endpoint:
    return Endpoint(
        id=row.id,
        client_id=row.client_id,
        client=row.client,
        url=row.url,
        event_types=list(row.event_types or []),
        description=row.description,
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        secret=pii.open_text(conn, row.secret, "webhook_endpoints.secret"),
        previous_secret=pii.open_text(conn, row.previous_secret, "webhook_endpoints.secret")
        if row.previous_secret
        else None,
        previous_secret_until=row.previous_secret_until,
        failing_since=row.failing_since,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def seal_secret(conn: Connection, secret: str) -> str:
    return pii.seal_text(conn, secret, "webhook_endpoints.secret")


def insert_endpoint(conn: Connection, **values: Any) -> None:
    conn.execute(t.webhook_endpoints.insert().values(**values))


def update_endpoint(conn: Connection, endpoint_id: str, **values: Any) -> None:
    conn.execute(
        t.webhook_endpoints.update().where(t.webhook_endpoints.c.id == endpoint_id).values(**values)
    )


def get_endpoint(conn: Connection, endpoint_id: str, client_id: int | None) -> Endpoint | None:
    """The endpoint, if it exists and (with `client_id`) is that client's."""
    query = _endpoints().where(t.webhook_endpoints.c.id == endpoint_id)
    if client_id is not None:
        query = query.where(t.webhook_endpoints.c.client_id == client_id)
    row = conn.execute(query).first()
    return _endpoint(conn, row) if row is not None else None


def list_endpoints(conn: Connection, client_id: int | None) -> list[Endpoint]:
    query = _endpoints().order_by(t.webhook_endpoints.c.created_at, t.webhook_endpoints.c.id)
    if client_id is not None:
        query = query.where(t.webhook_endpoints.c.client_id == client_id)
    return [_endpoint(conn, row) for row in conn.execute(query)]


def enabled_endpoints(conn: Connection) -> list[Endpoint]:
    """Every enabled endpoint (the fan-out's recipients)."""
    query = _endpoints().where(t.webhook_endpoints.c.enabled.is_(True))
    return [_endpoint(conn, row) for row in conn.execute(query)]


def delete_endpoint(conn: Connection, endpoint_id: str) -> None:
    d = t.webhook_deliveries.c
    deliveries = select(d.id).where(d.endpoint_id == endpoint_id)
    conn.execute(
        t.webhook_attempts.delete().where(t.webhook_attempts.c.delivery_id.in_(deliveries))
    )
    conn.execute(t.webhook_deliveries.delete().where(d.endpoint_id == endpoint_id))
    conn.execute(t.webhook_endpoints.delete().where(t.webhook_endpoints.c.id == endpoint_id))


# --- events and the fan-out's cursors --------------------------------------------------------


def cursor(conn: Connection, log: str) -> int:
    """How far the fan-out has read `log`. The migration starts each cursor at its log's end;
    one missing (its row deleted) starts before the oldest entry still in the log."""
    found = conn.execute(
        select(t.webhook_cursors.c.after_seq).where(t.webhook_cursors.c.log == log)
    ).scalar_one_or_none()
    if found is not None:
        return int(found)
    table = LOGS[log]
    oldest = conn.execute(select(func.min(table.c.seq))).scalar_one_or_none()
    return int(oldest) - 1 if oldest is not None else 0


LOGS = {"order_events": t.order_events, "stock_changes": t.stock_changes, "alerts": t.alerts}


def set_cursor(conn: Connection, log: str, after_seq: int) -> None:
    changed = conn.execute(
        update(t.webhook_cursors).where(t.webhook_cursors.c.log == log).values(after_seq=after_seq)
    )
    if changed.rowcount == 0:
        conn.execute(t.webhook_cursors.insert().values(log=log, after_seq=after_seq))


def insert_event(
    conn: Connection,
    *,
    event_id: str,
    type_: str,
    client_id: int | None,
    occurred_at: datetime,
    data: dict[str, Any],
) -> int:
    return int(
        conn.execute(
            t.webhook_events.insert()
            .values(
                id=event_id, type=type_, client_id=client_id, occurred_at=occurred_at, data=data
            )
            .returning(t.webhook_events.c.seq)
        ).scalar_one()
    )


@dataclass(frozen=True)
class Event:
    seq: int
    id: str
    type: str
    client_id: int | None
    occurred_at: datetime
    data: dict[str, Any]


def events_for_redelivery(
    conn: Connection,
    client_id: int,
    *,
    event_id: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int,
) -> list[Event]:
    """A client's events (its own and every client's stock events): one by id, or a range."""
    w = t.webhook_events.c
    query = select(t.webhook_events).where(or_(w.client_id == client_id, w.client_id.is_(None)))
    if event_id:
        query = query.where(w.id == event_id)
    if since is not None:
        query = query.where(w.occurred_at >= since)
    if until is not None:
        query = query.where(w.occurred_at <= until)
    rows = conn.execute(query.order_by(w.seq).limit(limit))
    return [Event(r.seq, r.id, r.type, r.client_id, r.occurred_at, dict(r.data)) for r in rows]


def insert_deliveries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(t.webhook_deliveries.insert(), list(rows))


# --- deliveries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """A delivery to attempt now, with what it sends and where."""

    delivery_id: str
    attempts: int
    event: Event
    endpoint: Endpoint


def any_due(conn: Connection, now: datetime) -> bool:
    """Whether some delivery may be due now (a read, before claim_due's write transaction)."""
    d = t.webhook_deliveries.c
    found = conn.execute(
        select(d.id).where(d.state == PENDING, d.next_attempt_at <= now).limit(1)
    ).first()
    return found is not None


def claim_due(
    conn: Connection,
    now: datetime,
    lease_until: datetime,
    room: Callable[[int], int],
    limit: int,
    *,
    skip_locked: bool,
) -> list[Due]:
    """Take up to `limit` deliveries due now (pending, not leased, to an enabled endpoint), at
    most `room(client_id)` of each client's, oldest due first: leased to the caller until
    `lease_until`. On PostgreSQL the rows are locked with SKIP LOCKED, so workers and replicas
    taking at once each take others; on SQLite the write transaction is the lock."""
    d, e = t.webhook_deliveries.c, t.webhook_endpoints.c
    query = (
        select(d.id, e.client_id)
        .join(t.webhook_endpoints, e.id == d.endpoint_id)
        .where(
            d.state == PENDING,
            d.next_attempt_at <= now,
            or_(d.lease_until.is_(None), d.lease_until < now),
            e.enabled.is_(True),
        )
        .order_by(d.next_attempt_at)
        .limit(limit * 4)  # room to pass over a client that has no room left
    )
    if skip_locked:
        query = query.with_for_update(of=t.webhook_deliveries, skip_locked=True)
    taken: dict[int, int] = {}
    ids: list[str] = []
    for row in conn.execute(query):
        if len(ids) < limit and taken.get(row.client_id, 0) < room(row.client_id):
            taken[row.client_id] = taken.get(row.client_id, 0) + 1
            ids.append(row.id)
    if not ids:
        return []
    conn.execute(update(t.webhook_deliveries).where(d.id.in_(ids)).values(lease_until=lease_until))
    rows = conn.execute(
        select(d.id.label("delivery_id"), d.attempts, d.endpoint_id, t.webhook_events)
        .join(t.webhook_events, t.webhook_events.c.seq == d.event_seq)
        .where(d.id.in_(ids))
    ).all()
    endpoints = {
        ep.id: ep
        for ep in (
            _endpoint(conn, row)
            for row in conn.execute(_endpoints().where(e.id.in_({row.endpoint_id for row in rows})))
        )
    }
    return [
        Due(
            r.delivery_id,
            r.attempts,
            Event(r.seq, r.id, r.type, r.client_id, r.occurred_at, dict(r.data)),
            endpoints[r.endpoint_id],
        )
        for r in rows
    ]


def record_attempt(
    conn: Connection,
    delivery_id: str,
    number: int,
    *,
    at: datetime,
    status_code: int | None,
    latency_ms: int,
    error: str,
) -> None:
    conn.execute(
        t.webhook_attempts.insert().values(
            delivery_id=delivery_id,
            number=number,
            at=at,
            status_code=status_code,
            latency_ms=latency_ms,
            error=error,
        )
    )


def delivery_exists(conn: Connection, delivery_id: str) -> bool:
    d = t.webhook_deliveries.c
    return conn.execute(select(d.id).where(d.id == delivery_id)).first() is not None


def finish_delivery(conn: Connection, delivery_id: str, **values: Any) -> None:
    conn.execute(
        update(t.webhook_deliveries)
        .where(t.webhook_deliveries.c.id == delivery_id)
        .values(lease_until=None, **values)
    )


@dataclass(frozen=True)
class Attempt:
    number: int
    at: datetime
    status_code: int | None
    latency_ms: int
    error: str


@dataclass(frozen=True)
class Delivery:
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    log: list[Attempt]


def list_deliveries(
    conn: Connection,
    client_id: int | None,
    *,
    endpoint_id: str = "",
    event_id: str = "",
    state: str = "",
    before: tuple[datetime, str] | None = None,
    limit: int,
) -> list[Delivery]:
    """Deliveries newest first (after `before`, a page's last (created_at, id)), with their
    attempts."""
    d, e, w = t.webhook_deliveries.c, t.webhook_endpoints.c, t.webhook_events.c
    query = (
        select(d.id, d.endpoint_id, w.id.label("event_id"), w.type, d.state, d.attempts)
        .add_columns(d.next_attempt_at, d.created_at, d.delivered_at)
        .join(t.webhook_endpoints, e.id == d.endpoint_id)
        .join(t.webhook_events, w.seq == d.event_seq)
    )
    if client_id is not None:
        query = query.where(e.client_id == client_id)
    if endpoint_id:
        query = query.where(d.endpoint_id == endpoint_id)
    if event_id:
        query = query.where(w.id == event_id)
    if state:
        query = query.where(d.state == state)
    if before is not None:
        query = query.where(
            or_(d.created_at < before[0], and_(d.created_at == before[0], d.id < before[1]))
        )
    rows = conn.execute(query.order_by(d.created_at.desc(), d.id.desc()).limit(limit)).all()
    attempts: dict[str, list[Attempt]] = {}
    if rows:
        a = t.webhook_attempts.c
        for row in conn.execute(
            select(t.webhook_attempts)
            .where(a.delivery_id.in_([r.id for r in rows]))
            .order_by(a.delivery_id, a.number)
        ):
            attempts.setdefault(row.delivery_id, []).append(
                Attempt(row.number, row.at, row.status_code, row.latency_ms, row.error)
            )
    return [
        Delivery(
            r.id,
            r.endpoint_id,
            r.event_id,
            r.type,
            r.state,
            r.attempts,
            r.next_attempt_at,
            r.created_at,
            r.delivered_at,
            attempts.get(r.id, []),
        )
        for r in rows
    ]


def oldest_pending(conn: Connection) -> datetime | None:
    """When the longest-waiting pending delivery to an enabled endpoint was made (a disabled
    endpoint's wait for it to be enabled again; its alert says so)."""
    d, e = t.webhook_deliveries.c, t.webhook_endpoints.c
    return conn.execute(
        select(func.min(d.created_at))
        .join(t.webhook_endpoints, e.id == d.endpoint_id)
        .where(d.state == PENDING, e.enabled.is_(True))
    ).scalar_one_or_none()
