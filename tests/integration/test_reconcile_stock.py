"""ReconcileStock, on SQLite and PostgreSQL, against a real server: every difference recorded,
INVENTORY_DIVERGENCE beyond the threshold as an alert, a `stock.divergence` webhook and a
metric; their count wins (orders left short go back to the queue); a dry run changes nothing;
a bad entry refuses the whole snapshot."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from sqlalchemy import select

from ordergate.v1 import inventory_service_pb2 as ipb
from ordergate.v1 import order_pb2
from ordergate.v1 import webhook_service_pb2 as wpb
from ordergate.v1.inventory_service_pb2_grpc import InventoryServiceStub
from ordergate.v1.webhook_service_pb2_grpc import WebhookServiceStub
from ordergate_server.storage import Database, audit
from ordergate_server.storage import tables as t

from ..support import (
    Api,
    Keys,
    ServerThread,
    WebhookReceiver,
    auth,
    order_xml,
    rich_error,
    scrape,
    wait_until,
)
from .goods_in import get_order, level
from .stock import stock_row
from .test_webhooks import FAST


@pytest.fixture
def served(db: Database, keys: Keys) -> Iterator[tuple[Api, ServerThread]]:
    server = ServerThread(db, **FAST)
    with grpc.insecure_channel(server.target) as channel:
        yield Api(channel, keys.shop), server
    server.stop()


def _reconcile(
    api: Api,
    key: str,
    entries: list[tuple[str, str, int]],
    *,
    dry_run: bool = False,
    threshold: float = 0,
    request_id: str | None = None,
) -> ipb.ReconcileStockResponse:
    return InventoryServiceStub(api.channel).ReconcileStock(
        ipb.ReconcileStockRequest(
            request_id=request_id or str(uuid.uuid4()),
            source="WMS nightly",
            entries=[
                ipb.StockCountEntry(code=code, location_code=location, quantity=quantity)
                for code, location, quantity in entries
            ],
            threshold_percent=threshold,
            dry_run=dry_run,
        ),
        metadata=auth(key),
    )


SNAPSHOT = [
    ("SKU-1001", "WH-MAIN", 500),  # the same
    ("SKU-1002", "WH-MAIN", 290),  # -3.3 %: recorded, not diverged
    ("CUP-SET-6", "STORE-BER", 10),  # an alias; -16.7 %: diverged
    ("SKU-1003", "STORE-BER", 4),  # we hold none there: diverged
]


def _alerts(db: Database) -> list[tuple[str, str, str]]:
    a = t.alerts.c
    with db.reader() as conn:
        rows = conn.execute(
            select(a.kind, a.sku, a.location).where(a.kind == "INVENTORY_DIVERGENCE")
        )
        return sorted((kind, sku, location) for kind, sku, location in rows)


def test_a_dry_run_reports_and_changes_nothing(api: Api, keys: Keys, db: Database) -> None:
    reply = _reconcile(api, keys.admin, SNAPSHOT, dry_run=True)
    assert (reply.dry_run, reply.compared, reply.diverged, reply.reconciliation_id) == (
        True,
        4,
        2,
        "",
    )
    assert [(d.sku, d.location_code, d.ours, d.theirs, d.diverged) for d in reply.differences] == [
        ("SKU-1002", "WH-MAIN", 300, 290, False),
        ("SKU-1001", "STORE-BER", 12, 10, True),
        ("SKU-1003", "STORE-BER", 0, 4, True),
    ]
    assert reply.threshold_percent == 5
    assert stock_row(db, "SKU-1002") == (300, 0)
    assert _alerts(db) == []


def test_their_count_wins_divergences_alert_webhook_and_metric(
    served: tuple[Api, ServerThread], keys: Keys, db: Database
) -> None:
    api, server = served
    receiver = WebhookReceiver()
    try:
        WebhookServiceStub(api.channel).CreateWebhookEndpoint(
            wpb.CreateWebhookEndpointRequest(
                client="ops-admin", url=receiver.url, event_types=["stock.divergence"]
            ),
            metadata=auth(keys.admin),
        )
        request_id = str(uuid.uuid4())
        reply = _reconcile(api, keys.admin, SNAPSHOT, request_id=request_id)
        assert (reply.dry_run, reply.diverged, bool(reply.reconciliation_id)) == (False, 2, True)
        assert stock_row(db, "SKU-1002") == (290, 0)
        assert stock_row(db, "SKU-1001", "STORE-BER") == (10, 0)
        assert stock_row(db, "SKU-1003", "STORE-BER") == (4, 0)
        assert _alerts(db) == [
            ("INVENTORY_DIVERGENCE", "SKU-1001", "STORE-BER"),
            ("INVENTORY_DIVERGENCE", "SKU-1003", "STORE-BER"),
        ]
        wait_until(lambda: len(receiver.events("stock.divergence")) == 2, "divergence webhooks")
        data = [r.event["data"] for r in receiver.events("stock.divergence")]
        assert sorted(d["sku"] for d in data) == ["SKU-1001", "SKU-1003"]
        samples = scrape(server)
        assert samples[("ordergate_inventory_divergences_total", (("location", "STORE-BER"),))] == 2

        again = _reconcile(api, keys.admin, SNAPSHOT, request_id=request_id)
        assert (again.replayed, again.reconciliation_id) == (True, reply.reconciliation_id)
        assert [d.theirs for d in again.differences] == [d.theirs for d in reply.differences]
        assert stock_row(db, "SKU-1002") == (290, 0)  # applied once
        assert len(_alerts(db)) == 2
        with db.reader() as conn:
            [entry] = audit.entries_for(conn, f"reconciliation/{reply.reconciliation_id}")
        assert entry.after == {"compared": 4, "differences": 3, "diverged": 2}
    finally:
        receiver.close()


def test_a_count_below_what_is_allocated_sends_the_newest_order_back(
    api: Api, keys: Keys, db: Database
) -> None:
    older = api.submit(order_xml("OLD", [("SKU-1003", 20)])).order
    newer = api.submit(order_xml("NEW", [("SKU-1003", 15)])).order
    reply = _reconcile(api, keys.manager, [("SKU-1003", "WH-MAIN", 30)])
    assert list(reply.oversold_order_ids) == [newer.id]
    assert get_order(api, keys.shop, newer.id).state == order_pb2.ORDER_STATE_ON_HOLD
    assert get_order(api, keys.shop, older.id).state == order_pb2.ORDER_STATE_ACCEPTED
    assert stock_row(db, "SKU-1003") == (30, 20)


def test_quarantine_counts_as_ours_and_gives_way_last(api: Api, keys: Keys) -> None:
    InventoryServiceStub(api.channel).AdjustStock(
        ipb.AdjustStockRequest(
            request_id=str(uuid.uuid4()),
            code="SKU-2001",
            location_code="WH-MAIN",
            delta=5,
            reason_code="RETURNED",
            bucket=ipb.STOCK_BUCKET_QUARANTINE,
        ),
        metadata=auth(keys.manager),
    )
    same = _reconcile(api, keys.admin, [("SKU-2001", "WH-MAIN", 30)])
    assert list(same.differences) == []  # 25 sellable + 5 quarantined = 30
    _reconcile(api, keys.admin, [("SKU-2001", "WH-MAIN", 3)])
    stock = level(api, keys.admin, "SKU-2001")
    assert (stock.on_hand, stock.quarantine) == (0, 3)


def test_a_custom_threshold(api: Api, keys: Keys) -> None:
    reply = _reconcile(api, keys.admin, SNAPSHOT, dry_run=True, threshold=20)
    assert [d.sku for d in reply.differences if d.diverged] == ["SKU-1003"]


@pytest.mark.parametrize(
    ("entries", "reason", "field"),
    [
        ([("NOPE", "WH-MAIN", 1)], "ENTRIES_INVALID", "entries[1].code"),
        ([("SKU-1002", "NOWHERE", 1)], "ENTRIES_INVALID", "entries[1].location_code"),
        ([("KIT-1", "WH-MAIN", 1)], "ENTRIES_INVALID", "entries[1].code"),
        ([("SKU-1001", "WH-MAIN", 3)], "ENTRIES_INVALID", "entries[1]"),  # twice
        ([("SKU-1002", "WH-MAIN", -1)], "ENTRIES_INVALID", "entries[1].quantity"),
    ],
)
def test_a_bad_entry_refuses_the_whole_snapshot(
    api: Api, keys: Keys, db: Database, entries: list[tuple[str, str, int]], reason: str, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        _reconcile(api, keys.admin, [("SKU-1001", "WH-MAIN", 1), *entries])
    error = rich_error(refused.value)
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
    assert error.field_violations[0][0] == field
    assert stock_row(db, "SKU-1001") == (500, 0)  # the good entry was not applied either


def test_roles(api: Api, keys: Keys) -> None:
    for key in (keys.shop, keys.warehouse, keys.operations, keys.finance):
        with pytest.raises(grpc.RpcError) as refused:
            _reconcile(api, key, SNAPSHOT, dry_run=True)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
