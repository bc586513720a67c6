"""Tenant isolation: a website key reaches only its own orders, events, customers, prices and
credit notes. Every RPC is walked with another tenant's identifiers (website shop-b using what
belongs to shop-a); each answer is PERMISSION_DENIED or NOT_FOUND, or — for calls that list or
create — holds nothing of shop-a's. A new RPC fails `test_every_rpc_is_walked` until it is
added here."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory

from ordergate.v1 import fulfillment_service_pb2 as fulfillment_pb
from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1 import pricing_service_pb2 as pricing_pb
from ordergate.v1 import return_service_pb2 as return_pb
from ordergate.v1 import webhook_service_pb2 as webhook_pb
from ordergate.v1.fulfillment_service_pb2_grpc import FulfillmentServiceStub
from ordergate.v1.pricing_service_pb2_grpc import PricingServiceStub
from ordergate.v1.return_service_pb2_grpc import ReturnServiceStub
from ordergate.v1.webhook_service_pb2_grpc import WebhookServiceStub
from ordergate_server.api.permissions import ALLOWED_ROLES
from ordergate_server.api.server import SERVICE_NAMES
from ordergate_server.domain.access import Role

from ..support import Api, Keys, ServerThread, auth, order_xml, rich_error

# Calls that hold no tenant's data: the stock and locations every website sells from.
SHARED = {"GetStockLevels", "WatchStockLevels", "ListLocations"}


@dataclass(frozen=True)
class TenantA:
    """What belongs to website shop-a."""

    order_id: str
    client_order_id: str
    request_id: str
    event_id: str
    customer: str = "C-1001"  # the demo customers are tied to shop-a in the tests


@pytest.fixture
def tenant_a(api: Api) -> TenantA:
    request_id = str(uuid.uuid4())
    reply = api.submit(order_xml("A-SECRET-1"), request_id=request_id)
    assert reply.order.state == order_pb2.ORDER_STATE_ACCEPTED
    return TenantA(reply.order.id, "A-SECRET-1", request_id, reply.order.events[0].id)


def _denied_or_missing(call: Callable[[], object]) -> str:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    error = rich_error(refused.value)
    assert error.code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND), error
    assert "shop-a" not in error.message  # the answer may echo what was asked, nothing more
    return error.reason


def _b(api: Api, keys: Keys) -> tuple[Api, tuple[tuple[str, str], ...]]:
    return api, auth(keys.other_shop)


def walk_get_order(api: Api, keys: Keys, a: TenantA) -> None:
    _, md = _b(api, keys)
    assert (
        _denied_or_missing(
            lambda: api.orders.GetOrder(pb.GetOrderRequest(id=a.order_id), metadata=md)
        )
        == "ORDER_NOT_FOUND"
    )
    assert (
        _denied_or_missing(
            lambda: api.orders.GetOrder(
                pb.GetOrderRequest(client_order_id=a.client_order_id), metadata=md
            )
        )
        == "ORDER_NOT_FOUND"
    )
    assert (
        _denied_or_missing(
            lambda: api.orders.GetOrder(
                pb.GetOrderRequest(client_order_id=a.client_order_id, client="shop-a"),
                metadata=md,
            )
        )
        == "CLIENT_FILTER_FORBIDDEN"
    )


def walk_get_order_document(api: Api, keys: Keys, a: TenantA) -> None:
    _, md = _b(api, keys)
    assert (
        _denied_or_missing(
            lambda: api.orders.GetOrderDocument(
                pb.GetOrderDocumentRequest(id=a.order_id), metadata=md
            )
        )
        == "ORDER_NOT_FOUND"
    )
    own = api.orders.GetOrderDocument(
        pb.GetOrderDocumentRequest(id=a.order_id), metadata=auth(api.key)
    )
    assert own.document == order_xml("A-SECRET-1").encode()


def walk_list_orders(api: Api, keys: Keys, a: TenantA) -> None:
    _, md = _b(api, keys)
    for request in (
        pb.ListOrdersRequest(),
        pb.ListOrdersRequest(customer_account=a.customer),
        pb.ListOrdersRequest(state=order_pb2.ORDER_STATE_ACCEPTED),
    ):
        assert list(api.orders.ListOrders(request, metadata=md).orders) == []
    assert (
        _denied_or_missing(
            lambda: api.orders.ListOrders(pb.ListOrdersRequest(client="shop-a"), metadata=md)
        )
        == "CLIENT_FILTER_FORBIDDEN"
    )


def walk_cancel_order(api: Api, keys: Keys, a: TenantA) -> None:
    _, md = _b(api, keys)
    assert (
        _denied_or_missing(
            lambda: api.orders.CancelOrder(
                pb.CancelOrderRequest(id=a.order_id, reason="x"), metadata=md
            )
        )
        == "ORDER_NOT_FOUND"
    )
    still = api.orders.GetOrder(pb.GetOrderRequest(id=a.order_id), metadata=auth(api.key))
    assert still.order.state == order_pb2.ORDER_STATE_ACCEPTED


def walk_submit_order(api: Api, keys: Keys, a: TenantA) -> None:
    # shop-a's request_id from shop-b is shop-b's own new submission, never a replay of A's.
    reply = api.submit(order_xml("B-1"), request_id=a.request_id, key=keys.other_shop)
    assert reply.order.client == "shop-b"
    assert reply.order.id != a.order_id
    assert not reply.replayed
    # Ordering for shop-a's customer is held exactly as for an account that does not exist:
    # the answer tells nothing of the customer, not even that it exists.
    held = api.submit(order_xml("B-2", customer=a.customer), key=keys.other_shop).order
    unknown = api.submit(order_xml("B-3", customer="C-NOBODY"), key=keys.other_shop).order
    assert [(r.code, r.message.replace(a.customer, "?")) for r in held.hold_reasons] == [
        (r.code, r.message.replace("C-NOBODY", "?")) for r in unknown.hold_reasons
    ]
    assert [r.code for r in held.hold_reasons] == ["CUSTOMER_UNKNOWN"]


def walk_submit_orders(api: Api, keys: Keys, a: TenantA) -> None:
    _, md = _b(api, keys)
    item = pb.SubmitOrderRequest(request_id=a.request_id, order_xml=order_xml("B-3").encode())
    [reply] = list(api.orders.SubmitOrders(iter([pb.SubmitOrdersRequest(order=item)]), metadata=md))
    assert reply.response.order.client == "shop-b"
    assert reply.response.order.id != a.order_id


def walk_watch_order_events(api: Api, keys: Keys, a: TenantA) -> None:
    """shop-b's watch, from shop-a's own event, sees shop-b's next order and nothing of A's."""
    _, md = _b(api, keys)
    seen: list[pb.WatchOrderEventsResponse] = []
    stream = api.orders.WatchOrderEvents(
        pb.WatchOrderEventsRequest(after_event_id=a.event_id), metadata=md, timeout=20
    )

    def read() -> None:
        try:
            for item in stream:
                seen.append(item)
                if item.client_order_id == "B-WATCH":
                    return
        except grpc.RpcError:
            return

    reader = threading.Thread(target=read)
    reader.start()
    api.submit(order_xml("A-SECRET-2"))  # shop-a, while shop-b watches
    api.submit(order_xml("B-WATCH"), key=keys.other_shop)
    reader.join(timeout=20)
    stream.cancel()  # type: ignore[no-untyped-call]
    assert [item.client for item in seen] == ["shop-b"]
    assert seen[0].client_order_id == "B-WATCH"


def walk_get_customer_prices(api: Api, keys: Keys, a: TenantA) -> None:
    _, md = _b(api, keys)
    pricing = PricingServiceStub(api.channel)
    request = pricing_pb.GetCustomerPricesRequest(
        customer_account=a.customer, items=[pricing_pb.PriceQuery(code="SKU-1001", quantity=1)]
    )
    assert (
        _denied_or_missing(lambda: pricing.GetCustomerPrices(request, metadata=md))
        == "CUSTOMER_NOT_FOUND"
    )


def walk_list_credit_notes(api: Api, keys: Keys, a: TenantA) -> None:
    _, md = _b(api, keys)
    pricing = PricingServiceStub(api.channel)
    request = pricing_pb.ListCreditNotesRequest(customer_account=a.customer)
    assert (
        _denied_or_missing(lambda: pricing.ListCreditNotes(request, metadata=md))
        == "CUSTOMER_NOT_FOUND"
    )


def walk_webhooks(api: Api, keys: Keys, a: TenantA) -> None:
    """shop-b neither sees nor touches shop-a's webhook endpoint, nor makes one for shop-a."""
    hooks = WebhookServiceStub(api.channel)
    theirs = hooks.CreateWebhookEndpoint(  # a public address literal: no DNS needed
        webhook_pb.CreateWebhookEndpointRequest(
            url="http://93.184.216.34/a-secret-hook", event_types=["stock.oversold"]
        ),
        metadata=auth(keys.shop),
    ).endpoint
    _, md = _b(api, keys)
    listed = hooks.ListWebhookEndpoints(webhook_pb.ListWebhookEndpointsRequest(), metadata=md)
    assert theirs.id not in {e.id for e in listed.endpoints}
    assert "a-secret-hook" not in str(listed)
    deliveries = hooks.ListWebhookDeliveries(webhook_pb.ListWebhookDeliveriesRequest(), metadata=md)
    assert not deliveries.deliveries
    hidden: list[Callable[[], object]] = [
        lambda: hooks.UpdateWebhookEndpoint(
            webhook_pb.UpdateWebhookEndpointRequest(
                endpoint=webhook_pb.WebhookEndpoint(id=theirs.id, enabled=False)
            ),
            metadata=md,
        ),
        lambda: hooks.DeleteWebhookEndpoint(
            webhook_pb.DeleteWebhookEndpointRequest(id=theirs.id), metadata=md
        ),
        lambda: hooks.RotateWebhookSecret(
            webhook_pb.RotateWebhookSecretRequest(id=theirs.id), metadata=md
        ),
        lambda: hooks.ListWebhookDeliveries(
            webhook_pb.ListWebhookDeliveriesRequest(endpoint_id=theirs.id), metadata=md
        ),
        lambda: hooks.RedeliverWebhookEvents(
            webhook_pb.RedeliverWebhookEventsRequest(endpoint_id=theirs.id, event_id="evt_1"),
            metadata=md,
        ),
    ]
    for call in hidden:
        assert _denied_or_missing(call) == "WEBHOOK_ENDPOINT_NOT_FOUND"
    forbidden: list[Callable[[], object]] = [
        lambda: hooks.CreateWebhookEndpoint(
            webhook_pb.CreateWebhookEndpointRequest(client="shop-a", url="http://93.184.216.34/b"),
            metadata=md,
        ),
        lambda: hooks.ListWebhookEndpoints(
            webhook_pb.ListWebhookEndpointsRequest(client="shop-a"), metadata=md
        ),
    ]
    for call in forbidden:
        assert _denied_or_missing(call) == "CLIENT_FILTER_FORBIDDEN"
    mine = hooks.ListWebhookEndpoints(
        webhook_pb.ListWebhookEndpointsRequest(), metadata=auth(keys.shop)
    )
    assert [e.enabled for e in mine.endpoints] == [True]  # untouched


