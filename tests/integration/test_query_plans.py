"""On PostgreSQL with a history of orders, every list and lookup the API makes of the order
tables uses an index, never a full scan (issue "Cost stays flat as history grows").

The statements are the real ones: the service functions behind GetOrder (by id and by the
shop's number), ListOrders with each filter, ListHeldOrders, GetOrderDocument, the event feed
and a submit's claim lookup run against 30,000 stored orders, every statement they send is
caught, and EXPLAIN runs each with its own parameters, as the server's connections plan them
(custom plans, storage/database.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from ordergate_server.domain.access import Principal, Role
from ordergate_server.domain.model import OrderSource, OrderState
from ordergate_server.service import documents, exception_queue, order_events, orders
from ordergate_server.storage import Database, submissions
from ordergate_server.storage import orders as order_store

from ..support import Keys

TABLES = ("orders", "order_lines", "order_events", "order_holds", "submissions")
STORED = 30_000
DELIVERY = (
    '{"name": "Goods In", "street_lines": ["Hafenstrasse 1"], "city": "Hamburg",'
    ' "postal_code": "20457", "region": "", "country_code": "DE", "phone": "", "email": "",'
    ' "window_start": null, "window_end": null, "special_handling": ""}'
)


def _fill(db: Database) -> None:
    """30,000 orders of shop-a with a line, two events and a document each; one in ten held."""
    with db.transaction() as tx:
        client = tx.execute(text("SELECT id FROM clients WHERE name = 'shop-a'")).scalar_one()
        tx.execute(
            text(
                "INSERT INTO orders (id, client_id, client_order_id, customer_account, channel,"
                " currency, created_at, updated_at, state, hold_reasons, delivery, notes,"
                " problem_submission, content_sha256, source, stock_hold)"
                " SELECT gen_random_uuid()::text, :client, 'P-' || n, 'C-1001', 'web', 'EUR',"
                " now() - n * interval '1 minute', now() - n * interval '1 minute',"
                " CASE WHEN n % 10 = 0 THEN 'ON_HOLD' ELSE 'DELIVERED' END, '[]', :delivery, '',"
                " false, md5(n::text), 'API', n % 10 = 0 FROM generate_series(1, :count) AS n"
            ),
            {"client": client, "count": STORED, "delivery": DELIVERY},
        )
        tx.execute(
            text(
                "INSERT INTO order_lines (order_seq, position, line_number, submitted_code, sku,"
                " quantity, cancelled_quantity, shipped_quantity)"
                " SELECT seq, 0, 1, 'SKU-1001', 'SKU-1001', 1, 0, 0 FROM orders"
            )
        )
        tx.execute(
            text(
                "INSERT INTO order_holds (order_seq, code) SELECT seq, 'INSUFFICIENT_STOCK'"
                " FROM orders WHERE state = 'ON_HOLD'"
            )
        )
        for kind in ("SUBMITTED", "DELIVERED"):
            tx.execute(
                text(
                    "INSERT INTO order_events (id, order_seq, created_at, actor, type, new_state,"
                    " detail) SELECT gen_random_uuid()::text, seq, created_at, 'shop-a', :kind,"
                    " state, '' FROM orders"
                ),
                {"kind": kind},
            )
        tx.execute(
            text(
                "INSERT INTO submissions (id, client_id, request_id, received_at, payload,"
                " payload_sha256, order_id, outcome, channel) SELECT gen_random_uuid()::text,"
                " client_id, gen_random_uuid()::text, created_at, '\\x3c612f3e', 'x', id,"
                " 'ORDER', 'GRPC' FROM orders"
            )
        )
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


@pytest.fixture
def caught(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """Every statement sent to PostgreSQL meanwhile, with its parameters."""
    if db.dialect != "postgresql":
        pytest.skip("query plans are PostgreSQL's; SQLite has no planner statistics to go wrong")
    statements: list[tuple[str, Any]] = []

    def catch(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    engines = (db.engine, db.read_engine)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", catch)
    yield statements
    for engine in engines:
        event.remove(engine, "before_cursor_execute", catch)


def test_every_list_and_lookup_of_orders_uses_an_index(
    db: Database, keys: Keys, caught: list[tuple[str, Any]]
) -> None:
    _fill(db)
    caught.clear()
    staff = Principal(0, "floor-manager", Role.MANAGER)
    with db.reader() as conn:
        client = conn.execute(text("SELECT id FROM clients WHERE name = 'shop-a'")).scalar_one()
        some = conn.execute(text("SELECT id FROM orders ORDER BY seq LIMIT 1 OFFSET 15000")).one()
    shop = Principal(client, "shop-a", Role.WEBSITE)
    order_id = some.id
    orders.get_order(db, shop, order_id=order_id)
    orders.get_order(db, shop, client_order_id="P-15000")
    orders.get_order(db, staff, client_order_id="P-15000", client="shop-a")
    month_ago = datetime.now(UTC) - timedelta(days=30)
    for query in (
        orders.OrderQuery(),
        orders.OrderQuery(state=OrderState.DELIVERED),
        orders.OrderQuery(customer_account="C-1001"),
        orders.OrderQuery(client="shop-a"),
        orders.OrderQuery(hold_code="INSUFFICIENT_STOCK"),
        orders.OrderQuery(source=OrderSource.MANUAL),
        orders.OrderQuery(created_after=month_ago, created_before=month_ago + timedelta(days=1)),
        orders.OrderQuery(created_after=month_ago - timedelta(days=365)),  # all of it
        orders.OrderQuery(by_update=True),
    ):
        orders.list_orders(db, staff, page_size=50, query=query)
        orders.list_orders(db, shop, page_size=50, query=query)
    exception_queue.list_held_orders(db, staff, page_size=50)
    exception_queue.list_held_orders(db, staff, reason_code="INSUFFICIENT_STOCK", page_size=50)
    documents.get_order_document(db, shop, order_id)
    with db.reader() as conn:
        old_event = conn.execute(text("SELECT id FROM order_events ORDER BY seq LIMIT 1")).one()
    order_events.poll(db, order_events.start_after(db, old_event.id))
    with db.transaction() as tx:
        submissions.send_claimed(tx, [(client, str(uuid.uuid4())) for _ in range(50)])()
        order_store.send_existing_identities(
            tx, [(client, f"P-{n}", "C-1001") for n in range(50)], lock=True
        )()
    plans = _plans(db, caught)
    assert len(plans) >= 20, "the calls made fewer statements than expected"
    scans = {sql: plan for sql, plan in plans.items() if re.search(r"Seq Scan on (\w+)", plan)}
    scans = {
        sql: plan
        for sql, plan in scans.items()
        if set(re.findall(r"Seq Scan on (\w+)", plan)) & set(TABLES)
    }
    assert scans == {}, "\n\n".join(f"{sql}\n{plan}" for sql, plan in scans.items())
    # A creation window holding the whole history is walked in its index's order and stopped
    # at the page: no sort of every order in it first. (A window the planner expects to hold a
    # row or two may well be sorted; that costs nothing.)
    windows = {
        sql: plan
        for sql, plan in plans.items()
        if "orders.created_at >=" in sql and "orders.created_at <=" not in sql
    }
    assert windows, "no ListOrders by creation window was caught"
    sorted_first = {sql: plan for sql, plan in windows.items() if "Sort" in plan}
    assert sorted_first == {}, "\n\n".join(f"{sql}\n{plan}" for sql, plan in sorted_first.items())


def _plans(db: Database, statements: list[tuple[str, Any]]) -> dict[str, str]:
    """EXPLAIN of every SELECT that reads an order table, with its own parameters."""
    plans: dict[str, str] = {}
    with db.engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        for statement, parameters in statements:
            head = statement.lstrip().upper()
            if not head.startswith("SELECT") or not any(f" {t}" in statement for t in TABLES):
                continue
            cursor.execute("EXPLAIN " + statement, parameters or None)
            plans[statement] = "\n".join(row[0] for row in cursor.fetchall())
        conn.rollback()
    return plans
