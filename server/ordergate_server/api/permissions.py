"""Which roles may call which RPC. An RPC of ours that is missing here is refused to everyone.

website     submits and reads its own orders, customers, prices; reads stock
admin       catalog sync and reading everything
manager     exception queue, stock corrections, cancellations; reads orders, stock, audit
warehouse   fulfilment transitions
operations  reads everything, changes nothing
finance     reads orders, stock and prices
"""

from __future__ import annotations

from ..domain.access import Role

# One letter each, so the table below reads as a matrix.
W, A, M, H, OPS, F = (
    Role.WEBSITE,
    Role.ADMIN,
    Role.MANAGER,
    Role.WAREHOUSE,
    Role.OPERATIONS,
    Role.FINANCE,
)

# Services that need no key at all (standard infrastructure).
PUBLIC_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

_TABLE: dict[str, set[Role]] = {
    "OrderService/SubmitOrder": {W},
    "OrderService/SubmitOrders": {W},
    "OrderService/GetOrder": {W, A, M, H, OPS, F},
    "OrderService/ListOrders": {W, A, M, H, OPS, F},
    "OrderService/WatchOrderEvents": {W, A, M, OPS},
    "OrderService/CancelOrder": {W, M},
    "FulfillmentService/TransitionOrder": {H},
    "ExceptionQueueService/ListHeldOrders": {M, A, OPS},
    "ExceptionQueueService/CorrectOrder": {M},
    "ExceptionQueueService/ReleaseOrder": {M},
    "AuditService/ListAuditEntries": {M, A, OPS},
    "CatalogService/UpsertLocations": {A},
    "CatalogService/UpsertProducts": {A},
    "CatalogService/RenameSku": {A},
    "CatalogService/UpsertCustomers": {A},
    "CatalogService/UpsertPriceLists": {A},
    "CatalogService/UpsertContractPrices": {A},
    "CatalogService/UpsertCreditNotes": {A},
    "PricingService/GetCustomerPrices": {W, A, OPS, F},
    "PricingService/ListCreditNotes": {W, A, OPS, F},
    "InventoryService/GetStockLevels": {W, A, M, H, OPS, F},
    "InventoryService/WatchStockLevels": {W, A, M, OPS},
    "InventoryService/ListLocations": {W, A, M, H, OPS, F},
    "InventoryService/AdjustStock": {M},
    "InventoryService/RecordStockCount": {M},
}

ALLOWED_ROLES: dict[str, frozenset[Role]] = {
    f"/ordergate.v1.{method}": frozenset(roles) for method, roles in _TABLE.items()
}


def is_public(method: str) -> bool:
    return method.startswith(PUBLIC_SERVICES)