def walk_returns(api: Api, keys: Keys, a: TenantA) -> None:
    """shop-b neither sees shop-a's return (RMA) nor makes one of shop-a's order."""
    for state in (
        order_pb2.ORDER_STATE_PICKING,
        order_pb2.ORDER_STATE_PICKED,
        order_pb2.ORDER_STATE_PACKED,
    ):
        FulfillmentServiceStub(api.channel).TransitionOrder(
            fulfillment_pb.TransitionOrderRequest(id=a.order_id, state=state),
            metadata=auth(keys.warehouse),
        )
    FulfillmentServiceStub(api.channel).CreateShipment(
        fulfillment_pb.CreateShipmentRequest(
            request_id=str(uuid.uuid4()), order_id=a.order_id, carrier="DHL", tracking_number="1"
        ),
        metadata=auth(keys.warehouse),
    )
    returns = ReturnServiceStub(api.channel)
    returns.CreateReturn(
        return_pb.CreateReturnRequest(rma_id="RMA-A", order_id=a.order_id, reason="secret"),
        metadata=auth(keys.shop),
    )
    _, md = _b(api, keys)
    assert (
        _denied_or_missing(
            lambda: returns.GetReturn(return_pb.GetReturnRequest(rma_id="RMA-A"), metadata=md)
        )
        == "RETURN_NOT_FOUND"
    )
    for order_ref in (a.order_id, a.client_order_id):
        request = return_pb.CreateReturnRequest(rma_id="RMA-B", order_id=order_ref, reason="x")
        assert (
            _denied_or_missing(lambda r=request: returns.CreateReturn(r, metadata=md))  # type: ignore[misc]
            == "ORDER_NOT_FOUND"
        )
    for request_ in (
        return_pb.ListReturnsRequest(),
        return_pb.ListReturnsRequest(order_id=a.order_id),
    ):
        assert not returns.ListReturns(request_, metadata=md).returns
    mine = returns.ListReturns(return_pb.ListReturnsRequest(), metadata=auth(keys.shop))
    assert [r.rma_id for r in mine.returns] == ["RMA-A"]  # the walk's own data is there


