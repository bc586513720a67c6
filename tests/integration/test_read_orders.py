"""GetOrder and ListOrders: what each client may see, filters and AIP-158 pagination."""

from __future__ import annotations

import grpc
import pytest

from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb

from ..support import Api, Keys, auth, order_xml, rich_error


def test_get_order_by_id_and_by_client_order_id(api: Api) -> None:
    submitted = api.submit(order_xml("G-1", [("SKU-1001", 2)])).order

    by_id = api.orders.GetOrder(pb.GetOrderRequest(id=submitted.id), metadata=auth(api.key)).order
    by_ref = api.orders.GetOrder(
        pb.GetOrderRequest(client_order_id="G-1"), metadata=auth(api.key)
    ).order

    assert by_id == by_ref
    assert by_id.state == order_pb2.ORDER_STATE_ACCEPTED
    assert by_id.lines[0].quantity == 2
    assert by_id.lines[0].unit_price == "9.90"
    assert by_id.order_time.ToJsonString() == "2026-11-23T10:00:00Z"
    assert [e.type for e in by_id.events] == ["SUBMITTED"]
    assert by_id.events[0].actor == "shop-a"


def test_a_website_cannot_see_another_websites_order(api: Api, keys: Keys) -> None:
    theirs = api.submit(order_xml("G-2"), key=keys.other_shop).order
    for request in (pb.GetOrderRequest(id=theirs.id), pb.GetOrderRequest(client_order_id="G-2")):
        with pytest.raises(grpc.RpcError) as caught:
            api.orders.GetOrder(request, metadata=auth(keys.shop))
        error = rich_error(caught.value)
        assert error.code == grpc.StatusCode.NOT_FOUND
        assert error.reason == "ORDER_NOT_FOUND"


def test_admin_sees_every_clients_orders(api: Api, keys: Keys) -> None:
    theirs = api.submit(order_xml("G-3"), key=keys.other_shop).order
    got = api.orders.GetOrder(pb.GetOrderRequest(id=theirs.id), metadata=auth(keys.admin)).order
    assert got.client == "shop-b"


def test_get_order_needs_a_key_to_look_up(api: Api) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        api.orders.GetOrder(pb.GetOrderRequest(), metadata=auth(api.key))
    assert rich_error(caught.value).reason == "ORDER_LOOKUP_MISSING"


def _list(api: Api, key: str, **fields: object) -> pb.ListOrdersResponse:
    return api.orders.ListOrders(pb.ListOrdersRequest(**fields), metadata=auth(key))  # type: ignore[arg-type]


def test_list_orders_filters_by_state_and_customer(api: Api, keys: Keys) -> None:
    api.submit(order_xml("L-1"))
    api.submit(order_xml("L-2", [("SKU-9999", 1)]))
    api.submit(order_xml("L-3", customer="C-2002", currency="GBP"))
    api.submit(order_xml("L-4"), key=keys.other_shop)

    mine = _list(api, keys.shop)
    assert [o.client_order_id for o in mine.orders] == ["L-1", "L-2", "L-3"]
    held = _list(api, keys.shop, state=order_pb2.ORDER_STATE_ON_HOLD)
    assert [o.client_order_id for o in held.orders] == ["L-2"]
    assert held.orders[0].hold_reasons[0].code == "SKU_UNKNOWN"
    by_customer = _list(api, keys.shop, customer_account="C-2002")
    assert [o.client_order_id for o in by_customer.orders] == ["L-3"]

    everything = _list(api, keys.admin)
    assert [o.client_order_id for o in everything.orders] == ["L-1", "L-2", "L-3", "L-4"]
    only_b = _list(api, keys.admin, client="shop-b")
    assert [o.client_order_id for o in only_b.orders] == ["L-4"]


def test_website_may_not_list_another_client(api: Api, keys: Keys) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _list(api, keys.shop, client="shop-b")
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.PERMISSION_DENIED
    assert error.reason == "CLIENT_FILTER_FORBIDDEN"


def test_pagination_walks_every_order_once(api: Api, keys: Keys) -> None:
    for i in range(7):
        api.submit(order_xml(f"P-{i}"))

    seen, token, pages = [], "", 0
    while True:
        page = _list(api, keys.shop, page_size=3, page_token=token)
        seen += [o.client_order_id for o in page.orders]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"P-{i}" for i in range(7)]
    assert pages == 3


def test_page_token_is_bound_to_its_filters(api: Api, keys: Keys) -> None:
    for i in range(3):
        api.submit(order_xml(f"PT-{i}"))
    token = _list(api, keys.shop, page_size=1).next_page_token
    assert token
    for bad in ({"page_token": token, "customer_account": "C-1001"}, {"page_token": "garbage!"}):
        with pytest.raises(grpc.RpcError) as caught:
            _list(api, keys.shop, page_size=1, **bad)
        error = rich_error(caught.value)
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert error.reason == "PAGE_TOKEN_INVALID"
        assert error.field_violations[0][0] == "page_token"
