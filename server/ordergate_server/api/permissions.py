"""Which roles may call which RPC. An RPC of ours that is missing here is refused to everyone."""

from __future__ import annotations

from ..domain.access import Role

# Services that need no key at all (standard infrastructure).
PUBLIC_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

ALLOWED_ROLES: dict[str, frozenset[Role]] = {
    "/ordergate.v1.OrderService/SubmitOrder": frozenset({Role.WEBSITE}),
    "/ordergate.v1.OrderService/SubmitOrders": frozenset({Role.WEBSITE}),
    "/ordergate.v1.OrderService/GetOrder": frozenset({Role.WEBSITE, Role.ADMIN}),
    "/ordergate.v1.OrderService/ListOrders": frozenset({Role.WEBSITE, Role.ADMIN}),
    "/ordergate.v1.OrderService/WatchOrderEvents": frozenset(
        {Role.WEBSITE, Role.ADMIN, Role.MANAGER}
    ),
    "/ordergate.v1.OrderService/CancelOrder": frozenset({Role.WEBSITE, Role.MANAGER}),
    "/ordergate.v1.FulfillmentService/TransitionOrder": frozenset({Role.WAREHOUSE}),
    "/ordergate.v1.ExceptionQueueService/ListHeldOrders": frozenset({Role.MANAGER, Role.ADMIN}),
    "/ordergate.v1.ExceptionQueueService/CorrectOrder": frozenset({Role.MANAGER}),
    "/ordergate.v1.ExceptionQueueService/ReleaseOrder": frozenset({Role.MANAGER}),
    **{
        f"/ordergate.v1.CatalogService/{name}": frozenset({Role.ADMIN})
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
    "/ordergate.v1.PricingService/GetCustomerPrices": frozenset({Role.WEBSITE, Role.ADMIN}),
    "/ordergate.v1.PricingService/ListCreditNotes": frozenset({Role.WEBSITE, Role.ADMIN}),
    "/ordergate.v1.InventoryService/GetStockLevels": frozenset({Role.WEBSITE, Role.ADMIN}),
    "/ordergate.v1.InventoryService/WatchStockLevels": frozenset({Role.WEBSITE, Role.ADMIN}),
    "/ordergate.v1.InventoryService/AdjustStock": frozenset({Role.MANAGER}),
    "/ordergate.v1.InventoryService/RecordStockCount": frozenset({Role.MANAGER}),
    "/ordergate.v1.InventoryService/ListLocations": frozenset({Role.WEBSITE, Role.ADMIN}),
}


def is_public(method: str) -> bool:
    return method.startswith(PUBLIC_SERVICES)
