"""Webhooks, against a real HTTP receiver on 127.0.0.1: endpoints and their secrets, every order
event type, signatures checked with the standardwebhooks library, retries through 500s,
timeouts and refused connections, disabling an endpoint that keeps failing, redelivery, the
delivery log, server-side request forgery refused, and the metrics."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ordergate.v1 import inventory_service_pb2 as ipb
from ordergate.v1 import order_service_pb2 as opb
from ordergate.v1 import webhook_service_pb2 as pb
from ordergate.v1.inventory_service_pb2_grpc import InventoryServiceStub
from ordergate.v1.webhook_service_pb2_grpc import WebhookServiceStub
from ordergate_server.storage import Database
from ordergate_server.storage import tables as t

from ..support import (
    EXAMPLES,
    Api,
    Keys,
    Received,
    ServerThread,
    WebhookReceiver,
    auth,
    order_xml,
    refused_url,
    rich_error,
    scrape,
    wait_until,
)
from .test_shipments import _packed, _ship

# Fast enough for tests; the shape of the real thing (docs/webhooks.md).
FAST = {
    "webhook_allowed_networks": "127.0.0.0/8",
    "webhook_poll_seconds": 0.05,
    "webhook_retry_schedule": "0.2s,0.2s,0.2s,0.2s",
    "webhook_timeout_seconds": 0.5,
    "webhook_stock_debounce_seconds": 0.3,
    "metrics_listen": "127.0.0.1:0",
}


@pytest.fixture
def hooks(db: Database, keys: Keys) -> Iterator[tuple[Api, ServerThread]]:
    server = ServerThread(db, **FAST)
    with grpc.insecure_channel(server.target) as channel:
        yield Api(channel, keys.shop), server
    server.stop()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver()
    yield running
    running.close()


def _webhooks(api: Api) -> WebhookServiceStub:
    return WebhookServiceStub(api.channel)


def _create(
    api: Api, key: str, url: str, types: tuple[str, ...] = ()
) -> pb.CreateWebhookEndpointResponse:
    return _webhooks(api).CreateWebhookEndpoint(
        pb.CreateWebhookEndpointRequest(url=url, event_types=types), metadata=auth(key)
    )


def _verified(received: Received, secret: str) -> dict[str, object]:
    verified: dict[str, object] = Webhook(secret).verify(received.body, received.headers)
    return verified


def _deliveries(api: Api, key: str, **filters: object) -> list[pb.WebhookDelivery]:
    return list(
        _webhooks(api)
        .ListWebhookDeliveries(
            pb.ListWebhookDeliveriesRequest(**filters),  # type: ignore[arg-type]
            metadata=auth(key),
        )
        .deliveries
    )


def test_order_events_reach_the_endpoint_signed(
    hooks: tuple[Api, ServerThread], keys: Keys, receiver: WebhookReceiver
) -> None:
    api, _ = hooks
    created = _create(api, keys.shop, receiver.url)
    assert created.secret.startswith("whsec_")
    accepted = api.submit(order_xml("WH-1")).order
    held = api.submit(order_xml("WH-2", [("NO-SUCH-SKU", 1)])).order
    api.orders.CancelOrder(
        opb.CancelOrderRequest(id=accepted.id, reason="customer called"), metadata=auth(keys.shop)
    )
    shipped = api.submit(order_xml("WH-3")).order
    _packed(api, keys, shipped.id)
    _ship(api, keys, shipped.id, tracking_number="00340434161094042557")
    wanted = {"order.accepted", "order.held", "order.cancelled", "order.shipped"}
    wait_until(lambda: wanted <= {r.event["type"] for r in receiver.events()}, "all events")

    # An endpoint made without event types hears every type (stock.changed too): all signed.
    for received in receiver.events():
        _verified(received, created.secret)  # raises unless the signature verifies
        assert received.headers["webhook-id"].startswith("evt_")
    order_events = [r for r in receiver.events() if r.event["type"].startswith("order.")]
    by_type: dict[str, list[Received]] = {}
    for received in order_events:
        by_type.setdefault(received.event["type"], []).append(received)
    assert set(by_type) == wanted
    assert {r.event["data"]["order"]["id"] for r in by_type["order.accepted"]} == {
        accepted.id,
        shipped.id,
    }
    assert by_type["order.held"][0].event["data"]["order"]["id"] == held.id
    assert by_type["order.held"][0].event["data"]["order"]["holdReasons"][0]["code"]
    assert by_type["order.cancelled"][0].event["data"]["order"]["state"] == "ORDER_STATE_CANCELLED"
    shipment = by_type["order.shipped"][0].event["data"]["order"]["shipments"][0]
    assert (shipment["carrier"], shipment["trackingNumber"]) == ("DHL", "00340434161094042557")
    assert len({r.headers["webhook-id"] for r in receiver.events()}) == len(receiver.events())
    # Another client's endpoint hears nothing of shop-a's orders.
    assert all(r.event["data"]["order"]["client"] == "shop-a" for r in order_events)


def test_an_endpoint_receives_only_its_event_types_and_its_own_clients_events(
    hooks: tuple[Api, ServerThread], keys: Keys, receiver: WebhookReceiver
) -> None:
    api, _ = hooks
    other = WebhookReceiver()
    try:
        _create(api, keys.shop, receiver.url, ("order.held",))
        _create(api, keys.other_shop, other.url)
        api.submit(order_xml("ONLY-1"))
        api.submit(order_xml("ONLY-2", [("NO-SUCH-SKU", 1)]))
        wait_until(lambda: receiver.events("order.held"), "the held order's event")
        api.submit(order_xml("ONLY-3", [("NO-SUCH-SKU", 1)]), key=keys.other_shop)
        wait_until(lambda: other.events("order.held"), "shop-b's own event")
        assert [r.event["type"] for r in receiver.events()] == ["order.held"]
        orders_heard = [r for r in other.events() if r.event["type"].startswith("order.")]
        assert all(r.event["data"]["order"]["client"] == "shop-b" for r in orders_heard)
    finally:
        other.close()


def test_a_failing_receiver_gets_the_same_event_again_until_it_takes_it(
    hooks: tuple[Api, ServerThread], keys: Keys
) -> None:
    api, server = hooks
    receiver = WebhookReceiver([500, 503, ("slow", 1.5)])  # two errors, then too slow, then 204
    try:
        created = _create(api, keys.shop, receiver.url, ("order.accepted",))
        api.submit(order_xml("RETRY-1"))
        wait_until(lambda: len(receiver.events()) >= 4, "four attempts")
        ids = {r.headers["webhook-id"] for r in receiver.events()}
        assert len(ids) == 1  # one event, tried four times under one id
        for received in receiver.events():
            _verified(received, created.secret)

        (event_id,) = ids

        def delivered() -> list[pb.WebhookDelivery]:
            return _deliveries(
                api, keys.shop, state=pb.WEBHOOK_DELIVERY_STATE_DELIVERED, event_id=event_id
            )

        wait_until(lambda: delivered(), "the delivery marked delivered")
        (delivery,) = delivered()
        attempts = [(a.number, a.status_code) for a in delivery.attempts]
        assert attempts == [(1, 500), (2, 503), (3, 0), (4, 204)]
        assert "no answer within" in delivery.attempts[2].error
        assert delivery.attempts[2].latency_ms >= 500
        assert delivery.event_id == receiver.events()[0].headers["webhook-id"]
        metrics = scrape(server)
        assert metrics[("ordergate_webhook_deliveries_total", (("outcome", "retry"),))] == 3
        assert metrics[("ordergate_webhook_deliveries_total", (("outcome", "delivered"),))] == 1
    finally:
        receiver.close()


def test_a_refused_connection_is_retried_and_given_up_after_the_schedule(
    hooks: tuple[Api, ServerThread], keys: Keys
) -> None:
    api, server = hooks
    _create(api, keys.shop, refused_url(), ("order.accepted",))
    api.submit(order_xml("REFUSED-1"))
    wait_until(
        lambda: bool(_deliveries(api, keys.shop, state=pb.WEBHOOK_DELIVERY_STATE_FAILED)),
        "the delivery given up",
    )
    (failed,) = _deliveries(api, keys.shop)
    assert len(failed.attempts) == 5  # the first and the schedule's four retries
    assert all(a.status_code == 0 and "Connect" in a.error for a in failed.attempts)
    assert not failed.HasField("next_attempt_time")
    assert scrape(server)[("ordergate_webhook_deliveries_total", (("outcome", "failed"),))] == 1


def test_an_endpoint_failing_too_long_is_disabled_with_an_alert(db: Database, keys: Keys) -> None:
    server = ServerThread(
        db,
        **{**FAST, "webhook_retry_schedule": "0.1s," * 40 + "0.1s"},
        webhook_disable_after_hours=1 / 3600,
    )
    try:
        with grpc.insecure_channel(server.target) as channel:
            api = Api(channel, keys.shop)
            endpoint = _create(api, keys.shop, refused_url(), ("order.accepted",)).endpoint
            api.submit(order_xml("DISABLED-1"))

            def listed() -> pb.WebhookEndpoint:
                (found,) = (
                    _webhooks(api)
                    .ListWebhookEndpoints(
                        pb.ListWebhookEndpointsRequest(), metadata=auth(keys.shop)
                    )
                    .endpoints
                )
                return found

            wait_until(lambda: not listed().enabled, "the endpoint disabled")
            assert "no delivery taken since" in listed().disabled_reason
            assert listed().HasField("failing_since")
            with db.reader() as conn:
                messages = (
                    conn.execute(
                        select(t.alerts.c.message).where(
                            t.alerts.c.kind == "WEBHOOK_ENDPOINT_DISABLED"
                        )
                    )
                    .scalars()
                    .all()
                )
            assert len(messages) == 1
            assert endpoint.id in messages[0]
            (pending,) = _deliveries(api, keys.shop)
            assert pending.state == pb.WEBHOOK_DELIVERY_STATE_PENDING  # waits, not lost
            # Enabled again (pointing at a live receiver), the delivery goes on.
            receiver = WebhookReceiver()
            try:
                _webhooks(api).UpdateWebhookEndpoint(
                    pb.UpdateWebhookEndpointRequest(
                        endpoint=pb.WebhookEndpoint(id=endpoint.id, url=receiver.url, enabled=True),
                        update_mask=FieldMask(paths=["url", "enabled"]),
                    ),
                    metadata=auth(keys.shop),
                )
                wait_until(lambda: receiver.events("order.accepted"), "the delivery after enabling")
                assert listed().enabled
                assert not listed().HasField("failing_since")
            finally:
                receiver.close()
    finally:
        server.stop()


def test_a_rotated_secret_signs_beside_the_old_one_during_the_overlap(
    hooks: tuple[Api, ServerThread], keys: Keys, receiver: WebhookReceiver
) -> None:
    api, _ = hooks
    created = _create(api, keys.shop, receiver.url, ("order.accepted",))
    rotated = _webhooks(api).RotateWebhookSecret(
        pb.RotateWebhookSecretRequest(id=created.endpoint.id, overlap=Duration(seconds=3600)),
        metadata=auth(keys.shop),
    )
    assert rotated.secret != created.secret
    assert rotated.endpoint.HasField("previous_secret_expire_time")
    api.submit(order_xml("ROTATE-1"))
    wait_until(lambda: receiver.events(), "a delivery")
    (received,) = receiver.events()
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    _verified(received, created.secret)
    _verified(received, rotated.secret)
    # Rotated again without overlap: only the newest secret signs.
    newest = _webhooks(api).RotateWebhookSecret(
        pb.RotateWebhookSecretRequest(id=created.endpoint.id, overlap=Duration(seconds=0)),
        metadata=auth(keys.shop),
    )
    api.submit(order_xml("ROTATE-2"))
    wait_until(lambda: len(receiver.events()) == 2, "a second delivery")
    second = receiver.events()[1]
    _verified(second, newest.secret)
    with pytest.raises(WebhookVerificationError):
        _verified(second, rotated.secret)


def test_redelivery_sends_an_event_again_under_its_id(
    hooks: tuple[Api, ServerThread], keys: Keys, receiver: WebhookReceiver
) -> None:
    api, _ = hooks
    endpoint = _create(api, keys.shop, receiver.url, ("order.accepted",)).endpoint
    api.submit(order_xml("AGAIN-1"))
    api.submit(order_xml("AGAIN-2"))
    wait_until(lambda: len(receiver.events()) == 2, "two deliveries")
    first = receiver.events()[0].headers["webhook-id"]
    again = _webhooks(api).RedeliverWebhookEvents(
        pb.RedeliverWebhookEventsRequest(endpoint_id=endpoint.id, event_id=first),
        metadata=auth(keys.shop),
    )
    assert again.events == 1
    wait_until(lambda: len(receiver.events()) == 3, "the redelivery")
    assert receiver.events()[2].headers["webhook-id"] == first
    start = Timestamp()
    start.FromDatetime(datetime.now(UTC) - timedelta(minutes=5))
    everything = _webhooks(api).RedeliverWebhookEvents(
        pb.RedeliverWebhookEventsRequest(endpoint_id=endpoint.id, start_time=start),
        metadata=auth(keys.shop),
    )
    assert everything.events == 2
    wait_until(lambda: len(receiver.events()) == 5, "the range redelivered")
    with pytest.raises(grpc.RpcError) as unbounded:
        _webhooks(api).RedeliverWebhookEvents(
            pb.RedeliverWebhookEventsRequest(endpoint_id=endpoint.id), metadata=auth(keys.shop)
        )
    assert rich_error(unbounded.value).reason == "REDELIVERY_UNBOUNDED"
    with pytest.raises(grpc.RpcError) as unknown:
        _webhooks(api).RedeliverWebhookEvents(
            pb.RedeliverWebhookEventsRequest(endpoint_id=endpoint.id, event_id="evt_nope"),
            metadata=auth(keys.shop),
        )
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND


def test_stock_changes_are_debounced_per_product_and_low_stock_is_announced(
    hooks: tuple[Api, ServerThread], keys: Keys, receiver: WebhookReceiver
) -> None:
    api, _ = hooks
    _create(api, keys.shop, receiver.url, ("stock.changed", "stock.low"))
    inventory = InventoryServiceStub(api.channel)
    level = inventory.GetStockLevels(
        ipb.GetStockLevelsRequest(codes=["SKU-1001"]), metadata=auth(keys.shop)
    ).items[0]
    main = next(x for x in level.locations if x.location_code == "WH-MAIN")
    for _ in range(5):  # five changes within the debounce interval
        inventory.AdjustStock(
            ipb.AdjustStockRequest(
                request_id=str(uuid.uuid4()),
                code="SKU-1001",
                location_code="WH-MAIN",
                delta=-1,
                reason_code="DAMAGED",
            ),
            metadata=auth(keys.manager),
        )
    wait_until(lambda: receiver.events("stock.changed"), "stock.changed")
    changed = receiver.events("stock.changed")
    assert len(changed) == 1  # one per product, with the levels as they are now
    levels = {x["location"]: x for x in changed[0].event["data"]["levels"]}
    assert levels["WH-MAIN"]["on_hand"] == main.on_hand - 5
    # Down to the low-stock level (5): one stock.low.
    inventory.AdjustStock(
        ipb.AdjustStockRequest(
            request_id=str(uuid.uuid4()),
            code="SKU-1001",
            location_code="WH-MAIN",
            delta=-(main.available - 5 - 5),
            reason_code="DAMAGED",
        ),
        metadata=auth(keys.manager),
    )
    wait_until(lambda: receiver.events("stock.low"), "stock.low")
    (low,) = receiver.events("stock.low")
    assert low.event["data"] == {"sku": "SKU-1001", "location": "WH-MAIN", "low_stock_level": 5}


def test_endpoints_are_the_clients_own_and_internal_targets_are_refused(
    api: Api, keys: Keys
) -> None:
    # The default server allows no internal network: a loopback target is refused.
    with pytest.raises(grpc.RpcError) as forbidden:
        _create(api, keys.shop, "http://127.0.0.1:9/hooks")
    error = rich_error(forbidden.value)
    assert (error.code, error.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "WEBHOOK_TARGET_FORBIDDEN",
    )
    for url in (
        "http://169.254.169.254/latest/meta-data",  # the cloud metadata service
        "http://[::1]/x",
        "http://10.0.0.8/",
        "http://0.0.0.0/",
        "http://2130706433/",  # 127.0.0.1 written as a number
        "http://localhost:8080/",
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
        "http://[64:ff9b::7f00:1]/",  # 127.0.0.1 through NAT64
        "http://[2002:7f00:1::]/",  # 127.0.0.1 through 6to4
    ):
        with pytest.raises(grpc.RpcError) as refused:
            _create(api, keys.shop, url)
        assert rich_error(refused.value).reason == "WEBHOOK_TARGET_FORBIDDEN", url
    for url in ("ftp://example.com/x", "not a url", "file:///etc/passwd"):
        with pytest.raises(grpc.RpcError) as invalid:
            _create(api, keys.shop, url)
        assert rich_error(invalid.value).reason == "WEBHOOK_URL_INVALID", url
    with pytest.raises(grpc.RpcError) as unknown_type:
        _create(api, keys.shop, "https://example.com/h", ("order.exploded",))
    assert rich_error(unknown_type.value).reason == "EVENT_TYPE_UNKNOWN"
    for key in (keys.storefront, keys.manager, keys.warehouse):
        with pytest.raises(grpc.RpcError) as denied:
            _webhooks(api).ListWebhookEndpoints(
                pb.ListWebhookEndpointsRequest(), metadata=auth(key)
            )
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_a_client_cannot_see_or_touch_another_clients_endpoints(
    hooks: tuple[Api, ServerThread], keys: Keys, receiver: WebhookReceiver
) -> None:
    api, _ = hooks
    theirs = _create(api, keys.other_shop, receiver.url).endpoint
    assert theirs.client == "shop-b"
    listed = _webhooks(api).ListWebhookEndpoints(
        pb.ListWebhookEndpointsRequest(), metadata=auth(keys.shop)
    )
    assert not listed.endpoints
    for call in (
        lambda: _webhooks(api).DeleteWebhookEndpoint(
            pb.DeleteWebhookEndpointRequest(id=theirs.id), metadata=auth(keys.shop)
        ),
        lambda: _webhooks(api).RotateWebhookSecret(
            pb.RotateWebhookSecretRequest(id=theirs.id), metadata=auth(keys.shop)
        ),
        lambda: _deliveries(api, keys.shop, endpoint_id=theirs.id),
    ):
        with pytest.raises(grpc.RpcError) as hidden:
            call()
        assert rich_error(hidden.value).reason == "WEBHOOK_ENDPOINT_NOT_FOUND"
    # An admin sees every client's, and names the client to create one.
    everyone = _webhooks(api).ListWebhookEndpoints(
        pb.ListWebhookEndpointsRequest(), metadata=auth(keys.admin)
    )
    assert [e.id for e in everyone.endpoints] == [theirs.id]
    with pytest.raises(grpc.RpcError) as nameless:
        _create(api, keys.admin, receiver.url)
    assert rich_error(nameless.value).reason == "CLIENT_MISSING"
    made = _webhooks(api).CreateWebhookEndpoint(
        pb.CreateWebhookEndpointRequest(client="shop-a", url=receiver.url),
        metadata=auth(keys.admin),
    )
    assert made.endpoint.client == "shop-a"
    _webhooks(api).DeleteWebhookEndpoint(
        pb.DeleteWebhookEndpointRequest(id=made.endpoint.id), metadata=auth(keys.shop)
    )
    remaining = _webhooks(api).ListWebhookEndpoints(
        pb.ListWebhookEndpointsRequest(), metadata=auth(keys.shop)
    )
    assert not remaining.endpoints


def test_the_delivery_log_pages(
    hooks: tuple[Api, ServerThread], keys: Keys, receiver: WebhookReceiver
) -> None:
    api, _ = hooks
    _create(api, keys.shop, receiver.url, ("order.accepted",))
    for n in range(5):
        api.submit(order_xml(f"PAGE-{n}"))
    wait_until(lambda: len(receiver.events()) == 5, "five deliveries")
    seen: list[str] = []
    token = ""
    while True:
        page = _webhooks(api).ListWebhookDeliveries(
            pb.ListWebhookDeliveriesRequest(page_size=2, page_token=token),
            metadata=auth(keys.shop),
        )
        seen += [d.id for d in page.deliveries]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 5
    with pytest.raises(grpc.RpcError) as bad:
        _webhooks(api).ListWebhookDeliveries(
            pb.ListWebhookDeliveriesRequest(page_token="garbage"), metadata=auth(keys.shop)
        )
    assert rich_error(bad.value).reason == "PAGE_TOKEN_INVALID"


def test_two_servers_on_one_database_send_each_event_once(
    db: Database, keys: Keys, receiver: WebhookReceiver
) -> None:
    servers = [ServerThread(db, **FAST) for _ in range(2)]
    try:
        with (
            grpc.insecure_channel(servers[0].target) as first,
            grpc.insecure_channel(servers[1].target) as second,
        ):
            apis = [Api(first, keys.shop), Api(second, keys.shop)]
            _create(apis[0], keys.shop, receiver.url, ("order.accepted",))
            for n in range(20):
                apis[n % 2].submit(order_xml(f"TWO-{n}"))
            wait_until(lambda: len(receiver.events()) >= 20, "twenty deliveries")
            time.sleep(1)  # time enough for a second fan-out or a second attempt to show
        assert len(receiver.events()) == 20
        assert len({r.headers["webhook-id"] for r in receiver.events()}) == 20
    finally:
        for server in servers:
            server.stop()


def test_a_buyers_order_change_is_an_order_changed_event(
    hooks: tuple[Api, ServerThread], keys: Keys, receiver: WebhookReceiver, ubl_catalog: None
) -> None:
    api, _ = hooks
    _create(api, keys.shop, receiver.url, ("order.changed",))
    api.submit((EXAMPLES / "ubl" / "PEPPOL-BIS3-Order_Example.xml").read_bytes())
    change = api.submit((EXAMPLES / "ubl" / "OrderChange-Example.xml").read_bytes())
    assert change.amendment.accepted
    wait_until(lambda: receiver.events("order.changed"), "order.changed")
    (changed,) = receiver.events()
    data = changed.event["data"]
    assert data["change"]["type"] == "CHANGED"
    assert [line["sku"] for line in data["order"]["lines"]] == [
        "121212",
        "SItemNo011",
        "SItemNo001",
    ]


def test_one_clients_slow_receiver_leaves_the_others_their_slots(db: Database, keys: Keys) -> None:
    """A client's receiver that takes its time (or a tarpit) holds at most a quarter of the
    sender's slots: another client's event goes out at once, not after the slow ones."""
    slow = WebhookReceiver([("slow", 4.0)] * 20)
    quick = WebhookReceiver()
    server = ServerThread(db, **{**FAST, "webhook_concurrency": 4, "webhook_timeout_seconds": 5})
    try:
        with grpc.insecure_channel(server.target) as channel:
            api = Api(channel, keys.shop)
            _create(api, keys.shop, slow.url, ("order.accepted",))
            _create(api, keys.other_shop, quick.url, ("order.held",))  # C-1001 is not shop-b's
            for n in range(8):
                api.submit(order_xml(f"SLOW-{n}"))
            wait_until(lambda: slow.events(), "the slow receiver's first delivery")
            started = time.monotonic()
            api.submit(order_xml("QUICK-1"), key=keys.other_shop)
            wait_until(lambda: quick.events(), "the other client's delivery")
            assert time.monotonic() - started < 3  # not behind the 4 s answers
            assert len(slow.events()) == 1  # shop-a's quarter of the slots: one at a time
    finally:
        server.stop()
        slow.close()
        quick.close()
