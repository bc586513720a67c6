"""SubmitOrders: bulk intake over one bidirectional stream, one result per item, in order;
several items of a stream in the server at once, up to its window."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import pytest

from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate_server.service import submit_queue
from ordergate_server.service.submit import PreparedSubmission
from ordergate_server.service.submit_batch import Outcome, store_submissions
from ordergate_server.storage import Database

from ..support import (
    Api,
    Keys,
    ServerThread,
    auth,
    order_xml,
    rich_error,
    wait_until,
    writes_held,
)
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


def _in_server(server: ServerThread, db: Database) -> Callable[[], int]:
    """How many submissions of `server` wait for storage while writes are held. On SQLite all
    of them wait for the write lock in the queue; on PostgreSQL the first batch has been taken
    and waits inside its transaction for the stock lock, so one more is in the server."""
    queue = server.running.submit_queue
    return lambda: queue.waiting + (0 if db.write_gate is not None else 1)


def test_a_stream_keeps_several_orders_in_the_server_and_answers_them_in_order(
    api: Api, server: ServerThread, db: Database
) -> None:
    # SKU-3001: 2 in stock. Read and stored together, they still take stock in stream order.
    items = [_item(order_xml(f"W-{n}", [("SKU-3001", 1)])) for n in range(3)]
    items += [_item(order_xml(f"W-{n}", [("SKU-1001", 1)])) for n in range(3, 5)]
    in_server = _in_server(server, db)
    with writes_held(db):
        replies: Any = api.orders.SubmitOrders(iter(items), metadata=auth(api.key), timeout=30)
        # Not one at a time: all five are read and queued before the first is answered.
        wait_until(lambda: in_server() == 5, "five orders of the stream in the server at once")
    answers = list(replies)

    assert [a.request_id for a in answers] == [i.order.request_id for i in items]
    assert [a.response.order.client_order_id for a in answers] == [f"W-{n}" for n in range(5)]
    states = [a.response.order.state for a in answers]
    accepted, held = order_pb2.ORDER_STATE_ACCEPTED, order_pb2.ORDER_STATE_ON_HOLD
    assert states == [accepted, accepted, held, accepted, accepted]
    assert answers[2].response.order.hold_reasons[0].code == "INSUFFICIENT_STOCK"
    assert stock_row(db, "SKU-3001", "STORE-BER") == (2, 2)


def test_a_stream_holds_no_more_orders_than_its_window(db: Database, keys: Keys) -> None:
    """ORDERGATE_STREAM_WINDOW bounds what one stream puts in the server (its memory): the next
    item is read only once one is answered. 1 is one at a time."""
    server = ServerThread(db, stream_window=3)
    try:
        with grpc.insecure_channel(server.target) as channel:
            api = Api(channel, keys.shop)
            items = [_item(order_xml(f"WIN-{n}", [("SKU-1001", 1)])) for n in range(10)]
            in_server = _in_server(server, db)
            with writes_held(db):
                replies: Any = api.orders.SubmitOrders(
                    iter(items), metadata=auth(api.key), timeout=30
                )
                wait_until(lambda: in_server() == 3, "the window's three orders in the server")
                time.sleep(0.3)  # the other seven were sent at once: none is read meanwhile
                assert in_server() == 3
            answers = list(replies)
    finally:
        server.stop()
    assert [a.response.order.client_order_id for a in answers] == [f"WIN-{n}" for n in range(10)]
    assert all(a.response.order.state == order_pb2.ORDER_STATE_ACCEPTED for a in answers)
    assert count(db, "orders") == 10


def test_a_malformed_item_ends_the_stream_after_the_items_before_it(
    server: ServerThread, keys: Keys, db: Database
) -> None:
    before = [_item(order_xml(f"M-{n}", [("SKU-1001", 1)])) for n in range(2)]
    raw = [item.SerializeToString() for item in before] + [b"\x0a\xff\xff\xff\xff\x0f"]
    raw.append(_item(order_xml("M-after", [("SKU-1001", 1)])).SerializeToString())
    with grpc.insecure_channel(server.target) as channel:
        call: Any = channel.stream_stream(
            "/ordergate.v1.OrderService/SubmitOrders",
            request_serializer=lambda b: b,
            response_deserializer=pb.SubmitOrdersResponse.FromString,
        )(iter(raw), metadata=auth(keys.shop), timeout=30)
        answers = []
        with pytest.raises(grpc.RpcError) as ended:
            answers.extend(call)
    assert [a.response.order.client_order_id for a in answers] == ["M-0", "M-1"]
    error = rich_error(ended.value)
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_MALFORMED")
    assert count(db, "orders") == 2  # the item after it was never read


def test_a_stream_cancelled_with_orders_queued_loses_and_doubles_nothing(
    api: Api, server: ServerThread, db: Database
) -> None:
    """The client goes away with five orders in the server: each is stored or not, and sent
    again with the same request_ids (as the SDK resumes), each ends up stored exactly once."""
    items = [_item(order_xml(f"C-{n}", [("SKU-1002", 1)])) for n in range(5)]
    in_server = _in_server(server, db)
    with writes_held(db):
        call: Any = api.orders.SubmitOrders(iter(items), metadata=auth(api.key), timeout=30)
        wait_until(lambda: in_server() == 5, "five orders of the stream in the server")
        call.cancel()
    # Whichever of them the server stored before it saw the cancellation, and whenever it sees
    # it, the same request_ids store each order once: a second copy waits and is replayed.
    again = list(api.orders.SubmitOrders(iter(items), metadata=auth(api.key), timeout=30))

    assert [a.response.order.client_order_id for a in again] == [f"C-{n}" for n in range(5)]
    assert all(a.response.order.state == order_pb2.ORDER_STATE_ACCEPTED for a in again)
    assert count(db, "orders") == 5
    assert stock_row(db, "SKU-1002") == (300, 5)


def test_the_orders_of_one_stream_share_transactions(
    api: Api, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone stream's orders are stored several to a commit, not each with its own (on
    SQLite the batch is written on the event loop, and the stream's items arrive one per turn
    of it: the flusher lets it turn before taking a batch)."""
    batches: list[int] = []

    def counting(db: Database, batch: Sequence[PreparedSubmission]) -> list[Outcome]:
        batches.append(len(batch))
        return store_submissions(db, batch)

    monkeypatch.setattr(submit_queue, "store_submissions", counting)
    items = [_item(order_xml(f"B-{n}", [("SKU-1001", 1)])) for n in range(40)]
    answers = list(api.orders.SubmitOrders(iter(items), metadata=auth(api.key), timeout=60))

    assert all(a.response.order.state == order_pb2.ORDER_STATE_ACCEPTED for a in answers)
    assert sum(batches) == 40
    assert max(batches) > 1, batches
