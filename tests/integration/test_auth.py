"""Authentication and roles on every RPC; health and reflection stay open."""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy import select

from ordergate.v1 import audit_service_pb2 as audit_pb
from ordergate.v1 import catalog_service_pb2 as catalog_pb
from ordergate.v1 import exception_queue_service_pb2 as queue_pb
from ordergate.v1 import fulfillment_service_pb2 as fulfillment_pb
from ordergate.v1 import inbound_service_pb2 as inbound_pb
from ordergate.v1 import inventory_service_pb2 as inventory_pb
from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1 import pricing_service_pb2 as pricing_pb
from ordergate.v1 import return_service_pb2 as return_pb
from ordergate.v1 import webhook_service_pb2 as webhook_pb
from ordergate.v1.audit_service_pb2_grpc import AuditServiceStub
from ordergate.v1.catalog_service_pb2_grpc import CatalogServiceStub
from ordergate.v1.exception_queue_service_pb2_grpc import ExceptionQueueServiceStub
from ordergate.v1.fulfillment_service_pb2_grpc import FulfillmentServiceStub
from ordergate.v1.inbound_service_pb2_grpc import InboundServiceStub
from ordergate.v1.inventory_service_pb2_grpc import InventoryServiceStub
from ordergate.v1.pricing_service_pb2_grpc import PricingServiceStub
from ordergate.v1.return_service_pb2_grpc import ReturnServiceStub
from ordergate.v1.webhook_service_pb2_grpc import WebhookServiceStub
from ordergate_server.api.permissions import ALLOWED_ROLES
from ordergate_server.storage import Database
from ordergate_server.storage import tables as t

from ..support import Api, Keys, auth, order_xml, rich_error
from .stock import count


def _catalog_call(name: str, api: Api, md: Any) -> object:
    request = iter([]) if name == "UpsertProducts" else getattr(catalog_pb, f"{name}Request")()
    return getattr(CatalogServiceStub(api.channel), name)(request, metadata=md)


