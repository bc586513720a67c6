"""An order is (client, buyer's customer account, buyer's order id), on SQLite and PostgreSQL.

One API key may relay several buyers (a PEPPOL access point, a marketplace) who use the same
order numbers: their orders are independent. The same buyer keeps the rules it always had: a
held order is replaced by its next document, an accepted one is a duplicate. A submission whose
buyer cannot be read never replaces anything, and is never replaced.
"""

from __future__ import annotations

import grpc
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select, text

from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate_server.service.catalog_load import load_catalog
from ordergate_server.storage import Database
from ordergate_server.storage import tables as t
from ordergate_server.storage.database import MIGRATIONS_DIR
from ordergate_server.storage.tables import metadata

from ..support import EXAMPLES, Api, Keys, auth, order_xml, rich_error

ON_HOLD, ACCEPTED = order_pb2.ORDER_STATE_ON_HOLD, order_pb2.ORDER_STATE_ACCEPTED
PEPPOL = (EXAMPLES / "ubl" / "PEPPOL-BIS3-Order_Example.xml").read_text()


@pytest.fixture
def two_buyers(db: Database, keys: Keys) -> tuple[str, str]:
    """Two buyers of shop-a's, both ordering through its one key."""
    load_catalog(
        db,
        {
            "customers": [
                {"account": account, "name": account, "currency": "EUR", "client": "shop-a"}
                for account in ("BUYER-1", "BUYER-2")
            ]
        },
    )
    return "BUYER-1", "BUYER-2"


def test_two_buyers_with_the_same_order_number_have_two_orders(
    api: Api, two_buyers: tuple[str, str]
) -> None:
    first, second = two_buyers
    held = api.submit(order_xml("34", [("NOPE", 1)], customer=first)).order
    assert held.state == ON_HOLD
    other = api.submit(order_xml("34", customer=second)).order

    assert other.id != held.id
    assert other.state == ACCEPTED
    assert [e.type for e in other.events] == ["SUBMITTED"]  # a new order, not a resubmission
    # The first buyer's held order is as it was.
    again = api.orders.GetOrder(pb.GetOrderRequest(id=held.id), metadata=auth(api.key)).order
    assert (again.state, [e.type for e in again.events]) == (ON_HOLD, ["SUBMITTED"])
    # And an accepted order of one buyer does not refuse the other's number either.
    assert api.submit(order_xml("35", customer=first)).order.state == ACCEPTED
    assert api.submit(order_xml("35", customer=second)).order.state == ACCEPTED


def test_the_same_buyer_keeps_the_rules(api: Api, two_buyers: tuple[str, str]) -> None:
    buyer, _ = two_buyers
    held = api.submit(order_xml("40", [("NOPE", 1)], customer=buyer)).order
    replaced = api.submit(order_xml("40", customer=buyer)).order
    assert replaced.id == held.id  # the held order, judged afresh
    assert replaced.state == ACCEPTED
    assert [e.type for e in replaced.events] == ["SUBMITTED", "RESUBMITTED"]
    with pytest.raises(grpc.RpcError) as refused:
        api.submit(order_xml("40", [("SKU-1001", 2)], customer=buyer))
    assert rich_error(refused.value).reason == "DUPLICATE_ORDER_ID"


def test_peppol_orders_of_two_buyers_with_one_number_are_both_taken(
    api: Api, db: Database, keys: Keys
) -> None:
    """PEPPOL's own example number, sent for two buyers by one access point (as the PEPPOL
    use cases 4 and 5 do with order id 5): the second was refused DUPLICATE_ORDER_ID."""
    load_catalog(
        db,
        {
            "products": [
                {"sku": sku, "name": sku} for sku in ("121212", "SItemNo011", "SItemNo001")
            ],
            "customers": [
                {"account": a, "name": a, "currency": "NOK", "client": "shop-a"}
                for a in ("7300010000001", "7300010000002")
            ],
            "stock": [
                {"sku": sku, "location": "WH-MAIN", "on_hand": 1000}
                for sku in ("121212", "SItemNo011", "SItemNo001")
            ],
        },
    )
    one = PEPPOL.replace("<cbc:ID>34</cbc:ID>", "<cbc:ID>5</cbc:ID>", 1)
    two = one.replace("7300010000001", "7300010000002")
    first, second = api.submit(one).order, api.submit(two).order
    assert (first.state, second.state) == (ACCEPTED, ACCEPTED)
    assert first.id != second.id
    assert (first.customer_account, second.customer_account) == ("7300010000001", "7300010000002")


