"""Failures around the request: transport limits and a database that goes away."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import create_engine, text

from ordergate.v1 import inventory_service_pb2 as inventory
from ordergate.v1.inventory_service_pb2_grpc import InventoryServiceStub
from ordergate_server.storage import Database

from ..support import Api, auth, order_xml, rich_error
from .stock import count


def test_a_message_over_the_transport_limit_is_resource_exhausted(api: Api, db: Database) -> None:
    # Far over ORDERGATE_MAX_ORDER_BYTES: gRPC itself refuses it before our code runs.
    with pytest.raises(grpc.RpcError) as caught:
        api.submit(b"<a>" + b"x" * (3 * 1024 * 1024) + b"</a>")
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert count(db, "submissions") == 0


@pytest.mark.parametrize("migrated_db", ["postgres"], indirect=True)
def test_lost_database_connections_are_unavailable_then_recover(api: Api, db: Database) -> None:
    # A PostgreSQL restart (simulated: every connection of this database is killed) fails the
    # next call with UNAVAILABLE, which clients may retry; the pool then reconnects.
    api.submit(order_xml("DB-0"))
    _kill_every_connection(db)
    with pytest.raises(grpc.RpcError) as caught:
        api.submit(order_xml("DB-1"))
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.UNAVAILABLE
    assert error.reason == "DATABASE_UNAVAILABLE"
    assert api.submit(order_xml("DB-1")).order.client_order_id == "DB-1"


@pytest.mark.parametrize("migrated_db", ["postgres"], indirect=True)
def test_a_stock_read_on_a_lost_connection_is_unavailable_then_recovers(
    api: Api, db: Database
) -> None:
    # GetStockLevels reads straight through the driver (storage/driver_query.py): a connection
    # lost under it must be dropped from the pool, with the idle ones, as SQLAlchemy would.
    stub = InventoryServiceStub(api.channel)
    request = inventory.GetStockLevelsRequest(codes=["SKU-1001"])
    assert stub.GetStockLevels(request, metadata=auth(api.key)).items[0].found
    with db.reader() as first, db.reader() as second:  # two idle connections in the pool
        first.exec_driver_sql("SELECT 1")
        second.exec_driver_sql("SELECT 1")
    api.submit(order_xml("DB-READ-0"))  # an idle connection in the transactions' pool too
    _kill_every_connection(db)
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetStockLevels(request, metadata=auth(api.key))
    assert rich_error(caught.value).reason == "DATABASE_UNAVAILABLE"
    assert stub.GetStockLevels(request, metadata=auth(api.key)).items[0].found
    # Reads and transactions have pools of their own (on PostgreSQL); the restart broke both,
    # and the one failed call dropped both pools' idle connections: the next write just works.
    assert api.submit(order_xml("DB-READ-1")).order.client_order_id == "DB-READ-1"


def _kill_every_connection(db: Database) -> None:
    """A PostgreSQL restart, simulated: every connection to the test database is killed, from
    outside the server's pool, so that no pooled connection survives."""
    admin = create_engine(db.engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :name"
            ),
            {"name": db.engine.url.database},
        ).scalar_one()
    admin.dispose()
    assert killed >= 1
