"""Scale-out: two server instances on different ports, each with its own connection pool, on one
database (PostgreSQL, and SQLite for replicas on one machine). Concurrent orders for the same
scarce stock through both never oversell or duplicate; a watch on one instance sees what is done
through the other within a second."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from ordergate.v1 import inventory_service_pb2 as inventory
from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1.inventory_service_pb2_grpc import InventoryServiceStub
from ordergate_server.storage import Database, catalog, open_database

from ..support import Api, Keys, ServerThread, auth, order_xml
from .stock import count, stock_row

SCARCE = "SKU-1005"  # 200 on hand at WH-MAIN, nowhere else; set to 25 for the test


@pytest.fixture
def two_instances(db: Database, keys: Keys) -> Iterator[tuple[ServerThread, ServerThread]]:
    url = db.engine.url.render_as_string(hide_password=False)
    own_pools = [open_database(url), open_database(url)]
    servers = (ServerThread(own_pools[0]), ServerThread(own_pools[1]))
    yield servers
    for server in servers:
        server.stop()
    for pool in own_pools:
        pool.dispose()


def test_concurrent_orders_through_two_instances_never_oversell(
    db: Database, keys: Keys, two_instances: tuple[ServerThread, ServerThread]
) -> None:
    set_stock(db, SCARCE, 25)
    channels = [grpc.insecure_channel(s.target) for s in two_instances]
    apis = [Api(channel, keys.shop) for channel in channels]
    request_ids = [str(uuid.uuid4()) for _ in range(60)]

    def submit(n: int, through: int) -> pb.SubmitOrderResponse:
        return apis[through].submit(
            order_xml(f"SCARCE-{n}", [(SCARCE, 1)]), request_id=request_ids[n]
        )

    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            first = list(pool.map(lambda n: submit(n, n % 2), range(60)))
            # Every retry, through the other instance, is answered from the first submission.
            again = list(pool.map(lambda n: submit(n, (n + 1) % 2), range(60)))
    finally:
        for channel in channels:
            channel.close()

    accepted = [r for r in first if r.order.state == order_pb2.ORDER_STATE_ACCEPTED]
    held = [r for r in first if r.order.state == order_pb2.ORDER_STATE_ON_HOLD]
    assert (len(accepted), len(held)) == (25, 35), [r.order.hold_reasons for r in held][:1]
    assert all(r.order.hold_reasons[0].code == "INSUFFICIENT_STOCK" for r in held)
    assert stock_row(db, SCARCE) == (25, 25)  # allocated exactly what is on hand
    assert all(r.replayed for r in again)
    assert [r.order.id for r in again] == [r.order.id for r in first]
    assert count(db, "orders") == 60
    assert count(db, "submissions") == 60


def test_a_watch_on_one_instance_sees_changes_made_through_the_other(
    keys: Keys, two_instances: tuple[ServerThread, ServerThread]
) -> None:
    watcher, writer = two_instances
    with (
        grpc.insecure_channel(watcher.target) as watching,
        grpc.insecure_channel(writer.target) as writing,
    ):
        stock: Any = InventoryServiceStub(watching).WatchStockLevels(
            inventory.WatchStockLevelsRequest(codes=["SKU-1003"]),
            metadata=auth(keys.shop),
            timeout=30,
        )
        assert next(stock).WhichOneof("event") == "snapshot"
        anchor = Api(watching, keys.shop).submit(order_xml("ANCHOR-1")).order.events[0].id
        events: Any = Api(watching, keys.shop).orders.WatchOrderEvents(
            pb.WatchOrderEventsRequest(after_event_id=anchor), metadata=auth(keys.shop), timeout=30
        )

        order = Api(writing, keys.shop).submit(order_xml("ELSEWHERE-1", [("SKU-1003", 2)])).order
        committed = time.monotonic()
        change = next(stock).change
        stock_latency = time.monotonic() - committed
        event = next(events)
        event_latency = time.monotonic() - committed
        stock.cancel()
        events.cancel()

    assert (change.sku, change.kind, change.order_id) == ("SKU-1003", "ALLOCATION", order.id)
    assert event.order_id == order.id
    assert stock_latency < 1.0
    assert event_latency < 1.0


def set_stock(db: Database, sku: str, on_hand: int) -> None:
    with db.transaction() as tx:
        catalog.set_stock(tx, [{"sku": sku, "location": "WH-MAIN", "on_hand": on_hand}])