WALKS: dict[str, Callable[[Api, Keys, TenantA], None]] = {
    "GetOrder": walk_get_order,
    "GetOrderDocument": walk_get_order_document,
    "ListOrders": walk_list_orders,
    "CancelOrder": walk_cancel_order,
    "SubmitOrder": walk_submit_order,
    "SubmitOrders": walk_submit_orders,
    "WatchOrderEvents": walk_watch_order_events,
    "GetCustomerPrices": walk_get_customer_prices,
    "ListCreditNotes": walk_list_credit_notes,
    **dict.fromkeys(
        (
            "CreateWebhookEndpoint",
            "ListWebhookEndpoints",
            "UpdateWebhookEndpoint",
            "DeleteWebhookEndpoint",
            "RotateWebhookSecret",
            "ListWebhookDeliveries",
            "RedeliverWebhookEvents",
        ),
        walk_webhooks,
    ),
    **dict.fromkeys(("CreateReturn", "GetReturn", "ListReturns"), walk_returns),
}

ALL_RPCS = {
    f"/{service}/{method.name}": method.name
    for service in SERVICE_NAMES
    for method in descriptor_pool.Default().FindServiceByName(service).methods
}


def test_every_rpc_is_walked() -> None:
    website_rpcs = {
        name for path, name in ALL_RPCS.items() if Role.WEBSITE in ALLOWED_ROLES.get(path, ())
    }
    assert website_rpcs == set(WALKS) | SHARED


