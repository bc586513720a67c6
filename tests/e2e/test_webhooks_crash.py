"""Webhooks survive a crash: `ordergate serve` killed (SIGKILL) while deliveries are failing and
waiting for their next attempt, then started again. Every event still arrives, signed, on both
databases: the deliveries are rows, not memory, and a delivery leased by the dead process is
taken again once its lease runs out."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
from standardwebhooks.webhooks import Webhook

from ordergate.v1 import order_service_pb2 as opb
from ordergate.v1 import webhook_service_pb2 as pb
from ordergate.v1.order_service_pb2_grpc import OrderServiceStub
from ordergate.v1.webhook_service_pb2_grpc import WebhookServiceStub
from ordergate_server.storage import Database

from ..support import Keys, WebhookReceiver, auth, order_xml, wait_until
from .test_cli import ServerProcess

ORDERS = 20


def _serve(tmp_path: Path, db: Database) -> ServerProcess:
    return ServerProcess(
        tmp_path,
        "--workers",
        "1",
        database_url=db.engine.url.render_as_string(hide_password=False),
        env_overrides={
            "ORDERGATE_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "ORDERGATE_WEBHOOK_POLL_SECONDS": "0.1",
            "ORDERGATE_WEBHOOK_RETRY_SCHEDULE": ",".join(["1s"] * 30),
            "ORDERGATE_WEBHOOK_TIMEOUT_SECONDS": "1",
        },
    )


def test_every_event_arrives_after_the_server_is_killed_mid_retry(
    db: Database, keys: Keys, tmp_path: Path
) -> None:
    receiver = WebhookReceiver([500] * 10_000)  # failing until told otherwise
    first = _serve(tmp_path, db)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{first.port}") as channel:
            secret = (
                WebhookServiceStub(channel)
                .CreateWebhookEndpoint(
                    pb.CreateWebhookEndpointRequest(
                        url=receiver.url, event_types=["order.accepted"]
                    ),
                    metadata=auth(keys.shop),
                )
                .secret
            )
            orders = OrderServiceStub(channel)
            ids = {
                orders.SubmitOrder(
                    opb.SubmitOrderRequest(
                        request_id=str(uuid.uuid4()), order_xml=order_xml(f"CRASH-{n}").encode()
                    ),
                    metadata=auth(keys.shop),
                    timeout=30,
                ).order.id
                for n in range(ORDERS)
            }
        # Every event tried and refused at least once, some twice: then the server dies.
        wait_until(
            lambda: (
                len({r.headers["webhook-id"] for r in receiver.events()}) == ORDERS
                and len(receiver.events()) > ORDERS
            ),
            "every event tried, some retried",
            seconds=30,
        )
        first.process.kill()
        first.exited()
        refused = len(receiver.events())
        receiver.answers.clear()  # the receiver is well again: 204 from now on

        second = _serve(tmp_path, db)
        try:
            wait_until(
                lambda: (
                    {r.event["data"]["order"]["id"] for r in receiver.received[refused:]} >= ids
                ),
                "every event delivered after the restart",
                seconds=60,
            )
        finally:
            second.finish()
        for received in receiver.events():
            Webhook(secret).verify(received.body, received.headers)
        event_ids = {r.headers["webhook-id"] for r in receiver.events()}
        assert len(event_ids) == ORDERS  # retries and redeliveries keep the event's id
    finally:
        receiver.close()
        if first.process.poll() is None:
            first.finish()
