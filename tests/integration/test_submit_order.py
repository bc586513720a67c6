"""SubmitOrder over a real server, on SQLite and PostgreSQL: outcomes, storage, idempotency."""

from __future__ import annotations

import uuid

import grpc
import pytest
from sqlalchemy import select

from ordergate.v1 import order_pb2
from ordergate_server.service.catalog_load import load_catalog
from ordergate_server.storage import Database, submissions
from ordergate_server.storage import tables as t

from ..support import Api, Keys, order_xml, rich_error
from .stock import count, stock_row

ACCEPTED = order_pb2.ORDER_STATE_ACCEPTED
ON_HOLD = order_pb2.ORDER_STATE_ON_HOLD


def codes(order: order_pb2.Order) -> list[tuple[str, str]]:
    return [(r.code, r.field) for r in order.hold_reasons]


def test_valid_order_is_accepted_and_allocates_stock(api: Api, db: Database) -> None:
    reply = api.submit(order_xml("A-1", [("SKU-1001", 3), ("SKU-1002", 2)]))

    order = reply.order
    assert order.state == ACCEPTED
    assert not order.hold_reasons
    assert not reply.replayed
    assert order.allocation_location == "WH-MAIN"
    assert [(line.sku, line.quantity) for line in order.lines] == [("SKU-1001", 3), ("SKU-1002", 2)]
    assert order.client == "shop-a"
    assert order.delivery.address.city == "Hamburg"
    assert [e.type for e in order.events] == ["SUBMITTED"]
    assert order.events[0].new_state == ACCEPTED
    assert stock_row(db, "SKU-1001") == (500, 3)
    assert stock_row(db, "SKU-1002") == (300, 2)


def test_order_and_event_ids_are_time_ordered_uuids(api: Api, db: Database) -> None:
    """Server-assigned ids are UUIDv7 (domain/ids.py): made one after another, they sort in
    the order they were made, so their unique indexes grow at one end (bench/README.md)."""
    first = api.submit(order_xml("ID-1")).order
    second = api.submit(order_xml("ID-2")).order
    for order in (first, second):
        assert uuid.UUID(order.id).version == 7
        assert all(uuid.UUID(event.id).version == 7 for event in order.events)
    assert first.id < second.id
    with db.reader() as conn:
        stored = conn.execute(select(t.submissions.c.id).order_by(t.submissions.c.received_at))
        ids = [row.id for row in stored]
    assert [uuid.UUID(i).version for i in ids] == [7, 7]
    assert ids == sorted(ids)


def test_every_rule_violation_is_reported_at_once(api: Api, db: Database) -> None:
    xml = order_xml("A-2", [("NOPE-1", 1), ("SKU-1002", "1.5"), ("SKU-2001", 1)], currency="GBP")
    xml = xml.replace("<PostalCode>20095</PostalCode>", "").replace("+49 40 1234567", "call me")

    order = api.submit(xml).order

    assert order.state == ON_HOLD
    assert sorted(codes(order)) == sorted(
        [
            ("SKU_UNKNOWN", "lines[0].sku"),
            ("QUANTITY_INVALID", "lines[1].quantity"),
            ("CURRENCY_MISMATCH", "currency"),
            ("ADDRESS_INCOMPLETE", "delivery.address.postal_code"),
            ("PHONE_INVALID", "delivery.phone"),
            ("SPECIAL_HANDLING_REQUIRED", "delivery.special_handling"),
        ]
    )
    assert not order.allocation_location
    assert stock_row(db, "SKU-1002") == (300, 0)  # a held order allocates nothing


def test_barcodes_and_aliases_resolve_to_the_canonical_sku(api: Api) -> None:
    order = api.submit(order_xml("A-3", [("4006381333948", 1)], barcode_lines=True)).order
    assert order.state == ACCEPTED
    assert (order.lines[0].submitted_code, order.lines[0].sku) == ("4006381333948", "SKU-1002")

    order = api.submit(order_xml("A-4", [("CUP-SET-6", 1)])).order
    assert order.state == ACCEPTED
    assert order.lines[0].sku == "SKU-1001"

    # A barcode is not a SKU: the same digits given as <Sku> do not resolve.
    order = api.submit(order_xml("A-5", [("4006381333948", 1)])).order
    assert codes(order) == [("SKU_UNKNOWN", "lines[0].sku")]


def test_insufficient_stock_holds_and_names_the_shortfall(api: Api, db: Database) -> None:
    order = api.submit(order_xml("A-6", [("SKU-1003", 41)])).order
    assert order.state == ON_HOLD
    [reason] = order.hold_reasons
    assert (reason.code, reason.field) == ("INSUFFICIENT_STOCK", "lines[0].quantity")
    assert "short by 1" in reason.message
    assert stock_row(db, "SKU-1003") == (40, 0)


def test_no_split_across_locations(api: Api) -> None:
    # SKU-3001 lives only in the store, SKU-1003 only in the warehouse: no single location.
    order = api.submit(order_xml("A-7", [("SKU-3001", 1), ("SKU-1003", 1)])).order
    assert codes(order) == [("INSUFFICIENT_STOCK", "lines")]


