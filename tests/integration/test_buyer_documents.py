"""A buyer's UBL OrderCancellation and OrderChange, on SQLite and PostgreSQL, over gRPC, HTTP
and the file drop: an order not yet picked is cancelled or changed (stock released and planned
afresh), one already picked is not, and each document is answered with an OrderResponse. Known
formats Ordergate does not read are named (FORMAT_UNSUPPORTED)."""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path

import grpc
import pytest
from lxml import etree

from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1.fulfillment_service_pb2 import TransitionOrderRequest
from ordergate.v1.fulfillment_service_pb2_grpc import FulfillmentServiceStub
from ordergate_server.filedrop import DropSettings, FilePoller
from ordergate_server.formats.schemas import UBL_ORDER_RESPONSE_XSD, compiled
from ordergate_server.storage import Database, submissions

from ..support import EXAMPLES, Api, Keys, ServerThread, auth, rich_error
from .stock import stock_row
from .test_ubl_orders import PEPPOL, derive

CANCELLATION = (EXAMPLES / "ubl" / "OrderCancellation-Example.xml").read_text()
CHANGE = (EXAMPLES / "ubl" / "OrderChange-Example.xml").read_text()
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"


def _answer(api: Api, document: str) -> pb.SubmitOrderResponse:
    return api.orders.SubmitOrder(
        pb.SubmitOrderRequest(request_id=str(uuid.uuid4()), order_xml=document.encode()),
        metadata=auth(api.key),
    )


def _response(reply: pb.SubmitOrderResponse) -> tuple[str, list[str]]:
    """The OrderResponse's code and notes; it must be valid against the OASIS schema."""
    root = etree.fromstring(reply.ubl_order_response)
    assert compiled(UBL_ORDER_RESPONSE_XSD).validate(root)
    code = root.findtext(f"{{{CBC}}}OrderResponseCode")
    assert code is not None
    return code, [n.text or "" for n in root.iterfind(f"{{{CBC}}}Note")]


@pytest.fixture
def order_34(api: Api, ubl_catalog: None) -> order_pb2.Order:
    order = api.submit(PEPPOL).order
    assert order.state == order_pb2.ORDER_STATE_ACCEPTED
    return order


def test_a_cancellation_cancels_an_order_not_yet_picked_and_frees_its_stock(
    api: Api, db: Database, order_34: order_pb2.Order
) -> None:
    assert stock_row(db, "121212", "WH-MAIN")[1] == 120
    reply = _answer(api, CANCELLATION)
    assert reply.amendment.document_type == "OrderCancellation"
    assert reply.amendment.accepted
    assert reply.order.id == order_34.id
    assert reply.order.state == order_pb2.ORDER_STATE_CANCELLED
    assert _response(reply)[0] == "AP"
    assert stock_row(db, "121212", "WH-MAIN")[1] == 0
    assert "Project postponed" in reply.order.events[-1].detail
    # The same document again is a replay; a second cancellation of a cancelled order is fine.
    again = _answer(api, CANCELLATION)
    assert again.amendment.accepted
    with db.reader() as conn:  # kept beside the order's own document, as received
        kept = conn.exec_driver_sql(
            "SELECT outcome, payload FROM submissions WHERE order_id = ? ORDER BY received_at"
            if db.dialect == "sqlite"
            else "SELECT outcome, payload FROM submissions WHERE order_id = %s "
            "ORDER BY received_at",
            (order_34.id,),
        ).all()
    # The second cancellation came with a request_id of its own: kept too, and carried out
    # (the order is already cancelled).
    assert [row.outcome for row in kept] == ["ORDER"] + ["OrderCancellation:ACCEPTED"] * 2
    assert submissions.unpack(kept[1].payload) == CANCELLATION.encode()