CALLS: dict[str, Callable[[Api, Any], object]] = {
    "SubmitOrder": lambda api, md: api.orders.SubmitOrder(
        pb.SubmitOrderRequest(
            request_id="4b7c1f8e-0d7e-4f55-9d55-0c1f3a2b9e10", order_xml=order_xml().encode()
        ),
        metadata=md,
    ),
    "SubmitOrders": lambda api, md: list(
        api.orders.SubmitOrders(
            iter([pb.SubmitOrdersRequest(order=pb.SubmitOrderRequest(request_id="x"))]), metadata=md
        )
    ),
    "GetStockLevels": lambda api, md: InventoryServiceStub(api.channel).GetStockLevels(
        inventory_pb.GetStockLevelsRequest(codes=["SKU-1001"]), metadata=md
    ),
    "WatchStockLevels": lambda api, md: next(  # type: ignore[call-overload]
        InventoryServiceStub(api.channel).WatchStockLevels(
            inventory_pb.WatchStockLevelsRequest(codes=["SKU-1001"]), metadata=md, timeout=10
        )
    ),
    "AdjustStock": lambda api, md: InventoryServiceStub(api.channel).AdjustStock(
        inventory_pb.AdjustStockRequest(
            request_id=str(uuid.uuid4()),
            code="SKU-1001",
            location_code="WH-MAIN",
            delta=1,
            reason_code="FOUND",
        ),
        metadata=md,
    ),
    "RecordStockCount": lambda api, md: InventoryServiceStub(api.channel).RecordStockCount(
        inventory_pb.RecordStockCountRequest(
            request_id=str(uuid.uuid4()),
            code="SKU-1001",
            location_code="WH-MAIN",
            counted=500,
            reason="cycle count",
        ),
        metadata=md,
    ),
    "ListLocations": lambda api, md: InventoryServiceStub(api.channel).ListLocations(
        inventory_pb.ListLocationsRequest(), metadata=md
    ),
    **{
        name: functools.partial(_catalog_call, name)
        for name in (
            "UpsertLocations",
            "RenameSku",
            "UpsertProducts",
            "UpsertCustomers",
            "UpsertPriceLists",
            "UpsertContractPrices",
            "UpsertCreditNotes",
        )
    },
    "GetCustomerPrices": lambda api, md: PricingServiceStub(api.channel).GetCustomerPrices(
        pricing_pb.GetCustomerPricesRequest(
            customer_account="C-1001", items=[pricing_pb.PriceQuery(code="SKU-1001", quantity=1)]
        ),
        metadata=md,
    ),
    "ListCreditNotes": lambda api, md: PricingServiceStub(api.channel).ListCreditNotes(
        pricing_pb.ListCreditNotesRequest(customer_account="C-1001"), metadata=md
    ),
    "WatchOrderEvents": lambda api, md: next(  # type: ignore[call-overload]
        api.orders.WatchOrderEvents(
            pb.WatchOrderEventsRequest(after_event_id="no-such-event"), metadata=md, timeout=10
        )
    ),
    "ListHeldOrders": lambda api, md: ExceptionQueueServiceStub(api.channel).ListHeldOrders(
        queue_pb.ListHeldOrdersRequest(), metadata=md
    ),
    "CorrectOrder": lambda api, md: ExceptionQueueServiceStub(api.channel).CorrectOrder(
        queue_pb.CorrectOrderRequest(id=str(uuid.uuid4())), metadata=md
    ),
    "ReleaseOrder": lambda api, md: ExceptionQueueServiceStub(api.channel).ReleaseOrder(
        queue_pb.ReleaseOrderRequest(id=str(uuid.uuid4()), reason="x"), metadata=md
    ),
    "CreateWebhookEndpoint": lambda api, md: WebhookServiceStub(api.channel).CreateWebhookEndpoint(
        webhook_pb.CreateWebhookEndpointRequest(url="https://example.com/hooks"), metadata=md
    ),
    "ListWebhookEndpoints": lambda api, md: WebhookServiceStub(api.channel).ListWebhookEndpoints(
        webhook_pb.ListWebhookEndpointsRequest(), metadata=md
    ),
    "UpdateWebhookEndpoint": lambda api, md: WebhookServiceStub(api.channel).UpdateWebhookEndpoint(
        webhook_pb.UpdateWebhookEndpointRequest(
            endpoint=webhook_pb.WebhookEndpoint(id=str(uuid.uuid4()), enabled=True)
        ),
        metadata=md,
    ),
    "DeleteWebhookEndpoint": lambda api, md: WebhookServiceStub(api.channel).DeleteWebhookEndpoint(
        webhook_pb.DeleteWebhookEndpointRequest(id=str(uuid.uuid4())), metadata=md
    ),
    "RotateWebhookSecret": lambda api, md: WebhookServiceStub(api.channel).RotateWebhookSecret(
        webhook_pb.RotateWebhookSecretRequest(id=str(uuid.uuid4())), metadata=md
    ),
    "ListWebhookDeliveries": lambda api, md: WebhookServiceStub(api.channel).ListWebhookDeliveries(
        webhook_pb.ListWebhookDeliveriesRequest(), metadata=md
    ),
    "RedeliverWebhookEvents": lambda api, md: WebhookServiceStub(
        api.channel
    ).RedeliverWebhookEvents(
        webhook_pb.RedeliverWebhookEventsRequest(endpoint_id=str(uuid.uuid4()), event_id="evt_x"),
        metadata=md,
    ),
    "ListAuditEntries": lambda api, md: AuditServiceStub(api.channel).ListAuditEntries(
        audit_pb.ListAuditEntriesRequest(), metadata=md
    ),
    "CancelOrder": lambda api, md: api.orders.CancelOrder(
        pb.CancelOrderRequest(id=str(uuid.uuid4()), reason="test"), metadata=md
    ),
    "TransitionOrder": lambda api, md: FulfillmentServiceStub(api.channel).TransitionOrder(
        fulfillment_pb.TransitionOrderRequest(
            id=str(uuid.uuid4()), state=order_pb2.ORDER_STATE_PICKING
        ),
        metadata=md,
    ),
    "GetOrder": lambda api, md: api.orders.GetOrder(
        pb.GetOrderRequest(client_order_id="T-1"), metadata=md
    ),
    "ListOrders": lambda api, md: api.orders.ListOrders(pb.ListOrdersRequest(), metadata=md),
    "GetOrderDocument": lambda api, md: api.orders.GetOrderDocument(
        pb.GetOrderDocumentRequest(id=str(uuid.uuid4())), metadata=md
    ),
    "CancelOrderLines": lambda api, md: api.orders.CancelOrderLines(
        pb.CancelOrderLinesRequest(
            id=str(uuid.uuid4()), lines=[order_pb2.LineQuantity(line_number=1)], reason="x"
        ),
        metadata=md,
    ),
    "HoldOrder": lambda api, md: ExceptionQueueServiceStub(api.channel).HoldOrder(
        queue_pb.HoldOrderRequest(id=str(uuid.uuid4()), reason="x"), metadata=md
    ),
    "RecheckOrders": lambda api, md: ExceptionQueueServiceStub(api.channel).RecheckOrders(
        queue_pb.RecheckOrdersRequest(id=str(uuid.uuid4())), metadata=md
    ),
    "AcceptShort": lambda api, md: ExceptionQueueServiceStub(api.channel).AcceptShort(
        queue_pb.AcceptShortRequest(id=str(uuid.uuid4()), reason="x"), metadata=md
    ),
    "CreateShipment": lambda api, md: FulfillmentServiceStub(api.channel).CreateShipment(
        fulfillment_pb.CreateShipmentRequest(
            request_id=str(uuid.uuid4()),
            order_id=str(uuid.uuid4()),
            carrier="DHL",
            tracking_number="X",
        ),
        metadata=md,
    ),
    "UpdateShipment": lambda api, md: FulfillmentServiceStub(api.channel).UpdateShipment(
        fulfillment_pb.UpdateShipmentRequest(shipment_id=str(uuid.uuid4())), metadata=md
    ),
    "ReconcileStock": lambda api, md: InventoryServiceStub(api.channel).ReconcileStock(
        inventory_pb.ReconcileStockRequest(
            request_id=str(uuid.uuid4()),
            entries=[inventory_pb.StockCountEntry(code="SKU-1001", location_code="WH-MAIN")],
            dry_run=True,
        ),
        metadata=md,
    ),
    "CreatePurchaseOrder": lambda api, md: InboundServiceStub(api.channel).CreatePurchaseOrder(
        inbound_pb.CreatePurchaseOrderRequest(po_number="PO-1"), metadata=md
    ),
    "GetPurchaseOrder": lambda api, md: InboundServiceStub(api.channel).GetPurchaseOrder(
        inbound_pb.GetPurchaseOrderRequest(po_number="PO-1"), metadata=md
    ),
    "ListPurchaseOrders": lambda api, md: InboundServiceStub(api.channel).ListPurchaseOrders(
        inbound_pb.ListPurchaseOrdersRequest(), metadata=md
    ),
    "RecordReceipt": lambda api, md: InboundServiceStub(api.channel).RecordReceipt(
        inbound_pb.RecordReceiptRequest(request_id=str(uuid.uuid4()), po_number="PO-1"),
        metadata=md,
    ),
    "ClosePurchaseOrder": lambda api, md: InboundServiceStub(api.channel).ClosePurchaseOrder(
        inbound_pb.ClosePurchaseOrderRequest(po_number="PO-1"), metadata=md
    ),
    "CreateReturn": lambda api, md: ReturnServiceStub(api.channel).CreateReturn(
        return_pb.CreateReturnRequest(rma_id="R-1", order_id=str(uuid.uuid4()), reason="x"),
        metadata=md,
    ),
    "GetReturn": lambda api, md: ReturnServiceStub(api.channel).GetReturn(
        return_pb.GetReturnRequest(rma_id="R-1"), metadata=md
    ),
    "ListReturns": lambda api, md: ReturnServiceStub(api.channel).ListReturns(
        return_pb.ListReturnsRequest(), metadata=md
    ),
    "ReceiveReturn": lambda api, md: ReturnServiceStub(api.channel).ReceiveReturn(
        return_pb.ReceiveReturnRequest(rma_id="R-1", location_code="WH-MAIN"), metadata=md
    ),
    "TriageReturn": lambda api, md: ReturnServiceStub(api.channel).TriageReturn(
        return_pb.TriageReturnRequest(rma_id="R-1"), metadata=md
    ),
}


