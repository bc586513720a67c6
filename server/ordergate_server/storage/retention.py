"""What `ordergate prune` reads and removes (service/retention.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, delete, func, select, update

from . import tables as t
from .submissions import PRUNED
from .upsert import upsert

_o, _s, _e = t.orders.c, t.submissions.c, t.order_events.c


def cursor(conn: Connection, state: str) -> datetime | None:
    """Orders of `state` last changed up to this time are pruned already."""
    c = t.retention_cursors.c
    return conn.execute(select(c.pruned_until).where(c.state == state)).scalar_one_or_none()


def set_cursor(conn: Connection, state: str, until: datetime) -> None:
    upsert(conn, t.retention_cursors, [{"state": state, "pruned_until": until}], ["state"])


def finished_orders(
    conn: Connection, state: str, after: datetime | None, before: datetime, limit: int
) -> list[tuple[int, str, datetime]]:
    """(seq, id, updated_at) of orders in `state` last changed after `after` and before
    `before`, oldest change first: a range of the (updated_at, seq) index."""
    query = (
        select(_o.seq, _o.id, _o.updated_at)
        .where(_o.updated_at < before, _o.state == state)
        .order_by(_o.updated_at, _o.seq)
        .limit(limit)
    )
    if after is not None:
        query = query.where(_o.updated_at > after)
    return [(int(seq), str(id_), at) for seq, id_, at in conn.execute(query)]


def document_bytes(conn: Connection, order_ids: Sequence[str]) -> tuple[int, int]:
    """(documents, stored bytes) of these orders' submissions that still hold one."""
    documents, stored = conn.execute(
        select(func.count(), func.coalesce(func.sum(func.length(_s.payload)), 0)).where(
            _s.order_id.in_(order_ids), _s.payload != PRUNED
        )
    ).one()
    return int(documents), int(stored)


def drop_documents(conn: Connection, order_ids: Sequence[str]) -> None:
    """Empty the payloads; the rows stay (request ids, hashes and outcomes: idempotency and
    duplicate detection)."""
    conn.execute(
        update(t.submissions)
        .where(_s.order_id.in_(order_ids), _s.payload != PRUNED)
        .values(payload=PRUNED)
    )


def old_events(conn: Connection, order_seqs: Sequence[int]) -> list[int]:
    """Seqs of these orders' events but each order's last (which says how it ended)."""
    last = (
        select(func.max(_e.seq)).where(_e.order_seq.in_(order_seqs)).group_by(_e.order_seq)
    ).scalar_subquery()
    rows = conn.execute(select(_e.seq).where(_e.order_seq.in_(order_seqs), _e.seq.not_in(last)))
    return [int(seq) for (seq,) in rows]


def drop_events(conn: Connection, seqs: Sequence[int]) -> None:
    if seqs:
        conn.execute(delete(t.order_events).where(_e.seq.in_(seqs)))


def finished_deliveries(conn: Connection, before: datetime, limit: int) -> list[str]:
    """Webhook deliveries done with (delivered or given up) and made before `before`."""
    d = t.webhook_deliveries.c
    rows = conn.execute(
        select(d.id)
        .where(d.created_at < before, d.state.in_(("DELIVERED", "FAILED")))
        .order_by(d.created_at)
        .limit(limit)
    )
    return [str(id_) for (id_,) in rows]


def drop_deliveries(conn: Connection, ids: Sequence[str]) -> None:
    """The deliveries, their attempts, and the events no delivery names any more."""
    d, a, w = t.webhook_deliveries.c, t.webhook_attempts.c, t.webhook_events.c
    if not ids:
        return
    events = select(d.event_seq).where(d.id.in_(ids)).distinct()
    event_seqs = [int(seq) for (seq,) in conn.execute(events)]
    conn.execute(delete(t.webhook_attempts).where(a.delivery_id.in_(ids)))
    conn.execute(delete(t.webhook_deliveries).where(d.id.in_(ids)))
    still = select(d.event_seq).where(d.event_seq.in_(event_seqs))
    conn.execute(delete(t.webhook_events).where(and_(w.seq.in_(event_seqs), w.seq.not_in(still))))
