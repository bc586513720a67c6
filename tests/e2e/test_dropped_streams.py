"""A client that walks away from a stream mid-way (closes its connection, or cancels) costs the
server nothing: the process stays up, answers everyone else, and the key's stream slot is free.

Before the caller's address was read at the start of each call, the access-log line written
when such a stream ended asked gRPC for the peer of a call that was already gone, and the
whole server process died of a segmentation fault: one ordinary key watching from an old event
and dropping the connection took every caller down.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ordergate.v1 import (
    inventory_service_pb2,
    inventory_service_pb2_grpc,
    order_service_pb2,
    order_service_pb2_grpc,
)
from ordergate_server.storage import Database

from ..support import Keys, auth, order_xml
from .test_cli import ServerProcess

DROPS = 6  # more than the key's stream slots below: a slot kept by a dropped stream shows


def _watch_orders(channel: grpc.Channel, keys: Keys, after: str) -> object:
    return order_service_pb2_grpc.OrderServiceStub(channel).WatchOrderEvents(
        order_service_pb2.WatchOrderEventsRequest(after_event_id=after), metadata=auth(keys.shop)
    )


def _watch_stock(channel: grpc.Channel, keys: Keys, after: str) -> object:
    return inventory_service_pb2_grpc.InventoryServiceStub(channel).WatchStockLevels(
        inventory_service_pb2.WatchStockLevelsRequest(codes=["SKU-1001"]),
        metadata=auth(keys.shop),
    )


@pytest.mark.parametrize("leave", ["close the connection", "cancel"])
@pytest.mark.parametrize("watch", [_watch_orders, _watch_stock], ids=["orders", "stock"])
def test_walking_away_from_a_stream_leaves_the_server_serving(
    db: Database, keys: Keys, tmp_path: Path, leave: str, watch: object
) -> None:
    server = ServerProcess(
        tmp_path,
        "--workers",
        "1",
        database_url=db.engine.url.render_as_string(hide_password=False),
        env_overrides={"ORDERGATE_MAX_STREAMS_PER_KEY": "2"},
    )
    target = f"127.0.0.1:{server.port}"
    try:
        with grpc.insecure_channel(target) as channel:
            orders = order_service_pb2_grpc.OrderServiceStub(channel)
            first = None
            for n in range(30):  # a backlog of events for the watch to be sending
                reply = orders.SubmitOrder(
                    order_service_pb2.SubmitOrderRequest(
                        request_id=str(uuid.uuid4()), order_xml=order_xml(f"DROP-{n}").encode()
                    ),
                    metadata=auth(keys.shop),
                    timeout=30,
                )
                first = first or reply.order.events[0].id
        assert first

        for _ in range(DROPS):
            own = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
            stream = watch(own, keys, first)  # type: ignore[operator]
            next(stream)  # it is sending
            if leave == "cancel":
                stream.cancel()
            own.close()

        with grpc.insecure_channel(target) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            # Every slot came back: a new watch is let in and delivers.
            stream = watch(channel, keys, first)  # type: ignore[operator]
            assert next(stream) is not None
            stream.cancel()
        assert server.process.poll() is None, "".join(server.output[-40:])
    finally:
        server.finish()
