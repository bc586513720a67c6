"""Storefront keys: a website client's key for its shop's front end (it may sit in a browser or
an app). It reads stock and its own customers' prices and credit notes, and watches stock; it
cannot submit, cancel or read an order."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from ordergate.v1 import inventory_service_pb2 as ipb
from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1 import pricing_service_pb2 as ppb
from ordergate.v1.inventory_service_pb2_grpc import InventoryServiceStub
from ordergate.v1.pricing_service_pb2_grpc import PricingServiceStub
from ordergate_server.domain.access import Role
from ordergate_server.service import api_keys
from ordergate_server.storage import Database

from ..support import Api, Keys, auth, order_xml, rich_error


def test_a_storefront_key_reads_stock_and_its_own_customers_prices(api: Api, keys: Keys) -> None:
    inventory = InventoryServiceStub(api.channel)
    levels = inventory.GetStockLevels(
        ipb.GetStockLevelsRequest(codes=["SKU-1001"]), metadata=auth(keys.storefront)
    )
    assert levels.items[0].found
    assert inventory.ListLocations(ipb.ListLocationsRequest(), metadata=auth(keys.storefront))
    watch = inventory.WatchStockLevels(
        ipb.WatchStockLevelsRequest(codes=["SKU-1001"]), metadata=auth(keys.storefront)
    )
    assert next(watch).HasField("snapshot")  # type: ignore[call-overload]
    watch.cancel()  # type: ignore[no-untyped-call]
    pricing = PricingServiceStub(api.channel)
    prices = pricing.GetCustomerPrices(
        ppb.GetCustomerPricesRequest(
            customer_account="C-1001", items=[ppb.PriceQuery(code="SKU-1002", quantity=1)]
        ),
        metadata=auth(keys.storefront),
    )
    assert prices.items[0].unit_price == "11.00"
    credit = pricing.ListCreditNotes(
        ppb.ListCreditNotesRequest(customer_account="C-1001"), metadata=auth(keys.storefront)
    )
    assert credit.credit_notes


def test_a_storefront_key_sees_no_other_clients_customers(
    api: Api, db: Database, keys: Keys
) -> None:
    other = api_keys.create_key(db, "shop-b", Role.STOREFRONT, actor="t")[1]
    with pytest.raises(grpc.RpcError) as refused:
        PricingServiceStub(api.channel).GetCustomerPrices(
            ppb.GetCustomerPricesRequest(
                customer_account="C-1001", items=[ppb.PriceQuery(code="SKU-1002", quantity=1)]
            ),
            metadata=auth(other),
        )
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_storefront_key_cannot_touch_orders(api: Api, keys: Keys) -> None:
    order = api.submit(order_xml("SF-1")).order
    calls: dict[str, Callable[[], object]] = {
        "SubmitOrder": lambda: api.submit(order_xml("SF-2"), key=keys.storefront),
        "GetOrder": lambda: api.orders.GetOrder(
            pb.GetOrderRequest(id=order.id), metadata=auth(keys.storefront)
        ),
        "ListOrders": lambda: api.orders.ListOrders(
            pb.ListOrdersRequest(), metadata=auth(keys.storefront)
        ),
        "CancelOrder": lambda: api.orders.CancelOrder(
            pb.CancelOrderRequest(id=order.id, reason="x"), metadata=auth(keys.storefront)
        ),
    }
    for name, call in calls.items():
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, name
        assert rich_error(refused.value).reason == "ROLE_NOT_ALLOWED", name


def test_a_storefront_key_belongs_to_a_website_client_and_keeps_its_role_when_rotated(
    db: Database, keys: Keys
) -> None:
    key_id, _ = api_keys.create_key(db, "shop-new", Role.STOREFRONT, actor="t")
    [made] = api_keys.list_keys(db, "shop-new", actor="t")
    assert made.role is Role.STOREFRONT
    api_keys.create_key(db, "shop-new", Role.WEBSITE, actor="t")  # the client is a website
    new_id, _ = api_keys.rotate_key(db, key_id, actor="t")
    roles = {k.key_id: k.role for k in api_keys.list_keys(db, "shop-new", actor="t")}
    assert roles[new_id] is Role.STOREFRONT
    with pytest.raises(ValueError, match="exists with role"):
        api_keys.create_key(db, "ops-admin", Role.STOREFRONT, actor="t")  # an admin client
