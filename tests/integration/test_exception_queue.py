"""The exception queue: list held orders, correct them, release them (manager), all audited."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from ordergate.v1 import exception_queue_service_pb2 as pb
from ordergate.v1 import order_pb2
from ordergate.v1.exception_queue_service_pb2_grpc import ExceptionQueueServiceStub
from ordergate_server.storage import Database, audit

from ..support import Api, Keys, auth, order_xml, rich_error
from .stock import stock_row


def queue(api: Api) -> ExceptionQueueServiceStub:
    return ExceptionQueueServiceStub(api.channel)


def bad_phone(order_id: str, lines: list[tuple[str, int]] | None = None) -> str:
    return order_xml(order_id, lines or [("SKU-1003", 1)]).replace("+49 40 1234567", "call me")


def test_list_held_orders_filters_and_pages(api: Api, keys: Keys) -> None:
    api.submit(order_xml("Q-ACCEPTED"))
    api.submit(bad_phone("Q-1"))
    api.submit(order_xml("Q-2", [("NOPE", 1)]))
    api.submit(bad_phone("Q-3"))
    md = auth(keys.manager)

    everything = queue(api).ListHeldOrders(pb.ListHeldOrdersRequest(), metadata=md)
    assert [o.client_order_id for o in everything.orders] == ["Q-1", "Q-2", "Q-3"]  # oldest first
    phones = queue(api).ListHeldOrders(
        pb.ListHeldOrdersRequest(reason_code="PHONE_INVALID", page_size=1), metadata=md
    )
    assert [o.client_order_id for o in phones.orders] == ["Q-1"]
    rest = queue(api).ListHeldOrders(
        pb.ListHeldOrdersRequest(
            reason_code="PHONE_INVALID", page_size=1, page_token=phones.next_page_token
        ),
        metadata=md,
    )
    assert [o.client_order_id for o in rest.orders] == ["Q-3"]
    assert not rest.next_page_token
    old = queue(api).ListHeldOrders(
        pb.ListHeldOrdersRequest(min_age=Duration(seconds=3600)), metadata=md
    )
    assert list(old.orders) == []


def test_release_overrides_judgement_holds_and_allocates(
    api: Api, keys: Keys, db: Database
) -> None:
    held = api.submit(bad_phone("R-1", [("SKU-1003", 2)])).order
    assert [r.code for r in held.hold_reasons] == ["PHONE_INVALID"]
    released = (
        queue(api)
        .ReleaseOrder(
            pb.ReleaseOrderRequest(id=held.id, reason="called the customer, number confirmed"),
            metadata=auth(keys.manager),
        )
        .order
    )
    assert released.state == order_pb2.ORDER_STATE_ACCEPTED
    assert not released.hold_reasons
    assert released.allocation_location == "WH-MAIN"
    assert stock_row(db, "SKU-1003") == (40, 2)
    assert (released.events[-1].type, released.events[-1].actor) == ("RELEASED", "floor-manager")
    with db.reader() as conn:
        [entry] = audit.entries_for(conn, f"order/{held.id}")
    assert (entry.action, entry.role, entry.reason) == (
        "order.release",
        "manager",
        "called the customer, number confirmed",
    )


@pytest.mark.parametrize(
    ("xml", "reason_text", "expected"),
    [
        (order_xml("R-2", [("NOPE", 1)]), "ok", "HOLD_NOT_OVERRIDABLE"),
        # Held for stock alone: nothing to override; it waits for stock (test_after_intake.py).
        (order_xml("R-3", [("SKU-1003", 41)]), "ok", "AWAITING_STOCK"),
        (order_xml("R-4"), "ok", "NOT_ON_HOLD"),
    ],
)
def test_release_is_refused_where_a_person_cannot_decide(
    api: Api, keys: Keys, xml: str, reason_text: str, expected: str
) -> None:
    order = api.submit(xml).order
    with pytest.raises(grpc.RpcError) as caught:
        queue(api).ReleaseOrder(
            pb.ReleaseOrderRequest(id=order.id, reason=reason_text), metadata=auth(keys.manager)
        )
    error = rich_error(caught.value)
    assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, expected)


def test_release_needs_a_reason(api: Api, keys: Keys) -> None:
    order = api.submit(bad_phone("R-5")).order
    with pytest.raises(grpc.RpcError) as caught:
        queue(api).ReleaseOrder(pb.ReleaseOrderRequest(id=order.id), metadata=auth(keys.manager))
    assert rich_error(caught.value).reason == "REASON_MISSING"


def test_correct_order_judges_the_new_document_afresh(api: Api, keys: Keys, db: Database) -> None:
    held = api.submit(order_xml("C-1", [("NOPE", 1)])).order
    with pytest.raises(grpc.RpcError) as caught:
        queue(api).CorrectOrder(
            pb.CorrectOrderRequest(
                id=held.id, order_xml=order_xml("C-OTHER").encode(), request_id=str(uuid.uuid4())
            ),
            metadata=auth(keys.manager),
        )
    assert rich_error(caught.value).reason == "ORDER_ID_MISMATCH"

    result = (
        queue(api)
        .CorrectOrder(
            pb.CorrectOrderRequest(
                id=held.id,
                order_xml=order_xml("C-1", [("SKU-1003", 1)]).encode(),
                request_id=str(uuid.uuid4()),
            ),
            metadata=auth(keys.manager),
        )
        .result
    )
    assert result.order.id == held.id
    assert result.order.state == order_pb2.ORDER_STATE_ACCEPTED
    assert result.order.client == "shop-a"  # still the client's order
    assert (result.order.events[-1].type, result.order.events[-1].actor) == (
        "RESUBMITTED",
        "floor-manager",
    )
    with db.reader() as conn:
        assert [e.action for e in audit.entries_for(conn, f"order/{held.id}")] == ["order.correct"]
