"""Deliveries: take the ones due, settle each attempt, list them, deliver events again.

A delivery is one event for one endpoint. The sender takes due deliveries under a lease (on
PostgreSQL with SKIP LOCKED, so each attempt is made by one worker of one replica), sends them,
and settles each: DELIVERED on a 2xx, else PENDING again after the schedule's next wait, or
FAILED once the schedule is spent. A process that dies mid-attempt leaves the lease to expire;
the delivery is then taken again, with the same webhook-id (at least once).

An endpoint that has taken no delivery for ORDERGATE_WEBHOOK_DISABLE_AFTER_HOURS is disabled
with a WEBHOOK_ENDPOINT_DISABLED alert; its deliveries stay pending until it is enabled.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from ...domain.access import Principal
from ...domain.ids import new_id
from ...domain.limits import shown
from ...domain.webhooks import next_wait, wants
from ...storage import Database, alerts
from ...storage import tables as t
from ...storage import webhooks as store
from ..errors import ErrorKind, FieldViolation, ServiceError
from .endpoints import owned_endpoint

DELIVERED, RETRY, FAILED = "delivered", "retry", "failed"  # an attempt's outcome (metrics)
MAX_REDELIVER = 1000  # events one RedeliverWebhookEvents call may replay
DEFAULT_PAGE, MAX_PAGE = 50, 500  # deliveries per ListWebhookDeliveries page


@dataclass(frozen=True)
class Sent:
    """What one attempt came to: the receiver's status (None: no answer), how long, why not."""

    status_code: int | None
    latency_ms: int
    error: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def claim_due(
    db: Database, lease: timedelta, room: Callable[[int], int], limit: int
) -> list[store.Due]:
    """Up to `limit` deliveries due now, at most `room(client_id)` of a client's (so that a
    client whose receivers are slow or failing cannot take every slot from the others)."""
    now = datetime.now(UTC)
    with db.reader() as conn:
        if not store.any_due(conn, now):
            return []
    with db.transaction() as tx:
        return store.claim_due(
            tx, now, now + lease, room, limit, skip_locked=db.dialect == "postgresql"
        )


def settle(
    db: Database,
    due: store.Due,
    sent: Sent,
    *,
    schedule: list[timedelta],
    disable_after: timedelta,
    rng: random.Random,
) -> str:
    """Record the attempt and what follows from it; returns its outcome."""
    now = datetime.now(UTC)
    number = due.attempts + 1
    e = t.webhook_endpoints.c
    with db.transaction() as tx:
        if not store.delivery_exists(tx, due.delivery_id):
            return FAILED if not sent.ok else DELIVERED  # its endpoint was deleted meanwhile
        store.record_attempt(
            tx,
            due.delivery_id,
            number,
            at=now,
            status_code=sent.status_code,
            latency_ms=sent.latency_ms,
            error=sent.error,
        )
        if sent.ok:
            store.finish_delivery(
                tx,
                due.delivery_id,
                state=store.DELIVERED,
                attempts=number,
                next_attempt_at=None,
                delivered_at=now,
            )
            tx.execute(
                update(t.webhook_endpoints)
                .where(e.id == due.endpoint.id, e.failing_since.is_not(None))
                .values(failing_since=None)
            )
            return DELIVERED
        wait = next_wait(schedule, number, rng)
        store.finish_delivery(
            tx,
            due.delivery_id,
            state=store.PENDING if wait is not None else store.FAILED,
            attempts=number,
            next_attempt_at=now + wait if wait is not None else None,
        )
        tx.execute(
            update(t.webhook_endpoints)
            .where(e.id == due.endpoint.id, e.failing_since.is_(None))
            .values(failing_since=now)
        )
        failing_since = due.endpoint.failing_since or now
        if now - failing_since >= disable_after and due.endpoint.enabled:
            reason = (
                f"disabled {now:%Y-%m-%d %H:%M} UTC: no delivery taken since "
                f"{failing_since:%Y-%m-%d %H:%M} UTC (last: {sent.error or sent.status_code})"
            )
            disabled = tx.execute(
                update(t.webhook_endpoints)
                .where(e.id == due.endpoint.id, e.enabled.is_(True))
                .values(enabled=False, disabled_reason=reason, updated_at=now)
            ).rowcount
            if disabled:
                alerts.raise_alert(
                    tx,
                    at=now,
                    kind="WEBHOOK_ENDPOINT_DISABLED",
                    message=f"Webhook endpoint {due.endpoint.id} of {due.endpoint.client} "
                    f"({due.endpoint.url}) {reason}",
                    order_ids=[],
                )
        return RETRY if wait is not None else FAILED