def test_a_cancellation_of_an_order_being_picked_is_refused_and_changes_nothing(
    api: Api, db: Database, keys: Keys, order_34: order_pb2.Order
) -> None:
    FulfillmentServiceStub(api.channel).TransitionOrder(
        TransitionOrderRequest(id=order_34.id, state=order_pb2.ORDER_STATE_PICKING),
        metadata=auth(keys.warehouse),
    )
    reply = _answer(api, CANCELLATION)
    assert not reply.amendment.accepted
    assert reply.amendment.reason == "ORDER_NOT_CANCELLABLE"
    assert reply.order.state == order_pb2.ORDER_STATE_PICKING
    code, notes = _response(reply)
    assert code == "RE"
    assert "ORDER_NOT_CANCELLABLE" in notes[0]
    assert stock_row(db, "121212", "WH-MAIN")[1] == 120


def test_a_change_replaces_lines_and_reallocates(
    api: Api, db: Database, order_34: order_pb2.Order
) -> None:
    reply = _answer(api, CHANGE)
    assert reply.amendment.accepted, reply.amendment
    order = reply.order
    assert order.state == order_pb2.ORDER_STATE_ACCEPTED
    assert [
        (line.line_number, line.sku, line.quantity - line.cancelled_quantity)
        for line in order.lines
    ] == [(1, "121212", 100), (2, "SItemNo011", 0), (3, "SItemNo001", 5)]
    assert _response(reply)[0] == "AP"
    assert stock_row(db, "121212", "WH-MAIN")[1] == 100
    assert stock_row(db, "SItemNo011", "WH-MAIN")[1] == 0
    assert stock_row(db, "SItemNo001", "WH-MAIN")[1] == 5
    assert order.events[-1].type == "CHANGED"


def test_a_change_beyond_the_stock_is_refused_and_the_order_keeps_its_allocation(
    api: Api, db: Database, order_34: order_pb2.Order
) -> None:
    too_many = derive(
        CHANGE,
        (
            '<cbc:Quantity unitCode="EA">100</cbc:Quantity>',
            '<cbc:Quantity unitCode="EA">5000</cbc:Quantity>',
        ),
    )
    reply = _answer(api, too_many)
    assert not reply.amendment.accepted
    assert reply.amendment.reason == "INSUFFICIENT_STOCK"
    assert [line.quantity for line in reply.order.lines] == [120, 15]
    assert stock_row(db, "121212", "WH-MAIN")[1] == 120
    assert stock_row(db, "SItemNo001", "WH-MAIN")[1] == 0
    assert _response(reply)[0] == "RE"


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ((("<cbc:ID>3</cbc:ID>", "<cbc:ID>2</cbc:ID>"),), "the order has a line 2"),
        ((("<cbc:ID>SItemNo001</cbc:ID>", "<cbc:ID>NOPE</cbc:ID>"),), "is not a product"),
        (
            (
                (
                    "<cbc:ID>1</cbc:ID>\n\t\t\t<cbc:LineStatusCode>3",
                    "<cbc:ID>9</cbc:ID>\n\t\t\t<cbc:LineStatusCode>3",
                ),
            ),
            "line 9 is not a line of the order",
        ),
    ],
)
def test_impossible_line_changes_are_refused_naming_the_line(
    api: Api, order_34: order_pb2.Order, changes: tuple[tuple[str, str], ...], why: str
) -> None:
    reply = _answer(api, derive(CHANGE, *changes))
    assert reply.amendment.reason == "LINES_INVALID"
    assert why in reply.amendment.message
    assert [line.quantity for line in reply.order.lines] == [120, 15]


def test_an_amendment_of_an_unknown_order_is_not_found_and_still_kept(
    api: Api, db: Database, ubl_catalog: None
) -> None:
    with pytest.raises(grpc.RpcError) as missing:
        _answer(api, CANCELLATION)
    error = rich_error(missing.value)
    assert error.code is grpc.StatusCode.NOT_FOUND
    assert error.reason == "ORDER_NOT_FOUND"
    with db.reader() as conn:
        outcomes = conn.exec_driver_sql("SELECT outcome FROM submissions").scalars().all()
    assert outcomes == ["OrderCancellation:ORDER_NOT_FOUND"]


