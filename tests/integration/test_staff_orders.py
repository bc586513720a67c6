"""Staff find orders the way people ask, read the documents they came from, and enter phone
orders for clients; on SQLite and PostgreSQL, against a real server."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from ordergate.v1 import exception_queue_service_pb2 as qpb
from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1.exception_queue_service_pb2_grpc import ExceptionQueueServiceStub
from ordergate_server.filedrop import DropSettings, FilePoller
from ordergate_server.service.catalog_load import load_catalog
from ordergate_server.storage import Database, audit
from ordergate_server.storage import tables as t

from ..support import Api, Keys, auth, order_xml, rich_error

S = order_pb2


def _get(api: Api, key: str, **lookup: str) -> order_pb2.Order:
    return api.orders.GetOrder(pb.GetOrderRequest(**lookup), metadata=auth(key)).order


def _list(api: Api, key: str, **filters: object) -> list[str]:
    request = pb.ListOrdersRequest(**filters)  # type: ignore[arg-type]
    return [o.client_order_id for o in api.orders.ListOrders(request, metadata=auth(key)).orders]


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def test_staff_find_an_order_by_the_shops_number(api: Api, keys: Keys, db: Database) -> None:
    load_catalog(
        db,
        {"customers": [{"account": "C-B", "name": "B", "currency": "EUR", "client": "shop-b"}]},
    )
    mine = api.submit(order_xml("WEB-2001")).order
    theirs = api.submit(order_xml("WEB-2001", customer="C-B"), key=keys.other_shop).order
    # Two clients use the number: staff say which.
    with pytest.raises(grpc.RpcError) as ambiguous:
        _get(api, keys.manager, client_order_id="WEB-2001")
    error = rich_error(ambiguous.value)
    assert (error.code, error.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "ORDER_LOOKUP_AMBIGUOUS",
    )
    assert sorted(f for f, _ in error.field_violations) == ["client", "customer_account"]
    for role in ("manager", "operations", "warehouse", "admin", "finance"):
        key = getattr(keys, role)
        assert _get(api, key, client_order_id="WEB-2001", client="shop-a").id == mine.id
        assert _get(api, key, client_order_id="WEB-2001", customer_account="C-B").id == theirs.id
    # A website still finds its own by its own number.
    assert _get(api, keys.shop, client_order_id="WEB-2001").id == mine.id
    with pytest.raises(grpc.RpcError) as nobody:
        _get(api, keys.manager, client_order_id="WEB-2001", client="no-such-shop")
    assert rich_error(nobody.value).reason == "ORDER_NOT_FOUND"


def test_list_orders_by_every_filter(api: Api, keys: Keys, db: Database) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    api.submit(order_xml("F-1"))
    api.submit(order_xml("F-2", [("NOPE", 1)]))
    api.submit(order_xml("F-3").replace("+49 40 1234567", "12"))
    time.sleep(0.05)
    middle = datetime.now(UTC)
    time.sleep(0.05)
    api.submit(order_xml("F-4", customer="C-2002", currency="GBP"))
    manager = keys.manager
    assert _list(api, manager, client="shop-a") == ["F-1", "F-2", "F-3", "F-4"]
    assert _list(api, manager, state=S.ORDER_STATE_ON_HOLD) == ["F-2", "F-3"]
    assert _list(api, manager, hold_reason="SKU_UNKNOWN") == ["F-2"]
    assert _list(api, manager, hold_reason="PHONE_INVALID") == ["F-3"]
    assert _list(api, manager, customer_account="C-2002") == ["F-4"]
    assert _list(api, manager, source=S.ORDER_SOURCE_API) == ["F-1", "F-2", "F-3", "F-4"]
    assert _list(api, manager, source=S.ORDER_SOURCE_MANUAL) == []
    assert _list(api, manager, create_time_after=_stamp(middle)) == ["F-4"]
    assert _list(api, manager, create_time_before=_stamp(middle)) == ["F-1", "F-2", "F-3"]
    assert _list(api, manager, update_time_after=_stamp(before)) == ["F-1", "F-2", "F-3", "F-4"]
    assert _list(api, manager, update_time_before=_stamp(before)) == []
    with pytest.raises(grpc.RpcError) as unknown:
        _list(api, manager, hold_reason="NO_SUCH_CODE")
    assert rich_error(unknown.value).reason == "REASON_CODE_UNKNOWN"


def test_orders_by_hold_reason_page_in_order_with_other_filters(api: Api, keys: Keys) -> None:
    """Listed along the hold codes' index: every page in order, none twice, none missed, and
    the other filters still apply."""
    for n in range(7):
        api.submit(order_xml(f"HR-{n}", [("NOPE", 1)]))
        api.submit(order_xml(f"OK-{n}"))
    api.submit(order_xml("HR-B", [("NOPE", 1)], customer="C-2002", currency="GBP"))
    api.submit(order_xml("PH-1").replace("+49 40 1234567", "12"))
    seen: list[str] = []
    token = ""
    while True:
        page = api.orders.ListOrders(
            pb.ListOrdersRequest(hold_reason="SKU_UNKNOWN", page_size=3, page_token=token),
            metadata=auth(keys.manager),
        )
        assert len(page.orders) <= 3
        seen += [o.client_order_id for o in page.orders]
        token = page.next_page_token
        if not token:
            break
    assert seen == [*(f"HR-{n}" for n in range(7)), "HR-B"]
    assert _list(api, keys.manager, hold_reason="SKU_UNKNOWN", customer_account="C-2002") == [
        "HR-B"
    ]
    assert _list(api, keys.shop, hold_reason="PHONE_INVALID") == ["PH-1"]
    assert _list(api, keys.other_shop, hold_reason="SKU_UNKNOWN") == []  # not theirs


def _pages(api: Api, key: str, size: int, **filters: object) -> list[str]:
    """Every page of a ListOrders, in order; each page at most `size` long."""
    seen: list[str] = []
    token = ""
    while True:
        request = pb.ListOrdersRequest(page_size=size, page_token=token, **filters)  # type: ignore[arg-type]
        page = api.orders.ListOrders(request, metadata=auth(key))
        assert len(page.orders) <= size
        seen += [o.client_order_id for o in page.orders]
        token = page.next_page_token
        if not token:
            return seen


def test_a_creation_window_pages_by_receipt_time_none_twice_none_missed(
    api: Api, keys: Keys, db: Database
) -> None:
    """A window is listed by (create_time, arrival): along its index, so a page costs the same
    however long the window. Two servers stamp create_time from their own clocks, so arrival
    and create_time can disagree, and orders can share an instant: the pages follow
    create_time, ties by arrival, and the page tokens lose and repeat nothing at the ties."""
    for n in range(9):
        if n % 3 == 0:
            api.submit(order_xml(f"W-{n}", customer="C-2002", currency="GBP"))
        else:
            api.submit(order_xml(f"W-{n}"))
    api.submit(order_xml("W-X", [("NOPE", 1)]))
    base = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    # As another server's clock would have it: W-0..W-2 share one instant, W-3 came in last,
    # W-4 and W-5 share one, and W-X (held) was received first.
    stamps = {"W-0": 5, "W-1": 5, "W-2": 5, "W-3": 60, "W-4": 7, "W-5": 7, "W-6": 8}
    stamps |= {"W-7": 9, "W-8": 10, "W-X": 1}
    with db.transaction() as tx:
        for number, second in stamps.items():
            tx.execute(
                t.orders.update()
                .where(t.orders.c.client_order_id == number)
                .values(created_at=base + timedelta(seconds=second))
            )
    arrival = [f"W-{n}" for n in range(9)] + ["W-X"]
    expected = sorted(arrival, key=lambda number: (stamps[number], arrival.index(number)))
    window = {
        "create_time_after": _stamp(base),
        "create_time_before": _stamp(base + timedelta(minutes=1)),
    }
    for size in (1, 2, 3, 50):
        assert _pages(api, keys.manager, size, **window) == expected
    # The bounds are inclusive, and each alone is a window too.
    assert _pages(api, keys.manager, 2, create_time_after=_stamp(base + timedelta(seconds=7))) == [
        "W-4",
        "W-5",
        "W-6",
        "W-7",
        "W-8",
        "W-3",
    ]
    assert _pages(api, keys.manager, 2, create_time_before=_stamp(base + timedelta(seconds=5))) == [
        "W-X",
        "W-0",
        "W-1",
        "W-2",
    ]
    # The other filters still apply, and a website sees only its own.
    assert _pages(api, keys.manager, 2, customer_account="C-2002", **window) == [
        "W-0",
        "W-6",
        "W-3",
    ]
    assert _pages(api, keys.manager, 2, state=S.ORDER_STATE_ON_HOLD, **window) == ["W-X"]
    assert _pages(api, keys.shop, 4, **window) == expected
    assert _pages(api, keys.other_shop, 4, **window) == []
    # A token is tied to its window: another one refuses it.
    first = api.orders.ListOrders(
        pb.ListOrdersRequest(page_size=2, **window),  # type: ignore[arg-type]
        metadata=auth(keys.manager),
    )
    with pytest.raises(grpc.RpcError) as moved:
        api.orders.ListOrders(
            pb.ListOrdersRequest(
                page_size=2, page_token=first.next_page_token, create_time_after=_stamp(base)
            ),
            metadata=auth(keys.manager),
        )
    assert rich_error(moved.value).reason == "PAGE_TOKEN_INVALID"


def test_list_held_orders_by_client_and_an_unknown_reason_is_refused(api: Api, keys: Keys) -> None:
    held = api.submit(order_xml("H-1", [("NOPE", 1)])).order
    queue = ExceptionQueueServiceStub(api.channel)
    listed = queue.ListHeldOrders(
        qpb.ListHeldOrdersRequest(client="shop-a"), metadata=auth(keys.manager)
    ).orders
    assert [o.id for o in listed] == [held.id]
    assert not queue.ListHeldOrders(
        qpb.ListHeldOrdersRequest(client="shop-b"), metadata=auth(keys.manager)
    ).orders
    with pytest.raises(grpc.RpcError) as refused:
        queue.ListHeldOrders(
            qpb.ListHeldOrdersRequest(reason_code="SKU_UNKNWON"), metadata=auth(keys.manager)
        )
    error = rich_error(refused.value)
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "REASON_CODE_UNKNOWN")
    assert error.field_violations == [("reason_code", "not a hold reason code")]


def test_the_stored_document_comes_back_exactly(api: Api, keys: Keys, db: Database) -> None:
    xml = order_xml("D-1", [("NOPE", 1)]).encode()
    held = api.submit(xml).order
    found = api.orders.GetOrderDocument(
        pb.GetOrderDocumentRequest(id=held.id), metadata=auth(keys.operations)
    )
    assert found.document == xml
    assert (found.content_type, found.format) == ("application/xml", "ordergate-order-v1")
    assert found.channel == pb.SUBMISSION_CHANNEL_GRPC
    assert found.size_bytes == len(xml)
    assert abs(found.receive_time.ToDatetime(tzinfo=UTC) - datetime.now(UTC)) < timedelta(minutes=1)
    with db.reader() as conn:  # a staff read of personal data, audited as reads of the order
        reads = [
            e.reason for e in audit.entries_for(conn, f"order/{held.id}") if e.action == "pii.read"
        ]
    assert reads == ["GetOrderDocument"]

    # Fetch, edit, correct: the correction's document is what comes back then.
    fixed = xml.replace(b"NOPE", b"SKU-1001")
    ExceptionQueueServiceStub(api.channel).CorrectOrder(
        qpb.CorrectOrderRequest(id=held.id, order_xml=fixed, request_id=str(uuid.uuid4())),
        metadata=auth(keys.operations),
    )
    now = api.orders.GetOrderDocument(
        pb.GetOrderDocumentRequest(id=held.id), metadata=auth(keys.manager)
    )
    assert (now.document, now.channel) == (fixed, pb.SUBMISSION_CHANNEL_MANUAL)

    broken = b"<Order><not-closed>"
    problem = api.submit(broken).order
    unknown = api.orders.GetOrderDocument(
        pb.GetOrderDocumentRequest(id=problem.id), metadata=auth(keys.admin)
    )
    assert (unknown.document, unknown.format) == (broken, "unknown")


def test_a_file_drop_order_says_so(api: Api, keys: Keys, db: Database, tmp_path: Path) -> None:
    inbox = tmp_path / "shop-a" / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "o.xml").write_text(order_xml("FD-1"))
    (inbox / "o.xml.done").write_text("")
    FilePoller(db, DropSettings(root=tmp_path, settle_seconds=0)).run_due()
    order = _get(api, keys.shop, client_order_id="FD-1")
    assert order.source == S.ORDER_SOURCE_FILE_DROP
    found = api.orders.GetOrderDocument(
        pb.GetOrderDocumentRequest(id=order.id), metadata=auth(keys.shop)
    )
    assert found.channel == pb.SUBMISSION_CHANNEL_FILE_DROP


def test_staff_enter_a_phone_order_for_a_client(api: Api, keys: Keys, db: Database) -> None:
    request = pb.SubmitOrderRequest(
        request_id=str(uuid.uuid4()),
        order_xml=order_xml("PHONE-1").encode(),
        on_behalf_of_client="shop-a",
    )
    entered = api.orders.SubmitOrder(request, metadata=auth(keys.operations)).order
    assert entered.state == S.ORDER_STATE_ACCEPTED
    assert (entered.client, entered.source, entered.entered_by) == (
        "shop-a",
        S.ORDER_SOURCE_MANUAL,
        "ops-desk",
    )
    assert entered.events[0].actor == "ops-desk"
    # The same rules: a phone order with an unknown SKU is held like any.
    held = api.orders.SubmitOrder(
        pb.SubmitOrderRequest(
            request_id=str(uuid.uuid4()),
            order_xml=order_xml("PHONE-2", [("NOPE", 1)]).encode(),
            on_behalf_of_client="shop-a",
        ),
        metadata=auth(keys.manager),
    ).order
    assert held.state == S.ORDER_STATE_ON_HOLD
    assert _list(api, keys.manager, source=S.ORDER_SOURCE_MANUAL) == ["PHONE-1", "PHONE-2"]
    # The shop sees it as its own order.
    assert _get(api, keys.shop, client_order_id="PHONE-1").entered_by == "ops-desk"
    with db.reader() as conn:
        [entry] = [
            e for e in audit.entries_for(conn, f"order/{entered.id}") if e.action != "pii.read"
        ]
    assert (entry.action, entry.actor, entry.role) == ("order.enter", "ops-desk", "operations")

    for key, on_behalf, reason in (
        (keys.manager, "", "CLIENT_MISSING"),
        (keys.manager, "no-such-shop", "CLIENT_NOT_FOUND"),
        (keys.shop, "shop-b", "ON_BEHALF_FORBIDDEN"),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            api.orders.SubmitOrder(
                pb.SubmitOrderRequest(
                    request_id=str(uuid.uuid4()),
                    order_xml=order_xml("PHONE-X").encode(),
                    on_behalf_of_client=on_behalf,
                ),
                metadata=auth(key),
            )
        assert rich_error(refused.value).reason == reason