def list_deliveries(
    db: Database,
    principal: Principal,
    *,
    endpoint_id: str,
    event_id: str,
    state: str,
    page_size: int,
    page_token: str,
) -> tuple[list[store.Delivery], str]:
    """Deliveries of the caller's endpoints (an admin: any), newest first, with every attempt;
    and the token of the next page ("" on the last)."""
    size = DEFAULT_PAGE if page_size <= 0 else min(page_size, MAX_PAGE)
    before = _decode_token(page_token) if page_token else None
    with db.reader() as conn:
        if endpoint_id:
            owned_endpoint(conn, principal, endpoint_id)
        own = principal.client_id if principal.sees_only_own_client else None
        found = store.list_deliveries(
            conn,
            own,
            endpoint_id=endpoint_id,
            event_id=event_id,
            state=state,
            before=before,
            limit=size + 1,
        )
    page = found[:size]
    token = _encode_token(page[-1]) if len(found) > size else ""
    return page, token


def _encode_token(last: store.Delivery) -> str:
    data = {"created": last.created_at.isoformat(), "id": last.id}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def _decode_token(token: str) -> tuple[datetime, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        created = datetime.fromisoformat(data["created"])
        last_id = str(data["id"])
    except (ValueError, KeyError, TypeError, AttributeError):
        created = None
    if created is None or created.tzinfo is None:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "PAGE_TOKEN_INVALID",
            "The page token is not one this server issued.",
            field_violations=[FieldViolation("page_token", "not a token this server issued")],
        )
    return created, last_id


def redeliver(
    db: Database,
    principal: Principal,
    endpoint_id: str,
    *,
    event_id: str,
    since: datetime | None,
    until: datetime | None,
) -> int:
    """Deliver one event (by id) or every event in a time range to the endpoint again, as new
    deliveries due now, whatever became of the earlier ones; returns how many. The events keep
    their ids, so a receiver that took them before recognises them."""
    if not event_id and since is None:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "REDELIVERY_UNBOUNDED",
            "Name an event id, or a time range (since, and until or now).",
            field_violations=[FieldViolation("event_id", "an event id, or give since")],
        )
    if since is not None and until is not None and until < since:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "TIME_RANGE_INVALID",
            "until is before since.",
            field_violations=[FieldViolation("until", "before since")],
        )
    now = datetime.now(UTC)
    with db.transaction() as tx:
        endpoint = owned_endpoint(tx, principal, endpoint_id)
        events = store.events_for_redelivery(
            tx,
            endpoint.client_id,
            event_id=event_id,
            since=since,
            until=until,
            limit=MAX_REDELIVER + 1,
        )
        if not event_id:  # a range: what the endpoint subscribes to
            events = [event for event in events if wants(endpoint.event_types, event.type)]
        if event_id and not events:
            raise ServiceError(
                ErrorKind.NOT_FOUND,
                "WEBHOOK_EVENT_NOT_FOUND",
                f"No event {shown(event_id)} of this client.",
            )
        if len(events) > MAX_REDELIVER:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                "REDELIVERY_TOO_LARGE",
                f"The range holds more than {MAX_REDELIVER} events: narrow it.",
                field_violations=[FieldViolation("until", f"more than {MAX_REDELIVER} events")],
            )
        store.insert_deliveries(
            tx,
            [
                {
                    "id": new_id(),
                    "event_seq": event.seq,
                    "endpoint_id": endpoint.id,
                    "state": store.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for event in events
            ],
        )
    return len(events)