def test_store_is_used_when_the_warehouse_cannot_serve(api: Api, db: Database) -> None:
    order = api.submit(order_xml("A-8", [("SKU-3001", 2)])).order
    assert order.state == ACCEPTED
    assert order.allocation_location == "STORE-BER"
    assert stock_row(db, "SKU-3001", "STORE-BER") == (2, 2)


def test_malformed_xml_is_stored_as_a_problem_submission(api: Api, db: Database) -> None:
    payload = b"<Order xmlns='urn:ordergate:order:v1'><OrderId>X-1</OrderId>"
    reply = api.submit(payload)

    order = reply.order
    assert order.state == ON_HOLD
    assert order.problem_submission
    assert [r.code for r in order.hold_reasons] == ["XML_MALFORMED"]
    assert order.id
    with db.reader() as conn:
        stored = conn.execute(
            select(t.submissions.c.payload).where(t.submissions.c.order_id == order.id)
        ).scalar_one()
    assert submissions.unpack(stored) == payload  # the raw payload is kept, byte for byte


def test_schema_invalid_xml_is_stored_with_the_xsd_message_and_its_order_id(api: Api) -> None:
    xml = order_xml("S-1").replace("<Quantity>1</Quantity>", "<Quantity>many</Quantity>")
    order = api.submit(xml).order
    assert order.problem_submission
    [reason] = order.hold_reasons
    assert reason.code == "SCHEMA_INVALID"
    assert reason.field == "Order/Lines/Line/Quantity"
    assert "'many' is not a valid value" in reason.message
    assert order.client_order_id == "S-1"


def test_validate_only_checks_everything_and_stores_nothing(api: Api, db: Database) -> None:
    good = api.submit(order_xml("V-1", [("SKU-1001", 5)]), validate_only=True)
    assert good.order.state == ACCEPTED
    assert good.order.allocation_location == "WH-MAIN"
    assert not good.order.id

    short = api.submit(order_xml("V-2", [("SKU-1003", 999)]), validate_only=True)
    assert codes(short.order) == [("INSUFFICIENT_STOCK", "lines[0].quantity")]

    assert count(db, "orders") == 0
    assert count(db, "submissions") == 0
    assert stock_row(db, "SKU-1001") == (500, 0)


def test_validate_only_gives_the_answer_a_resubmission_would_get(api: Api, db: Database) -> None:
    xml = order_xml("V-3", [("SKU-1001", 1)])
    accepted = api.submit(xml).order
    same = api.submit(xml, validate_only=True)
    assert same.replayed
    assert same.order.id == accepted.id
    with pytest.raises(grpc.RpcError) as caught:
        api.submit(order_xml("V-3", [("SKU-1001", 2)]), validate_only=True)
    assert rich_error(caught.value).reason == "DUPLICATE_ORDER_ID"
    assert count(db, "submissions") == 1
    assert stock_row(db, "SKU-1001") == (500, 1)


def test_oversize_payload_is_resource_exhausted_and_not_stored(api: Api, db: Database) -> None:
    padding = "x" * (1024 * 1024)
    xml = order_xml("BIG-1").replace(
        "<Channel>web</Channel>", f"<Channel>web</Channel><!--{padding}-->"
    )
    with pytest.raises(grpc.RpcError) as caught:
        api.submit(xml)
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.reason == "PAYLOAD_TOO_LARGE"
    assert error.metadata["limit_bytes"] == str(1024 * 1024)
    assert error.field_violations[0][0] == "order_xml"
    assert count(db, "orders") == 0


def test_request_id_must_be_a_uuid(api: Api) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        api.submit(order_xml("R-0"), request_id="not-a-uuid")
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "REQUEST_ID_INVALID"
    assert error.field_violations == [("request_id", "not a UUID")]


def test_retry_with_same_request_id_replays_without_a_second_allocation(
    api: Api, db: Database
) -> None:
    request_id = str(uuid.uuid4())
    xml = order_xml("R-1", [("SKU-1001", 4)])
    first = api.submit(xml, request_id=request_id)
    again = api.submit(xml, request_id=request_id)

    assert not first.replayed
    assert again.replayed
    assert again.order.id == first.order.id
    assert again.order.state == ACCEPTED
    assert stock_row(db, "SKU-1001") == (500, 4)
    assert count(db, "orders") == 1


def test_request_id_reused_for_other_content_is_refused(api: Api) -> None:
    request_id = str(uuid.uuid4())
    api.submit(order_xml("R-2"), request_id=request_id)
    with pytest.raises(grpc.RpcError) as caught:
        api.submit(order_xml("R-3"), request_id=request_id)
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "IDEMPOTENCY_KEY_REUSED"
    assert error.field_violations[0][0] == "request_id"


def test_request_ids_are_per_client(api: Api, keys: Keys) -> None:
    request_id = str(uuid.uuid4())
    mine = api.submit(order_xml("R-4"), request_id=request_id)
    theirs = api.submit(order_xml("R-4"), request_id=request_id, key=keys.other_shop)
    assert not theirs.replayed
    assert theirs.order.id != mine.order.id
    assert theirs.order.client == "shop-b"