def test_another_buyers_amendment_does_not_touch_the_order(
    api: Api, order_34: order_pb2.Order
) -> None:
    other = derive(CANCELLATION, ("7300010000001", "7300070011115"))
    with pytest.raises(grpc.RpcError) as missing:
        _answer(api, other)
    assert rich_error(missing.value).reason == "ORDER_NOT_FOUND"
    order = api.orders.GetOrder(pb.GetOrderRequest(id=order_34.id), metadata=auth(api.key))
    assert order.order.state == order_pb2.ORDER_STATE_ACCEPTED


def test_validate_only_says_what_would_happen_and_changes_nothing(
    api: Api, db: Database, order_34: order_pb2.Order
) -> None:
    reply = api.orders.SubmitOrder(
        pb.SubmitOrderRequest(order_xml=CANCELLATION.encode(), validate_only=True),
        metadata=auth(api.key),
    )
    assert reply.amendment.accepted
    assert reply.order.state == order_pb2.ORDER_STATE_CANCELLED
    assert stock_row(db, "121212", "WH-MAIN")[1] == 120


def test_amendments_over_http_and_the_file_drop(
    db: Database, keys: Keys, ubl_catalog: None, tmp_path: Path
) -> None:
    server = ServerThread(db, http_listen="127.0.0.1:0")
    try:
        with grpc.insecure_channel(server.target) as channel:
            order = Api(channel, keys.shop).submit(PEPPOL).order
        request = urllib.request.Request(
            f"{server.http}/v1/orders",
            data=CHANGE.encode(),
            headers={
                "authorization": f"Bearer {keys.shop}",
                "content-type": "application/xml",
                "idempotency-key": "change-34-1",
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = json.loads(answer.read())
            assert answer.status == 200
        assert body["amendment"]["accepted"] is True
        assert body["order"]["id"] == order.id
    finally:
        server.stop()
    inbox = tmp_path / "drop" / "shop-a" / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "cancel-34.xml").write_text(CANCELLATION)
    FilePoller(db, DropSettings(root=tmp_path / "drop", settle_seconds=0)).run_due()
    processed = tmp_path / "drop" / "shop-a" / "processed"
    report = json.loads(next(processed.glob("cancel-34.xml*.json")).read_text())
    (entry,) = report["orders"]
    assert entry["state"] == "CANCELLED"
    assert entry["amendment"] == {"document_type": "OrderCancellation", "accepted": True}


@pytest.mark.parametrize(
    ("document", "named"),
    [
        (
            b'<?xml version="1.0"?>\n<!DOCTYPE cXML SYSTEM "http://xml.cxml.org/schemas/cXML/'
            b'1.2.014/cXML.dtd">\n<cXML payloadID="1@shop" timestamp="2026-12-04T10:00:00Z">'
            b"<Request><OrderRequest/></Request></cXML>",
            "cXML",
        ),
        (b'<?xml version="1.0"?><cXML payloadID="1"><Request/></cXML>', "cXML"),
        (
            b'<?xml version="1.0" encoding="UTF-8"?><ORDER xmlns="http://www.opentrans.org/'
            b'XMLSchema/2.1" version="2.1" type="standard"><ORDER_HEADER/></ORDER>',
            "openTRANS",
        ),
        (
            b"UNA:+.? 'UNB+UNOC:3+SENDER:14+RECEIVER:14+261204:1000+1'UNH+1+ORDERS:D:96A:UN'",
            "UN/EDIFACT",
        ),
        (
            b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *261204*1000*U*"
            b"00401*000000001*0*P*>~GS*PO*SENDER*RECEIVER*20261204*1000*1*X*004010~",
            "ANSI X12",
        ),
    ],
)
def test_known_unsupported_formats_are_named(api: Api, document: bytes, named: str) -> None:
    order = api.submit(document).order
    assert order.state == order_pb2.ORDER_STATE_ON_HOLD
    (reason,) = order.hold_reasons
    assert reason.code == "FORMAT_UNSUPPORTED"
    assert f"a {named} document" in reason.message
