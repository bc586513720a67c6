"""The Prometheus endpoint: the signals operators watch, read over HTTP from a real server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlalchemy import update

from ordergate.v1 import fulfillment_service_pb2 as fpb
from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1.fulfillment_service_pb2_grpc import FulfillmentServiceStub
from ordergate_server.service import monitoring
from ordergate_server.storage import Database
from ordergate_server.storage import tables as t

from ..support import Api, Keys, ServerThread, auth, order_xml, scrape


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