def test_held_order_resubmitted_is_replaced_and_reevaluated(api: Api, db: Database) -> None:
    held = api.submit(order_xml("H-1", [("SKU-9999", 1)])).order
    assert held.state == ON_HOLD

    fixed = api.submit(order_xml("H-1", [("SKU-1001", 1)])).order

    assert fixed.id == held.id
    assert fixed.state == ACCEPTED
    assert not fixed.hold_reasons
    assert [line.sku for line in fixed.lines] == ["SKU-1001"]
    assert [(e.type, e.new_state) for e in fixed.events] == [
        ("SUBMITTED", ON_HOLD),
        ("RESUBMITTED", ACCEPTED),
    ]
    assert count(db, "orders") == 1
    assert count(db, "submissions") == 2  # both payloads are on record


def test_accepted_order_resubmitted_identically_returns_the_existing_order(
    api: Api, db: Database
) -> None:
    xml = order_xml("D-1", [("SKU-1001", 2)])
    first = api.submit(xml)
    second = api.submit(xml)  # a new request_id: e.g. a re-export from the shop
    assert second.replayed
    assert second.order.id == first.order.id
    assert stock_row(db, "SKU-1001") == (500, 2)


def test_accepted_order_resubmitted_with_other_content_is_already_exists(
    api: Api, db: Database
) -> None:
    first = api.submit(order_xml("D-2", [("SKU-1001", 2)]))
    request_id = str(uuid.uuid4())
    changed = order_xml("D-2", [("SKU-1001", 7)])
    with pytest.raises(grpc.RpcError) as caught:
        api.submit(changed, request_id=request_id)
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.ALREADY_EXISTS
    assert error.reason == "DUPLICATE_ORDER_ID"
    assert error.metadata == {"order_id": "D-2", "state": "ACCEPTED"}
    # The refused payload is on record, and a retry of that request gets the same answer.
    assert count(db, "submissions") == 2
    with pytest.raises(grpc.RpcError) as again:
        api.submit(changed, request_id=request_id)
    assert rich_error(again.value).reason == "DUPLICATE_ORDER_ID"
    assert stock_row(db, "SKU-1001") == (500, 2)
    assert api.submit(order_xml("D-2", [("SKU-1001", 2)])).order.id == first.order.id


def test_same_order_id_from_two_clients_are_two_orders(api: Api, keys: Keys) -> None:
    a = api.submit(order_xml("SAME-1")).order
    b = api.submit(order_xml("SAME-1"), key=keys.other_shop).order
    assert a.id != b.id
    assert (a.client, b.client) == ("shop-a", "shop-b")


def test_a_customer_of_another_website_is_held_exactly_like_an_unknown_one(
    api: Api, keys: Keys, db: Database
) -> None:
    # The demo customers belong to website shop-a in these tests; this one of shop-a's also has
    # another currency and needs special handling, which must not show through to shop-b.
    load_catalog(
        db,
        {
            "customers": [
                {"account": "C-GBP", "name": "Fragile Ltd", "currency": "GBP"}
                | {"requires_special_handling": True, "client": "shop-a"}
            ]
        },
    )

    def seen_by_shop_b(order_id: str, customer: str) -> list[tuple[str, str, str]]:
        order = api.submit(order_xml(order_id, customer=customer), key=keys.other_shop).order
        assert order.state == ON_HOLD
        return [
            (r.code, r.field, r.message.replace(customer, "<account>")) for r in order.hold_reasons
        ]

    unknown = seen_by_shop_b("OTHER-0", "C-NOBODY")
    assert unknown == [
        (
            "CUSTOMER_UNKNOWN",
            "customer_account",
            "Customer account '<account>' is not in the catalog.",
        )
    ]
    assert seen_by_shop_b("OTHER-1", "C-1001") == unknown
    assert seen_by_shop_b("OTHER-2", "C-GBP") == unknown
    assert api.submit(order_xml("OTHER-1")).order.state == ACCEPTED


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol9 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><a>&lol9;</a>',
            "XML_FORBIDDEN_CONSTRUCT",
        ),
        (
            b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>',
            "XML_FORBIDDEN_CONSTRUCT",
        ),
        (b"<a>" * 5000 + b"</a>" * 5000, "XML_LIMIT_EXCEEDED"),
        (b"/etc/passwd", "XML_MALFORMED"),
        (b"", "XML_MALFORMED"),
        ("<a>\u00e9</a>".encode("latin-1"), "XML_MALFORMED"),
    ],
    ids=["billion-laughs", "xxe-file", "deep-nesting", "a-path", "empty", "latin-1-undeclared"],
)
def test_hostile_payloads_are_kept_as_problems_and_the_server_keeps_serving(
    api: Api, payload: bytes, code: str
) -> None:
    order = api.submit(payload).order
    assert order.problem_submission
    assert [r.code for r in order.hold_reasons] == [code]
    assert "root:" not in order.hold_reasons[0].message  # nothing of /etc/passwd leaks back
    assert api.submit(order_xml(f"AFTER-{code}")).order.state == ACCEPTED  # still serving
