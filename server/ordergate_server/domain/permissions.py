"""Which roles may call which RPC. An RPC of ours that is missing here is refused to everyone.

website     submits and reads its own orders, customers, prices; reads stock; its webhooks;
            its own orders' returns (RMAs)
storefront  a shop's front end (its key may sit in a browser or an app): stock and its watch,
            locations, its own customers' prices and credit notes; no orders at all
admin       catalog sync and reading everything; any client's webhooks; the ERP's goods in
            (purchase orders, receipts, returns, stock reconciliation)
manager     exception queue decisions (releases, holds), stock corrections, cancellations;
            goods in (purchase orders, receipts, returns, reconciliation);
            what operations does; reads orders, stock, audit
warehouse   fulfilment transitions and shipments; receipts, receiving and triaging returns
operations  the exception-queue desk: corrections, line cancels, accepting short, re-checks,
            manual (phone and e-mail) orders; reads everything else
finance     reads orders, stock and prices
"""

from __future__ import annotations

from .access import Role

# One letter each, so the table below reads as a matrix.
W, S, A, M, H, OPS, F = (
    Role.WEBSITE,
    Role.STOREFRONT,
    Role.ADMIN,
    Role.MANAGER,
    Role.WAREHOUSE,
    Role.OPERATIONS,
    Role.FINANCE,
)

# Services that need no key at all (standard infrastructure).
PUBLIC_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

_TABLE: dict[str, set[Role]] = {
    "OrderService/SubmitOrder": {W, M, OPS},  # staff: manual orders for a client
    "OrderService/SubmitOrders": {W},
    "OrderService/GetOrder": {W, A, M, H, OPS, F},
    "OrderService/GetOrderDocument": {W, A, M, OPS},
    "OrderService/ListOrders": {W, A, M, H, OPS, F},
    "OrderService/WatchOrderEvents": {W, A, M, OPS},
    "OrderService/CancelOrder": {W, M},
    "OrderService/CancelOrderLines": {M, OPS},
    "FulfillmentService/TransitionOrder": {H},
    "FulfillmentService/CreateShipment": {H},
    "FulfillmentService/UpdateShipment": {H},
    "ExceptionQueueService/ListHeldOrders": {M, A, OPS},
    "ExceptionQueueService/CorrectOrder": {M, OPS},
    "ExceptionQueueService/ReleaseOrder": {M},
    "ExceptionQueueService/HoldOrder": {M},
    "ExceptionQueueService/RecheckOrders": {M, OPS},
    "ExceptionQueueService/AcceptShort": {M, OPS},
    "AuditService/ListAuditEntries": {M, A, OPS},
    "CatalogService/UpsertLocations": {A},
    "CatalogService/UpsertProducts": {A},
    "CatalogService/RenameSku": {A},
    "CatalogService/UpsertCustomers": {A},
    "CatalogService/UpsertPriceLists": {A},
    "CatalogService/UpsertContractPrices": {A},
    "CatalogService/UpsertCreditNotes": {A},
    "WebhookService/CreateWebhookEndpoint": {W, A},
    "WebhookService/ListWebhookEndpoints": {W, A},
    "WebhookService/UpdateWebhookEndpoint": {W, A},
    "WebhookService/DeleteWebhookEndpoint": {W, A},
    "WebhookService/RotateWebhookSecret": {W, A},
    "WebhookService/ListWebhookDeliveries": {W, A},
    "WebhookService/RedeliverWebhookEvents": {W, A},
    "PricingService/GetCustomerPrices": {W, S, A, OPS, F},
    "PricingService/ListCreditNotes": {W, S, A, OPS, F},
    "InventoryService/GetStockLevels": {W, S, A, M, H, OPS, F},
    "InventoryService/WatchStockLevels": {W, S, A, M, OPS},
    "InventoryService/ListLocations": {W, S, A, M, H, OPS, F},
    "InventoryService/AdjustStock": {M},
    "InventoryService/RecordStockCount": {M},
    "InventoryService/ReconcileStock": {A, M},  # the ERP or WMS (admin), or a manager
    "InboundService/CreatePurchaseOrder": {A, M},
    "InboundService/GetPurchaseOrder": {A, M, H, OPS, F},
    "InboundService/ListPurchaseOrders": {A, M, H, OPS, F},
    "InboundService/RecordReceipt": {A, M, H},
    "InboundService/ClosePurchaseOrder": {A, M},
    "ReturnService/CreateReturn": {W, A, M, OPS},  # a website: its own orders' returns
    "ReturnService/GetReturn": {W, A, M, H, OPS, F},
    "ReturnService/ListReturns": {W, A, M, H, OPS, F},
    "ReturnService/ReceiveReturn": {A, M, H},
    "ReturnService/TriageReturn": {A, M, H},
}

ALLOWED_ROLES: dict[str, frozenset[Role]] = {
    f"/ordergate.v1.{method}": frozenset(roles) for method, roles in _TABLE.items()
}


def is_public(method: str) -> bool:
    return method.startswith(PUBLIC_SERVICES)


def may(role: Role, method: str) -> bool:
    """Whether `role` may call `method` ("Service/Method"), as the table says: the API's calls
    and everything that acts as one (the console, the goods-in CSV drop) ask here."""
    return role in ALLOWED_ROLES.get(f"/ordergate.v1.{method}", frozenset())
