"""Failures around the request: transport limits and a database that goes away."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import create_engine, text

from ordergate_server.storage import Database

from ..support import Api, order_xml, rich_error
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
    # From outside the server's pool, so that no pooled connection survives.
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
    with pytest.raises(grpc.RpcError) as caught:
        api.submit(order_xml("DB-1"))
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.UNAVAILABLE
    assert error.reason == "DATABASE_UNAVAILABLE"
    assert api.submit(order_xml("DB-1")).order.client_order_id == "DB-1"