def test_a_document_whose_buyer_cannot_be_read_never_replaces_and_is_never_replaced(
    api: Api, two_buyers: tuple[str, str], db: Database
) -> None:
    buyer, _ = two_buyers
    held = api.submit(order_xml("50", [("NOPE", 1)], customer=buyer)).order
    # Malformed XML that happens to carry the same order number: a problem submission of its
    # own, no buyer; the held order is untouched.
    broken = "<Order xmlns='urn:ordergate:order:v1'><OrderId>50</OrderId><Lines></Order>"
    problem = api.submit(broken).order
    assert problem.problem_submission
    assert problem.id != held.id
    assert problem.customer_account == ""
    # A schema-invalid document without a buyer: the same.
    no_buyer = (
        order_xml("50")
        .replace("<CustomerAccount>C-1001</CustomerAccount>", "")
        .replace("<Channel>web</Channel>", "<Channel>web</Channel><Bogus/>")
    )
    unreadable = api.submit(no_buyer).order
    assert unreadable.problem_submission
    assert unreadable.id not in (held.id, problem.id)
    # And the next document of the buyer replaces its own held order, not a problem submission.
    fixed = api.submit(order_xml("50", customer=buyer)).order
    assert fixed.id == held.id
    with db.reader() as conn:
        with_fifty = conn.execute(
            select(t.orders.c.id).where(t.orders.c.client_order_id == "50")
        ).all()
    # The held order and the schema-invalid one read "50"; the malformed one kept no id.
    assert len(with_fifty) == 2


def test_a_schema_invalid_document_with_its_buyer_is_replaced_by_the_buyers_next(
    api: Api, two_buyers: tuple[str, str]
) -> None:
    buyer, _ = two_buyers
    invalid = order_xml("60", customer=buyer).replace(
        "<Channel>web</Channel>", "<Channel>web</Channel><Bogus/>"
    )
    problem = api.submit(invalid).order
    assert (problem.problem_submission, problem.customer_account) == (True, buyer)
    fixed = api.submit(order_xml("60", customer=buyer)).order
    assert fixed.id == problem.id
    assert fixed.state == ACCEPTED


def test_existing_orders_migrate(db: Database) -> None:
    """From the schema before per-buyer identity: orders without a buyer become NULL (never
    matched), held orders get their hold codes, and those held for stock alone are marked."""
    with db.transaction() as tx:
        for table in reversed(metadata.sorted_tables):
            tx.execute(table.delete())
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0006")
    legacy_columns = (
        "id, client_id, client_order_id, customer_account, channel, currency, created_at, "
        "updated_at, state, hold_reasons, delivery, notes, problem_submission, content_sha256"
    )
    rows = [
        ("a", "ON_HOLD", "", '[{"code": "XML_MALFORMED", "field": "", "message": "x"}]'),
        (
            "b",
            "ON_HOLD",
            "C-1",
            '[{"code": "INSUFFICIENT_STOCK", "field": "lines", "message": "x"}]',
        ),
        ("c", "ACCEPTED", "C-1", "[]"),
    ]
    try:
        with db.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO clients (name, role, created_at) VALUES ('m', 'website', :at)"),
                {"at": "2026-01-01 00:00:00"},
            )
            client_id = conn.execute(text("SELECT id FROM clients")).scalar_one()
            for order_id, state, customer, reasons in rows:
                conn.execute(
                    text(
                        f"INSERT INTO orders ({legacy_columns}) VALUES (:id, :client, :oid, :cust, "
                        "'web', 'EUR', :at, :at, :state, :reasons, '{}', '', false, 'x')"
                    ),
                    {
                        "id": order_id,
                        "client": client_id,
                        "oid": f"O-{order_id}",
                        "cust": customer,
                        "at": "2026-01-01 00:00:00",
                        "state": state,
                        "reasons": reasons,
                    },
                )
    finally:
        with db.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    with db.reader() as conn:
        orders = {
            row.id: (row.customer_account, row.stock_hold) for row in conn.execute(select(t.orders))
        }
        holds = sorted(
            conn.execute(
                select(t.orders.c.id, t.order_holds.c.code).join(
                    t.order_holds, t.order_holds.c.order_seq == t.orders.c.seq
                )
            ).all()
        )
    assert orders == {"a": (None, False), "b": ("C-1", True), "c": ("C-1", False)}
    assert holds == [("a", "XML_MALFORMED"), ("b", "INSUFFICIENT_STOCK")]
