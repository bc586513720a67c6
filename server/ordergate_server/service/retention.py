"""`ordergate prune`: bounded storage for years of orders (docs/operations.md, "Retention").

For orders finished long ago — DELIVERED or CANCELLED, last changed more than the state's
retention ago — it removes what is only worth keeping while an order is live: the raw
documents (the submissions keep their request id, hash and outcome, so a retry is still
answered and a duplicate still recognised) and the order events but the last (which says how
the order ended; the order, its lines and shipments stay). Webhook deliveries that are done
with (delivered or given up) go after their own retention. The audit log is never touched.

It works in batches, each its own transaction, so a long prune never holds locks for long
and can be stopped at any time; a per-state cursor (retention_cursors) remembers how far it
got, so each run reads only what finished since. A dry run counts what would go and changes
nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..domain.model import OrderState
from ..storage import Database
from ..storage import retention as store

BATCH = 500
FINAL_STATES = (OrderState.DELIVERED.value, OrderState.CANCELLED.value)


@dataclass
class Pruned:
    dry_run: bool
    orders: dict[str, int] = field(default_factory=dict)  # by state
    documents: int = 0
    document_bytes: int = 0
    events: int = 0
    webhook_deliveries: int = 0


def prune(
    db: Database,
    *,
    days_by_state: Mapping[str, float],
    webhook_days: float,
    dry_run: bool,
    now: datetime | None = None,
) -> Pruned:
    """Prune orders of each state in `days_by_state` (0: keep that state's forever) and
    finished webhook deliveries older than `webhook_days` (0: keep them)."""
    now = now or datetime.now(UTC)
    done = Pruned(dry_run)
    for state, days in days_by_state.items():
        if state not in FINAL_STATES:
            raise ValueError(f"{state} is not a final state: only {FINAL_STATES} are pruned")
        if days > 0:
            _prune_state(db, state, now - timedelta(days=days), done)
    if webhook_days > 0:
        _prune_deliveries(db, now - timedelta(days=webhook_days), done)
    return done


def _prune_state(db: Database, state: str, before: datetime, done: Pruned) -> None:
    with db.reader() as conn:
        after = store.cursor(conn, state)
    position: tuple[datetime, int] | None = None
    done.orders.setdefault(state, 0)
    while True:
        with db.reader() as conn:
            batch = store.finished_orders(conn, state, after, before, BATCH + 1)
        if position is not None:  # keyset within the run: ties on updated_at by seq
            batch = [row for row in batch if (row[2], row[0]) > position]
        batch = batch[:BATCH]
        if not batch:
            break
        seqs, ids = [seq for seq, _, _ in batch], [id_ for _, id_, _ in batch]
        if done.dry_run:
            with db.reader() as conn:
                documents, stored = store.document_bytes(conn, ids)
                events = len(store.old_events(conn, seqs))
        else:
            with db.transaction() as tx:
                documents, stored = store.document_bytes(tx, ids)
                old = store.old_events(tx, seqs)
                store.drop_documents(tx, ids)
                store.drop_events(tx, old)
                events = len(old)
        done.orders[state] += len(batch)
        done.documents += documents
        done.document_bytes += stored
        done.events += events
        position = (batch[-1][2], batch[-1][0])
        after = batch[-1][2] - timedelta(microseconds=1)  # re-read the last instant's ties
    if not done.dry_run:
        with db.transaction() as tx:
            store.set_cursor(tx, state, before)


def _prune_deliveries(db: Database, before: datetime, done: Pruned) -> None:
    if done.dry_run:
        with db.reader() as conn:
            done.webhook_deliveries = len(store.finished_deliveries(conn, before, 10**9))
        return
    while True:
        with db.transaction() as tx:
            ids = store.finished_deliveries(tx, before, BATCH)
            store.drop_deliveries(tx, ids)
        done.webhook_deliveries += len(ids)
        if len(ids) < BATCH:
            return