@pytest.mark.parametrize("name", sorted(WALKS))
def test_another_tenant_gets_nothing(
    server: ServerThread, api: Api, keys: Keys, tenant_a: TenantA, name: str
) -> None:
    WALKS[name](api, keys, tenant_a)


@pytest.mark.parametrize(
    "path", sorted(p for p, n in ALL_RPCS.items() if n not in WALKS and n not in SHARED)
)
def test_staff_rpcs_refuse_a_website_key(
    server: ServerThread, api: Api, keys: Keys, tenant_a: TenantA, path: str
) -> None:
    """Every other RPC (exception queue, fulfilment, audit, catalog, stock corrections) is
    refused to a website key whatever it names — here, shop-a's order."""
    method = descriptor_pool.Default().FindMethodByName(path[1:].replace("/", "."))
    request = message_factory.GetMessageClass(method.input_type)()
    for field_name in ("id", "order_id"):
        if field_name in request.DESCRIPTOR.fields_by_name:
            setattr(request, field_name, tenant_a.order_id)
    md = auth(keys.other_shop)
    invoke: Callable[[], object]
    if method.client_streaming:  # UpsertProducts
        upload = api.channel.stream_unary(path, _serialize, response_deserializer=bytes)
        invoke = lambda: upload(iter([request]), metadata=md, timeout=10)  # noqa: E731
    else:
        unary = api.channel.unary_unary(path, _serialize, response_deserializer=bytes)
        invoke = lambda: unary(request, metadata=md, timeout=10)  # noqa: E731
    assert _denied_or_missing(invoke) == "ROLE_NOT_ALLOWED"


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]
