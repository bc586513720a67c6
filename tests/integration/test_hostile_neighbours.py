"""One caller's poison never costs another caller an order, on SQLite and PostgreSQL.

Each kind of poison a website key can send (a quantity past what storage holds, a price with 40
digits, a date that has no UTC form, ids, codes and currencies longer than their columns, UBL
line ids and amounts that once crashed the reader, a document with 50,000 schema errors) is
submitted by shop-a while shop-b's valid orders are submitted at the same moment, so that they
share group commits. Every valid order must be stored ACCEPTED, and every poison stored on hold
with a reason that names what is wrong; nothing is answered INTERNAL and nothing is lost. A
stored poison is answered the same on retry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from sqlalchemy import func, select

from ordergate.v1 import inventory_service_pb2 as inv
from ordergate.v1 import inventory_service_pb2_grpc, order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate_server.domain.access import Principal, Role
from ordergate_server.domain.limits import MAX_HOLD_REASONS
from ordergate_server.domain.model import Delivery, LineDraft, OrderDraft
from ordergate_server.service.catalog_load import load_catalog
from ordergate_server.service.submit import PreparedSubmission, SubmitResult, prepare_submission
from ordergate_server.service.submit_batch import store_submissions
from ordergate_server.storage import Database
from ordergate_server.storage import tables as t

from ..support import EXAMPLES, Api, Keys, auth, order_xml, rich_error, writes_held
from .stock import stock_row

PEPPOL = (EXAMPLES / "ubl" / "PEPPOL-BIS3-Order_Example.xml").read_text()


def _ubl(*changes: tuple[str, str], order_id: str = "") -> str:
    """The PEPPOL example with `changes`, and its order id 34 made `order_id` (by default one
    of its own: held orders with the same id would replace each other)."""
    document = PEPPOL.replace("<cbc:ID>34</cbc:ID>", f"<cbc:ID>{order_id or uuid.uuid4()}</cbc:ID>")
    for old, new in changes:
        assert old in document, old
        document = document.replace(old, new, 1)
    return document


def _attributes(n: int) -> str:
    """A native order whose Channel carries `n` attributes the schema does not allow."""
    attributes = " ".join(f'a{i}="x"' for i in range(n))
    return order_xml("P-ATTRS").replace("<Channel>", f"<Channel {attributes}>")


# (name, document sent by shop-a, the hold reason code it must be stored with)
POISONS = [
    ("quantity past INTEGER", order_xml("P-QTY", [("SKU-1001", 2**31)]), "QUANTITY_INVALID"),
    ("quantity of 40 digits", order_xml("P-QTY40", [("SKU-1001", "9" * 40)]), "QUANTITY_INVALID"),
    ("price of 40 digits", order_xml("P-PRICE").replace("9.90", "9" * 40), "VALUE_OUT_OF_RANGE"),
    (
        "date with no UTC form",
        order_xml("P-DATE").replace("2026-11-23T10:00:00Z", "0001-01-01T00:00:00+14:00"),
        "VALUE_OUT_OF_RANGE",
    ),
    (
        "UBL order id of 100 characters",
        _ubl(order_id="X" * 100),
        "VALUE_TOO_LONG",
    ),
    (
        "UBL currency of four letters",
        _ubl(("<cbc:DocumentCurrencyCode>NOK", "<cbc:DocumentCurrencyCode>NOKK")),
        "VALUE_TOO_LONG",
    ),
    (
        "UBL SKU of 100 characters",
        _ubl(("<cbc:ID>121212</cbc:ID>", f"<cbc:ID>{'S' * 100}</cbc:ID>")),
        "VALUE_TOO_LONG",
    ),
    (
        "UBL customer of 100 characters",
        _ubl(('<cbc:ID schemeID="0088">7300010000001', f'<cbc:ID schemeID="0088">{"C" * 100}')),
        "VALUE_TOO_LONG",
    ),
    (
        "UBL line id of 14 digits",
        _ubl(("<cbc:ID>1</cbc:ID>", "<cbc:ID>99999999999999</cbc:ID>")),
        "CUSTOMER_UNKNOWN",  # read, numbered by its position: held only for the catalog
    ),
    (
        "UBL line id that isdigit() takes",
        _ubl(("<cbc:ID>1</cbc:ID>", "<cbc:ID>\u00b2</cbc:ID>")),
        "CUSTOMER_UNKNOWN",
    ),
    (
        "UBL price divided past Decimal's range",
        # 10^500000 / 10^-500000: an exponent past Decimal's 999,999, in a document of 1 MB
        _ubl(
            ('NOK">50.000</cbc:PriceAmount>', f'NOK">1{"0" * 500_000}</cbc:PriceAmount>'),
            ('"EA">1</cbc:BaseQuantity>', f'"EA">0.{"0" * 499_999}1</cbc:BaseQuantity>'),
        ),
        "VALUE_OUT_OF_RANGE",
    ),
    (
        "UBL total of 45 digits",
        _ubl(
            (
                '<cbc:LineExtensionAmount currencyID="NOK">6525.00<',
                f'<cbc:LineExtensionAmount currencyID="NOK">{"9" * 45}.00<',
            )
        ),
        "TOTAL_MISMATCH",
    ),
    ("50,000 schema errors", _attributes(50_000), "SCHEMA_INVALID"),
]


@pytest.fixture
def shop_b_customer(db: Database, keys: Keys) -> str:
    """A customer of shop-b's own, so that shop-b's orders are accepted."""
    buyer = {"account": "C-B", "name": "B's buyer", "currency": "EUR", "client": "shop-b"}
    load_catalog(db, {"customers": [buyer]})
    return "C-B"


def _submit(api: Api, xml: str, key: str, request_id: str) -> pb.SubmitOrderResponse:
    return api.orders.SubmitOrder(
        pb.SubmitOrderRequest(request_id=request_id, order_xml=xml.encode()),
        metadata=auth(key),
        timeout=60,
    )


def test_poisons_never_cost_another_caller_an_order(
    api: Api, keys: Keys, db: Database, shop_b_customer: str
) -> None:
    valid = [
        (str(uuid.uuid4()), order_xml(f"B-{i}", customer=shop_b_customer))
        for i in range(len(POISONS) * 2)
    ]
    poisons = [(str(uuid.uuid4()), xml) for _, xml, _ in POISONS]
    calls = [(request_id, xml, keys.other_shop) for request_id, xml in valid]
    # Interleaved: each poison between two valid orders of the other client.
    for index, (request_id, xml) in enumerate(poisons):
        calls.insert(index * 3 + 1, (request_id, xml, keys.shop))

    # Held writes: every call is read and queued before any is stored, so they share batches.
    with ThreadPoolExecutor(len(calls)) as pool:
        with writes_held(db):
            futures = [pool.submit(_submit, api, xml, key, rid) for rid, xml, key in calls]
        answers = {rid: future.result() for (rid, _, _), future in zip(calls, futures, strict=True)}

    for request_id, _ in valid:
        assert answers[request_id].order.state == order_pb2.ORDER_STATE_ACCEPTED
    for (name, _, code), (request_id, xml) in zip(POISONS, poisons, strict=True):
        order = answers[request_id].order
        assert order.state == order_pb2.ORDER_STATE_ON_HOLD, name
        assert code in [r.code for r in order.hold_reasons], (name, order.hold_reasons[:3])
        # Stored: the same request answers with the same order, replayed.
        again = _submit(api, xml, keys.shop, request_id)
        assert (again.replayed, again.order.id) == (True, order.id), name

    with db.reader() as conn:
        stored = conn.execute(select(func.count()).select_from(t.orders)).scalar_one()
        kept = conn.execute(select(func.count()).select_from(t.submissions)).scalar_one()
    assert stored == len(valid) + len(poisons)
    assert kept == len(valid) + len(poisons)  # every document kept, once; retries answered


def test_a_document_with_fifty_thousand_errors_keeps_a_hundred_and_the_count(api: Api) -> None:
    order = api.submit(_attributes(50_000)).order

    assert len(order.hold_reasons) == MAX_HOLD_REASONS + 1
    assert {r.code for r in order.hold_reasons[:-1]} == {"SCHEMA_INVALID"}
    summary = order.hold_reasons[-1]
    assert summary.code == "MORE_REASONS"
    assert "49,900 more" in summary.message
    assert "50,000 in all" in summary.message
    assert order.ByteSize() < 64 * 1024


def test_a_value_the_database_refuses_is_kept_as_a_problem_and_its_batch_stored(
    db: Database, keys: Keys, shop_b_customer: str
) -> None:
    """The reader's limits are the first line; should a value still reach the database that it
    cannot hold (here a date with no UTC form, built past the reader), the batch is stored one
    by one and the refused submission kept as a problem submission, never lost."""
    with db.reader() as conn:
        ids = dict(conn.execute(select(t.clients.c.name, t.clients.c.id)).all())
    shop_a = Principal(ids["shop-a"], "shop-a", Role.WEBSITE)
    shop_b = Principal(ids["shop-b"], "shop-b", Role.WEBSITE)

    def valid(n: int) -> PreparedSubmission:
        return prepare_submission(
            shop_b,
            request_id=str(uuid.uuid4()),
            payload=order_xml(f"B-{n}", customer=shop_b_customer).encode(),
        )

    unstorable = OrderDraft(
        client_order_id="P-UNSTORABLE",
        order_time=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
        customer_account="C-1001",
        channel="web",
        currency="EUR",
        delivery=Delivery(),
        lines=(LineDraft(1, "SKU-1001", False, "1"),),
    )
    poison = PreparedSubmission(
        principal=shop_a,
        request_id=str(uuid.uuid4()),
        payload=b"<Order/>",
        payload_sha256="0" * 64,
        document=unstorable,
        received_at=datetime.now(UTC),
    )

    outcomes = store_submissions(db, [valid(1), poison, valid(2)])

    assert [o.order.state.value if isinstance(o, SubmitResult) else o for o in outcomes] == [
        "ACCEPTED",
        "ON_HOLD",
        "ACCEPTED",
    ]
    kept = outcomes[1]
    assert not isinstance(kept, Exception)
    assert kept.order.problem_submission
    assert [r.code.value for r in kept.order.hold_reasons] == ["VALUE_OUT_OF_RANGE"]
    assert kept.order.client_order_id == ""  # it names no order, so it replaces none
    # The request is claimed: a retry is answered with the same problem submission.
    [again] = store_submissions(db, [poison])
    assert not isinstance(again, Exception)
    assert (again.replayed, again.order.id) == (True, kept.order.id)


def _adjust(delta: int) -> Message:
    return inv.AdjustStockRequest(
        request_id=str(uuid.uuid4()),
        code="SKU-1001",
        location_code="WH-MAIN",
        delta=delta,
        reason_code="FOUND",
    )


def _count(counted: int) -> Message:
    return inv.RecordStockCountRequest(
        request_id=str(uuid.uuid4()),
        code="SKU-1001",
        location_code="WH-MAIN",
        counted=counted,
        reason="stocktake",
    )


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (_adjust(2**31), "delta"),
        (_adjust(-(2**31)), "delta"),
        (_adjust(2**31 - 1 - 100), "delta"),  # on hand 500 + this is past 2^31 - 1
        (_count(2**31), "counted"),
    ],
)
def test_stock_corrections_past_what_a_record_holds_are_refused_and_change_nothing(
    api: Api, keys: Keys, db: Database, message: Message, field: str
) -> None:
    before = stock_row(db, "SKU-1001")
    stub = inventory_service_pb2_grpc.InventoryServiceStub(api.channel)
    rpc = type(message).__name__.removesuffix("Request")
    call: Callable[..., Any] = getattr(stub, rpc)
    with pytest.raises(grpc.RpcError) as refused:
        call(message, metadata=auth(keys.manager))
    error = rich_error(refused.value)
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "VALUE_OUT_OF_RANGE")
    assert [f for f, _ in error.field_violations] == [field]
    assert stock_row(db, "SKU-1001") == before