SERVICES = [
    pb.DESCRIPTOR.services_by_name["OrderService"],
    inventory_pb.DESCRIPTOR.services_by_name["InventoryService"],
    catalog_pb.DESCRIPTOR.services_by_name["CatalogService"],
    pricing_pb.DESCRIPTOR.services_by_name["PricingService"],
    fulfillment_pb.DESCRIPTOR.services_by_name["FulfillmentService"],
    queue_pb.DESCRIPTOR.services_by_name["ExceptionQueueService"],
    audit_pb.DESCRIPTOR.services_by_name["AuditService"],
    webhook_pb.DESCRIPTOR.services_by_name["WebhookService"],
    inbound_pb.DESCRIPTOR.services_by_name["InboundService"],
    return_pb.DESCRIPTOR.services_by_name["ReturnService"],
]
METHODS = {f"/{s.full_name}/{m.name}": m.name for s in SERVICES for m in s.methods}


def test_every_rpc_of_ours_is_in_the_permission_table_and_tested_here() -> None:
    assert set(METHODS) == set(ALLOWED_ROLES)
    assert set(CALLS) == set(METHODS.values())


@pytest.mark.parametrize("method", sorted(CALLS))
@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ([], "API_KEY_MISSING"),
        ([("authorization", "Basic dXNlcjpwYXNz")], "API_KEY_MALFORMED"),
        ([("authorization", "Bearer og_0000000000000000_nope")], "API_KEY_INVALID"),
        ([("authorization", "Bearer something-else")], "API_KEY_INVALID"),
    ],
)
def test_missing_or_bad_keys_are_unauthenticated(
    api: Api, db: Database, method: str, metadata: list[tuple[str, str]], reason: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        CALLS[method](api, metadata)
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.UNAUTHENTICATED
    assert error.reason == reason
    assert count(db, "submissions") == 0


@pytest.mark.parametrize("method", sorted(CALLS))
@pytest.mark.parametrize(
    "role", ["website", "storefront", "admin", "manager", "warehouse", "operations", "finance"]
)
def test_roles_are_allowed_or_refused_per_rpc(api: Api, keys: Keys, method: str, role: str) -> None:
    key = {
        "website": keys.shop,
        "storefront": keys.storefront,
        "admin": keys.admin,
        "manager": keys.manager,
        "warehouse": keys.warehouse,
        "operations": keys.operations,
        "finance": keys.finance,
    }[role]
    full_name = next(name for name, short in METHODS.items() if short == method)
    allowed = role in {r.value for r in ALLOWED_ROLES[full_name]}
    try:
        CALLS[method](api, auth(key))
    except grpc.RpcError as exc:
        error = rich_error(exc)
        if allowed:  # allowed callers may still get a business error, never a role refusal
            assert error.reason != "ROLE_NOT_ALLOWED", error
        else:
            assert error.code == grpc.StatusCode.PERMISSION_DENIED
            assert error.reason == "ROLE_NOT_ALLOWED"
            assert error.metadata["role"] == role
        return
    assert allowed, f"{role} should have been refused {method}"


def test_admin_cannot_submit(api: Api, keys: Keys) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        api.submit(order_xml("ADM-1"), key=keys.admin)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_keys_are_stored_hashed(keys: Keys, db: Database) -> None:
    with db.reader() as conn:
        rows = conn.execute(select(t.api_keys.c.id, t.api_keys.c.secret_sha256)).all()
    secret = keys.shop.split("_", 2)[2]
    assert all(secret not in (row.id + row.secret_sha256) for row in rows)
    assert len(rows) == len(dataclasses.fields(Keys))  # one per key made, none else


def test_health_and_reflection_need_no_key(api: Api) -> None:
    health = health_pb2_grpc.HealthStub(api.channel)
    for service in ("", "ordergate.v1.OrderService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    reflection = reflection_pb2_grpc.ServerReflectionStub(api.channel)
    [answer] = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for s in answer.list_services_response.service}
    assert {"ordergate.v1.OrderService", "grpc.health.v1.Health"} <= names


def test_each_call_is_judged_by_its_own_key(api: Api, keys: Keys) -> None:
    # The guarded handler of a method is kept across calls (api/interceptors.py); the caller
    # it checks is not: a good key, a bad key and a refused role, in turn, on one method.
    stock = InventoryServiceStub(api.channel)
    request = inventory_pb.GetStockLevelsRequest(codes=["SKU-1001"])
    for _ in range(2):
        stock.GetStockLevels(request, metadata=auth(keys.shop))
        with pytest.raises(grpc.RpcError) as bad:
            stock.GetStockLevels(request, metadata=auth("og_0000000000000000_nope"))
        assert rich_error(bad.value).reason == "API_KEY_INVALID"
        with pytest.raises(grpc.RpcError) as refused:
            api.submit(order_xml(f"ROLE-{uuid.uuid4().hex[:6]}"), key=keys.admin)
        assert rich_error(refused.value).reason == "ROLE_NOT_ALLOWED"
        api.submit(order_xml(f"OK-{uuid.uuid4().hex[:6]}"))
