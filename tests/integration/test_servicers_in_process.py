"""Servicer-level tests, in-process: a servicer's method called directly, no channel, no port.

Enough where what is tested is the servicer's own translation (request fields to the service
call, its result to the response message, its refusals as ServiceErrors) rather than anything
the transport or the interceptors do; everything else is tested through a real server.
grpcio-testing, the usual tool for this, drives only synchronous servicers: it calls the
method and takes the coroutine an `async def` returns for the response. Ordergate's servicers
are grpc.aio ones, so these call them with asyncio themselves.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from ordergate.v1 import exception_queue_service_pb2 as eqpb
from ordergate.v1 import inventory_service_pb2 as ipb
from ordergate.v1 import pricing_service_pb2 as ppb
from ordergate_server.api.calls import calling_as
from ordergate_server.api.exception_queue_servicer import ExceptionQueueServicer
from ordergate_server.api.inventory_servicer import InventoryServicer
from ordergate_server.api.pricing_servicer import PricingServicer
from ordergate_server.api.runner import inline
from ordergate_server.domain.access import Principal, Role
from ordergate_server.service.errors import ErrorKind, ServiceError
from ordergate_server.storage import Database, orders

from ..support import Keys
from .stock import stock_row

# These servicers' methods do not use their context: the interceptors do, on a real server.
NO_CONTEXT: Any = None


def principal(db: Database, client: str, role: Role) -> Principal:
    with db.reader() as conn:
        client_id = orders.client_id_by_name(conn, client)
    assert client_id is not None
    return Principal(client_id, client, role)


def test_stock_levels_answer_what_the_store_holds(db: Database, keys: Keys) -> None:
    servicer = InventoryServicer(db, inline, inline)
    reply = asyncio.run(
        servicer.GetStockLevels(ipb.GetStockLevelsRequest(codes=["SKU-1001", "NOPE"]), NO_CONTEXT)
    )
    known, unknown = reply.items
    assert (known.requested_code, known.found, unknown.found) == ("SKU-1001", True, False)
    [main] = [level for level in known.locations if level.location_code == "WH-MAIN"]
    on_hand, allocated = stock_row(db, "SKU-1001", "WH-MAIN")
    assert (main.on_hand, main.available) == (on_hand, on_hand - allocated)
    assert known.total.on_hand == sum(level.on_hand for level in known.locations)


def test_a_website_gets_its_own_customers_prices_and_not_anothers(db: Database, keys: Keys) -> None:
    servicer = PricingServicer(db, inline)
    request = ppb.GetCustomerPricesRequest(
        customer_account="C-1001", items=[ppb.PriceQuery(code="SKU-1002", quantity=1)]
    )
    with calling_as(principal(db, "shop-a", Role.WEBSITE)):
        [price] = asyncio.run(servicer.GetCustomerPrices(request, NO_CONTEXT)).items
    assert Decimal(price.unit_price) == Decimal("11.00")  # C-1001's contract price
    with calling_as(principal(db, "shop-b", Role.WEBSITE)), pytest.raises(ServiceError) as refused:
        asyncio.run(servicer.GetCustomerPrices(request, NO_CONTEXT))
    assert (refused.value.kind, refused.value.reason) == (ErrorKind.NOT_FOUND, "CUSTOMER_NOT_FOUND")


def test_a_release_of_an_order_that_does_not_exist_is_not_found(db: Database, keys: Keys) -> None:
    servicer = ExceptionQueueServicer(db, inline)
    with (
        calling_as(principal(db, "floor-manager", Role.MANAGER)),
        pytest.raises(ServiceError) as refused,
    ):
        asyncio.run(
            servicer.ReleaseOrder(
                eqpb.ReleaseOrderRequest(id="no-such", reason="checked"), NO_CONTEXT
            )
        )
    assert (refused.value.kind, refused.value.reason) == (ErrorKind.NOT_FOUND, "ORDER_NOT_FOUND")
