"""Polling for changed orders: ListOrders by update time, with a token to poll from that holds
however the orders change meanwhile."""

from __future__ import annotations

import time

import grpc
import pytest

from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate_server.service.orders import UPDATE_SETTLE

from ..support import Api, Keys, auth, order_xml

BY_UPDATE = pb.LIST_ORDERS_ORDER_BY_UPDATE_TIME


def _page(api: Api, token: str = "", size: int = 2) -> pb.ListOrdersResponse:
    return api.orders.ListOrders(
        pb.ListOrdersRequest(order_by=BY_UPDATE, page_size=size, page_token=token),
        metadata=auth(api.key),
    )


def _settle() -> None:
    time.sleep(UPDATE_SETTLE.total_seconds() + 0.2)


def test_a_poller_sees_every_change_once_settled_and_none_is_skipped(api: Api, keys: Keys) -> None:
    ids = [api.submit(order_xml(f"P-{n}")).order.id for n in range(3)]
    assert _page(api).orders == []  # changed this instant: not listed yet
    _settle()

    first = _page(api)
    assert [o.id for o in first.orders] == ids[:2]
    # The first order changes while the poller is between pages.
    api.orders.CancelOrder(
        pb.CancelOrderRequest(id=ids[0], reason="changed mind"), metadata=auth(api.key)
    )
    second = _page(api, first.next_page_token)
    assert [o.id for o in second.orders] == [ids[2]]
    assert second.next_page_token  # the last page too: the point to poll from
    assert _page(api, second.next_page_token).orders == []  # nothing settled since

    _settle()
    again = _page(api, second.next_page_token)
    assert [(o.id, o.state) for o in again.orders] == [(ids[0], order_pb2.ORDER_STATE_CANCELLED)]
    quiet = _page(api, again.next_page_token)
    assert quiet.orders == []
    assert quiet.next_page_token == again.next_page_token  # an empty poll keeps its place


def test_a_token_is_tied_to_its_order_and_filters(api: Api) -> None:
    api.submit(order_xml("P-T1"))
    api.submit(order_xml("P-T2"))
    _settle()
    token = _page(api, size=1).next_page_token
    with pytest.raises(grpc.RpcError) as refused:  # the same token, as received order
        api.orders.ListOrders(pb.ListOrdersRequest(page_token=token), metadata=auth(api.key))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
