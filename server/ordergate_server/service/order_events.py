"""Watching order events: the order_events table, in id order, filtered to what the caller sees."""

from __future__ import annotations

from ..domain.access import Principal
from ..storage import Database, orders
from .errors import ErrorKind, FieldViolation, ServiceError

POLL_SECONDS = 0.1


def start_after(db: Database, after_event_id: str) -> int:
    """The position to stream from: after the given event, or after the newest one."""
    with db.reader() as conn:
        if not after_event_id:
            return orders.last_event_seq(conn)
        seq = orders.event_seq(conn, after_event_id)
    if seq is None:
        raise ServiceError(
            ErrorKind.NOT_FOUND,
            "EVENT_NOT_FOUND",
            f"No event {after_event_id}.",
            field_violations=[FieldViolation("after_event_id", "unknown event id")],
        )
    return seq


def poll(db: Database, cursor: int) -> list[orders.LoggedEvent]:
    with db.reader() as conn:
        return orders.events_after(conn, cursor)


def visible(principal: Principal, event: orders.LoggedEvent) -> bool:
    return not principal.sees_only_own_client or event.client_id == principal.client_id
