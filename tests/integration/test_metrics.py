"""The Prometheus endpoint: the signals operators watch, read over HTTP from a real server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from ordergate.v1 import exception_queue_service_pb2 as eqpb
from ordergate.v1 import fulfillment_service_pb2 as fpb
from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1.exception_queue_service_pb2_grpc import ExceptionQueueServiceStub
from ordergate.v1.fulfillment_service_pb2_grpc import FulfillmentServiceStub
from ordergate_server.service import monitoring
from ordergate_server.storage import Database
from ordergate_server.storage import tables as t

from ..support import Api, Keys, ServerThread, auth, order_xml, scrape, wait_until


@pytest.fixture
def observed(db: Database, keys: Keys) -> Iterator[tuple[Api, ServerThread]]:
    server = ServerThread(db, metrics_listen="127.0.0.1:0")
    with grpc.insecure_channel(server.target) as channel:
        yield Api(channel, keys.shop), server
    server.stop()


def test_outcomes_queue_depth_and_rpc_codes(observed: tuple[Api, ServerThread]) -> None:
    api, server = observed
    request_id = str(uuid.uuid4())
    api.submit(order_xml("M-1"), request_id=request_id)
    api.submit(order_xml("M-1"), request_id=request_id)  # a replay
    api.submit(order_xml("M-2", [("NOPE", 1)]))
    api.submit(order_xml("M-3", [("NOPE", 1)]).replace("+49 40 1234567", "x"))
    with pytest.raises(grpc.RpcError):
        api.submit(order_xml("M-1", [("SKU-1001", 9)]))  # duplicate order id

    # A call is counted as it ends, just after its answer went out.
    calls = ("ordergate_rpc_duration_seconds_count", (("method", "SubmitOrder"),))
    wait_until(lambda: scrape(server).get(calls) == 5, "counted all five calls")
    got = scrape(server)
    assert got[("ordergate_orders_total", (("outcome", "accepted"),))] == 1
    assert got[("ordergate_orders_total", (("outcome", "replayed"),))] == 1
    assert got[("ordergate_orders_total", (("outcome", "held"),))] == 2
    assert got[("ordergate_orders_total", (("outcome", "duplicate"),))] == 1
    assert got[("ordergate_exception_queue_depth", (("reason", "SKU_UNKNOWN"),))] == 2
    assert got[("ordergate_exception_queue_depth", (("reason", "PHONE_INVALID"),))] == 1
    assert got[("ordergate_rpc_requests_total", (("code", "OK"), ("method", "SubmitOrder")))] == 4
    assert (
        got[
            (
                "ordergate_rpc_requests_total",
                (("code", "ALREADY_EXISTS"), ("method", "SubmitOrder")),
            )
        ]
        == 1
    )
    assert got[("ordergate_rpc_duration_seconds_count", (("method", "SubmitOrder"),))] == 5
    assert got[("ordergate_order_lag_seconds_count", ())] == 3  # the replay is not a new order


def test_stuck_orders_are_counted_and_alerted_once(
    observed: tuple[Api, ServerThread], keys: Keys, db: Database
) -> None:
    api, server = observed
    order = api.submit(order_xml("STUCK-1")).order
    FulfillmentServiceStub(api.channel).TransitionOrder(
        fpb.TransitionOrderRequest(id=order.id, state=order_pb2.ORDER_STATE_PICKING),
        metadata=auth(keys.warehouse),
    )
    assert scrape(server)[("ordergate_stuck_orders", (("kind", "picking"),))] == 0
    with db.transaction() as tx:  # five hours pass with nobody touching it
        tx.execute(
            update(t.orders)
            .where(t.orders.c.id == order.id)
            .values(updated_at=datetime.now(UTC) - timedelta(hours=5))
        )
    assert scrape(server)[("ordergate_stuck_orders", (("kind", "picking"),))] == 1

    rules = monitoring.rules(picking_hours=4, dispatched_hours=72)
    assert monitoring.raise_stuck_alerts(db, rules) == 1
    assert monitoring.raise_stuck_alerts(db, rules) == 0  # once per stay in the state
    events = api.orders.GetOrder(
        pb.GetOrderRequest(id=order.id), metadata=auth(keys.shop)
    ).order.events
    assert (events[-1].type, events[-1].actor) == ("STUCK", "system")


def test_many_stuck_orders_are_flagged_in_bounded_batches_oldest_first(
    observed: tuple[Api, ServerThread], keys: Keys, db: Database
) -> None:
    """Years of history can hold thousands of stuck orders at the first check: each pass flags
    a bounded batch under one alert, while the gauge shows them all at once."""
    api, server = observed
    fulfillment = FulfillmentServiceStub(api.channel)
    ids = []
    for n, hours in enumerate((7, 6, 5)):
        order = api.submit(order_xml(f"MANY-{n}")).order
        fulfillment.TransitionOrder(
            fpb.TransitionOrderRequest(id=order.id, state=order_pb2.ORDER_STATE_PICKING),
            metadata=auth(keys.warehouse),
        )
        with db.transaction() as tx:
            tx.execute(
                update(t.orders)
                .where(t.orders.c.id == order.id)
                .values(updated_at=datetime.now(UTC) - timedelta(hours=hours))
            )
        ids.append(order.id)
    assert scrape(server)[("ordergate_stuck_orders", (("kind", "picking"),))] == 3

    rules = monitoring.rules(picking_hours=4, dispatched_hours=72)
    assert monitoring.raise_stuck_alerts(db, rules, batch=2) == 2
    assert monitoring.raise_stuck_alerts(db, rules, batch=2) == 1
    assert monitoring.raise_stuck_alerts(db, rules, batch=2) == 0
    with db.reader() as conn:
        raised = conn.execute(
            select(t.alerts.c.order_ids, t.alerts.c.message)
            .where(t.alerts.c.kind == "STUCK_PICKING")
            .order_by(t.alerts.c.seq)
        ).all()
    assert [row.order_ids for row in raised] == [ids[:2], ids[2:]]  # oldest first
    assert raised[0].message.startswith("2 orders have been PICKING for over")
    assert raised[1].message.startswith(f"Order {ids[2]} has been PICKING")

    # The order changes after it was flagged and then sits again: a new stay, flagged again.
    with db.transaction() as tx:
        seq = tx.execute(select(t.orders.c.seq).where(t.orders.c.id == ids[0])).scalar_one()
        tx.execute(
            update(t.order_events)
            .where(t.order_events.c.order_seq == seq, t.order_events.c.type == "STUCK")
            .values(created_at=datetime.now(UTC) - timedelta(hours=10))
        )
        tx.execute(
            update(t.orders)
            .where(t.orders.c.seq == seq)
            .values(updated_at=datetime.now(UTC) - timedelta(hours=9))
        )
    assert monitoring.raise_stuck_alerts(db, rules, batch=2) == 1


def test_refusals_are_counted_by_client_and_reason(
    observed: tuple[Api, ServerThread], keys: Keys
) -> None:
    api, server = observed
    queue = ExceptionQueueServiceStub(api.channel)
    with pytest.raises(grpc.RpcError) as refused:  # a website may not release orders
        queue.ReleaseOrder(eqpb.ReleaseOrderRequest(id="x"), metadata=auth(keys.shop))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    for _ in range(3):
        with pytest.raises(grpc.RpcError) as refused:
            api.orders.GetOrder(pb.GetOrderRequest(id="x"), metadata=auth("og_nope_nope"))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as refused:
        api.orders.GetOrder(pb.GetOrderRequest(id="no-such-order"), metadata=auth(keys.shop))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND

    rejected = "ordergate_rejected_calls_total"
    by_client = (rejected, (("client", "unauthenticated"), ("reason", "API_KEY_INVALID")))
    wait_until(lambda: scrape(server).get(by_client) == 3, "counted the unknown key's calls")
    got = scrape(server)
    assert got[(rejected, (("client", "shop-a"), ("reason", "ROLE_NOT_ALLOWED")))] == 1
    assert got[(rejected, (("client", "shop-a"), ("reason", "ORDER_NOT_FOUND")))] == 1
    # Every outcome under the code the client received.
    codes = "ordergate_rpc_requests_total"
    assert got[(codes, (("code", "UNAUTHENTICATED"), ("method", "GetOrder")))] == 3
    assert got[(codes, (("code", "NOT_FOUND"), ("method", "GetOrder")))] == 1
    assert got[(codes, (("code", "PERMISSION_DENIED"), ("method", "ReleaseOrder")))] == 1


def test_held_orders_oldest_age_and_stock_short(
    observed: tuple[Api, ServerThread], db: Database
) -> None:
    api, server = observed
    got = scrape(server)
    assert got[("ordergate_oldest_held_order_age_seconds", ())] == 0  # none on hold
    assert got[("ordergate_stock_short_orders", ())] == 0
    assert got[("ordergate_database_up", ())] == 1

    api.submit(order_xml("OLD-1", [("NOPE", 1)]))  # held: unknown SKU
    api.submit(order_xml("SHORT-1", [("SKU-1001", 10_000)]))  # held for stock alone
    api.submit(order_xml("NEW-1", [("NOPE", 1)]))
    with db.transaction() as tx:  # the first came in three hours ago
        tx.execute(
            update(t.orders)
            .where(t.orders.c.client_order_id == "OLD-1")
            .values(created_at=datetime.now(UTC) - timedelta(hours=3))
        )
    got = scrape(server)
    assert 3 * 3600 <= got[("ordergate_oldest_held_order_age_seconds", ())] < 3 * 3600 + 60
    assert got[("ordergate_stock_short_orders", ())] == 1
    assert got[("ordergate_exception_queue_depth", (("reason", "SKU_UNKNOWN"),))] == 2
    assert got[("ordergate_exception_queue_depth", (("reason", "INSUFFICIENT_STOCK"),))] == 1


def test_a_failing_database_read_keeps_the_last_values_and_is_counted(
    db: Database, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/metrics must answer during a database outage: that is when it matters most."""
    server = ServerThread(db, metrics_listen="127.0.0.1:0")
    try:
        with grpc.insecure_channel(server.target) as channel:
            Api(channel, keys.shop).submit(order_xml("KEPT-1", [("NOPE", 1)]))
        assert scrape(server)[("ordergate_collector_failures_total", ())] == 0

        def down(_db: Database) -> dict[str, int]:
            raise OperationalError("SELECT", {}, Exception("connection refused"))

        monkeypatch.setattr(monitoring, "held_reason_counts", down)
        got = scrape(server)  # an HTTP error here would fail the test
        assert got[("ordergate_database_up", ())] == 0
        assert got[("ordergate_collector_failures_total", ())] == 1
        assert got[("ordergate_exception_queue_depth", (("reason", "SKU_UNKNOWN"),))] == 1
        assert scrape(server)[("ordergate_collector_failures_total", ())] == 2

        monkeypatch.undo()
        assert scrape(server)[("ordergate_database_up", ())] == 1
    finally:
        server.stop()
