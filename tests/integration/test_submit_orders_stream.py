"""SubmitOrders: bulk intake over one bidirectional stream, one result per item, in order."""

from __future__ import annotations

import uuid

from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate_server.storage import Database

from ..support import Api, auth, order_xml
from .stock import count, stock_row


def _item(xml: str, request_id: str | None = None) -> pb.SubmitOrdersRequest:
    return pb.SubmitOrdersRequest(
        order=pb.SubmitOrderRequest(
            request_id=request_id or str(uuid.uuid4()), order_xml=xml.encode()
        )
    )


def test_each_item_gets_its_own_result_in_order(api: Api, db: Database) -> None:
    reused = str(uuid.uuid4())
    items = [
        _item(order_xml("S-1", [("SKU-1001", 1)])),
        _item(order_xml("S-2", [("NOPE", 1)])),
        _item(order_xml("S-3", [("SKU-1001", 2)]), reused),
        _item(order_xml("S-4", [("SKU-1001", 2)]), reused),  # request_id reused: refused
        _item(order_xml("S-5", [("SKU-1002", 1)])),
        _item(order_xml("S-1", [("SKU-1001", 1)]), items_request_id := str(uuid.uuid4())),
    ]
    replies = list(api.orders.SubmitOrders(iter(items), metadata=auth(api.key), timeout=30))

    assert [r.request_id for r in replies] == [i.order.request_id for i in items]
    assert replies[0].response.order.state == order_pb2.ORDER_STATE_ACCEPTED
    assert replies[1].response.order.hold_reasons[0].code == "SKU_UNKNOWN"
    assert replies[2].response.order.state == order_pb2.ORDER_STATE_ACCEPTED
    assert replies[3].WhichOneof("result") == "error"
    assert (replies[3].error.code, replies[3].error.reason) == (
        "INVALID_ARGUMENT",
        "IDEMPOTENCY_KEY_REUSED",
    )
    assert replies[3].error.field_violations[0].startswith("request_id:")
    assert replies[4].response.order.state == order_pb2.ORDER_STATE_ACCEPTED  # the stream went on
    assert replies[5].request_id == items_request_id
    assert replies[5].response.replayed  # identical resubmission of S-1
    assert count(db, "orders") == 4
    assert stock_row(db, "SKU-1001") == (500, 3)


def test_a_long_stream_is_answered_completely(api: Api, db: Database) -> None:
    items = (_item(order_xml(f"BULK-{i}", [("SKU-1004", 1)])) for i in range(300))
    replies = list(api.orders.SubmitOrders(items, metadata=auth(api.key), timeout=120))
    assert len(replies) == 300
    assert all(r.response.order.state == order_pb2.ORDER_STATE_ACCEPTED for r in replies)
    assert stock_row(db, "SKU-1004") == (1000, 300)
