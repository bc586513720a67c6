"""What every change to an order starts and ends with: the order, locked and visible to the
caller; then its event and its audit entry, written in the same transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from ..domain.access import Principal
from ..domain.ids import new_id
from ..domain.limits import shown
from ..domain.model import OrderState
from ..domain.records import EventRecord, OrderRecord
from ..storage import audit, orders
from .errors import ErrorKind, ServiceError


@dataclass(frozen=True)
class Locked:
    """An order, its row locked until the transaction ends (PostgreSQL)."""

    seq: int
    order: OrderRecord


def locked_order(tx: Connection, principal: Principal, order_id: str) -> Locked:
    """The order, locked, if the caller may see it; NOT_FOUND otherwise (a website asking for
    another client's order is answered exactly as for one that does not exist)."""
    seq = orders.seq_of(tx, order_id, lock=True)
    own = principal.client_id if principal.sees_only_own_client else None
    order = orders.get_order(tx, client_id=own, order_id=order_id) if seq is not None else None
    if seq is None or order is None:
        raise not_found(order_id)
    return Locked(seq, order)


def not_found(order_id: str) -> ServiceError:
    return ServiceError(
        ErrorKind.NOT_FOUND,
        "ORDER_NOT_FOUND",
        f"No order {shown(order_id)} is visible to this client.",
        metadata={"order": order_id},
    )


def reload(tx: Connection, order_id: str) -> OrderRecord:
    """The order as the transaction now sees it (to answer with)."""
    order = orders.get_order(tx, client_id=None, order_id=order_id)
    assert order is not None, order_id
    return order


def record_change(
    tx: Connection,
    actor: Principal | None,
    locked: Locked,
    *,
    event: str,
    new_state: OrderState,
    detail: str,
    now: datetime,
    action: str = "",
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """The order's event (by `actor`, or `system` when None) and, for a person's or a key's
    action, its audit entry (`action` on `order/<id>`, with the reason and what changed)."""
    orders.insert_events(
        tx,
        locked.seq,
        [
            EventRecord(
                new_id(),
                now,
                actor.client_name if actor else "system",
                event,
                locked.order.state,
                new_state,
                detail,
            )
        ],
    )
    if actor is not None and action:
        audit.record(
            tx,
            [
                audit.AuditEntry(
                    at=now,
                    actor=actor.client_name,
                    role=actor.role.value,
                    action=action,
                    subject=f"order/{locked.order.id}",
                    reason=reason,
                    before=before if before is not None else {"state": locked.order.state.value},
                    after=after if after is not None else {"state": new_state.value},
                )
            ],
        )
