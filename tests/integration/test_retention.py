"""`ordergate prune`, on SQLite and PostgreSQL: the documents and old events of orders finished
long ago go, what idempotency, duplicate detection and the audit log need stays; a dry run
counts and changes nothing; a second run reads only what finished since."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select, update

from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate_server.service import retention
from ordergate_server.storage import Database
from ordergate_server.storage import tables as t

from ..support import Api, Keys, auth, order_xml, rich_error
from .test_shipments import _at, _packed, _ship, _update

S = order_pb2
DAYS = {"DELIVERED": 365.0, "CANCELLED": 90.0}


def _age(db: Database, order_id: str, days: float) -> None:
    """Make the order look last changed `days` ago."""
    with db.transaction() as tx:
        tx.execute(
            update(t.orders)
            .where(t.orders.c.id == order_id)
            .values(updated_at=datetime.now(UTC) - timedelta(days=days))
        )


def _count(db: Database, table: str) -> int:
    with db.reader() as conn:
        return int(
            conn.execute(select(func.count()).select_from(t.metadata.tables[table])).scalar_one()
        )


def _delivered(api: Api, keys: Keys, order_id: str) -> str:
    order = api.submit(order_xml(order_id)).order
    _packed(api, keys, order.id)
    shipped = _ship(api, keys, order.id, tracking_number="JJD1")
    _update(
        api,
        keys,
        shipped.shipment.id,
        state=S.SHIPMENT_STATE_DELIVERED,
        delivery_time=_at("2026-12-05T10:00:00Z"),
    )
    return order.id


def test_old_finished_orders_lose_documents_and_old_events_only(
    api: Api, keys: Keys, db: Database
) -> None:
    request_id = str(uuid.uuid4())
    old = api.submit(order_xml("OLD-1"), request_id=request_id).order
    _packed(api, keys, old.id)
    shipped = _ship(api, keys, old.id, tracking_number="JJD1")
    _update(
        api,
        keys,
        shipped.shipment.id,
        state=S.SHIPMENT_STATE_DELIVERED,
        delivery_time=_at("2026-12-05T10:00:00Z"),
    )
    recent = _delivered(api, keys, "RECENT-1")
    cancelled = api.submit(order_xml("GONE-1")).order
    api.orders.CancelOrder(
        pb.CancelOrderRequest(id=cancelled.id, reason="buyer called"), metadata=auth(keys.shop)
    )
    live = api.submit(order_xml("LIVE-1")).order  # accepted: never pruned, however old
    _age(db, old.id, 400)
    _age(db, cancelled.id, 100)
    _age(db, live.id, 1000)
    events_before, audit_before = _count(db, "order_events"), _count(db, "audit_entries")

    dry = retention.prune(db, days_by_state=DAYS, webhook_days=0, dry_run=True)
    assert (dry.orders, dry.documents) == ({"DELIVERED": 1, "CANCELLED": 1}, 2)
    assert dry.events > 0
    assert dry.document_bytes > 0
    assert _count(db, "order_events") == events_before  # nothing changed

    done = retention.prune(db, days_by_state=DAYS, webhook_days=0, dry_run=False)
    assert (done.orders, done.documents, done.events) == (dry.orders, 2, dry.events)
    assert _count(db, "order_events") == events_before - done.events
    assert _count(db, "audit_entries") == audit_before  # the audit log is never touched

    for pruned in (old.id, cancelled.id):
        with pytest.raises(grpc.RpcError) as gone:
            api.orders.GetOrderDocument(
                pb.GetOrderDocumentRequest(id=pruned), metadata=auth(keys.shop)
            )
        assert rich_error(gone.value).reason == "DOCUMENT_NOT_FOUND"
    kept = api.orders.GetOrder(pb.GetOrderRequest(id=old.id), metadata=auth(keys.shop)).order
    assert kept.state == S.ORDER_STATE_DELIVERED
    assert [e.type for e in kept.events] == ["DELIVERED"]  # how it ended
    assert [len(s.lines) for s in kept.shipments] == [1]
    for untouched in (recent, live.id):
        api.orders.GetOrderDocument(
            pb.GetOrderDocumentRequest(id=untouched), metadata=auth(keys.shop)
        )

    # A retry of the pruned order's submission is still answered, and its content still known.
    again = api.submit(order_xml("OLD-1"), request_id=request_id)
    assert (again.replayed, again.order.id) == (True, old.id)
    copy = api.submit(order_xml("OLD-1"))
    assert copy.order.id == old.id

    # The next run reads only what finished since.
    assert retention.prune(db, days_by_state=DAYS, webhook_days=0, dry_run=True).orders == {
        "DELIVERED": 0,
        "CANCELLED": 0,
    }


def test_finished_webhook_deliveries_go_after_their_days(db: Database, keys: Keys) -> None:
    now = datetime.now(UTC)
    with db.transaction() as tx:
        client_id = tx.execute(
            select(t.clients.c.id).where(t.clients.c.name == "shop-a")
        ).scalar_one()
        tx.execute(
            t.webhook_endpoints.insert().values(
                id="ep-1",
                client_id=client_id,
                url="https://example.com/hook",
                event_types=[],
                enabled=True,
                secret="whsec_x",
                created_at=now,
                updated_at=now,
            )
        )
        for n, (state, age) in enumerate(
            [("DELIVERED", 40), ("FAILED", 40), ("PENDING", 40), ("DELIVERED", 1)]
        ):
            seq = tx.execute(
                t.webhook_events.insert().values(
                    id=f"evt_{n}", type="order.accepted", occurred_at=now, data={}
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            tx.execute(
                t.webhook_deliveries.insert().values(
                    id=f"d-{n}",
                    event_seq=seq,
                    endpoint_id="ep-1",
                    state=state,
                    attempts=1,
                    created_at=now - timedelta(days=age),
                )
            )
            tx.execute(
                t.webhook_attempts.insert().values(
                    delivery_id=f"d-{n}", number=1, at=now, status_code=200, latency_ms=5
                )
            )
    done = retention.prune(db, days_by_state={}, webhook_days=30, dry_run=False)
    assert done.webhook_deliveries == 2
    with db.reader() as conn:
        left = sorted(conn.execute(select(t.webhook_deliveries.c.id)).scalars())
    assert left == ["d-2", "d-3"]  # pending ones are never dropped, recent ones kept
    assert (_count(db, "webhook_events"), _count(db, "webhook_attempts")) == (2, 2)


def test_the_command_says_what_it_would_do(db: Database, keys: Keys) -> None:
    url = db.engine.url.render_as_string(hide_password=False)
    command = [
        str(Path(sys.executable).parent / "ordergate"),
        "--database-url",
        url,
        "prune",
        "--dry-run",
        "--delivered-days",
        "365",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "DELIVERED: 0 orders older than 365 days" in done.stdout
    assert "CANCELLED: 0 orders kept forever" in done.stdout
    assert "(dry run: nothing changed)" in done.stdout
