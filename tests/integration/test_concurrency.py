"""No oversell and exactly one order per request_id under concurrency, on both databases.

Two levels: through the gRPC server (many client threads), and straight at the service function
from many threads with a connection each, which is what several server processes or replicas do
to the database and what the single event loop of one server would otherwise serialize.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import update

from ordergate.v1 import order_pb2
from ordergate_server.domain.model import OrderState
from ordergate_server.service.submit import submit_order
from ordergate_server.storage import Database
from ordergate_server.storage import tables as t

from ..support import Api, Keys, order_xml
from .stock import count, stock_row


def _set_on_hand(db: Database, sku: str, on_hand: int) -> None:
    with db.transaction() as tx:
        tx.execute(update(t.stock).where(t.stock.c.sku == sku).values(on_hand=on_hand))


def test_200_concurrent_submissions_allocate_exactly_the_50_in_stock(
    api: Api, db: Database
) -> None:
    _set_on_hand(db, "SKU-1005", 50)

    def one(i: int) -> int:
        return api.submit(order_xml(f"C-{i}", [("SKU-1005", 1)])).order.state

    with ThreadPoolExecutor(max_workers=32) as pool:
        states = list(pool.map(one, range(200)))

    assert states.count(order_pb2.ORDER_STATE_ACCEPTED) == 50
    assert states.count(order_pb2.ORDER_STATE_ON_HOLD) == 150
    assert stock_row(db, "SKU-1005") == (50, 50)


def test_concurrent_transactions_from_many_threads_never_oversell(db: Database, keys: Keys) -> None:
    from ordergate_server.service.auth import Authenticator

    principal = Authenticator(db).authenticate(keys.shop)
    assert principal is not None
    _set_on_hand(db, "SKU-1005", 50)

    def one(i: int) -> OrderState:
        # Mixed quantities and two SKUs locked in one transaction: deadlock-prone if unordered.
        lines = (
            [("SKU-1005", 1 + i % 3), ("SKU-1004", 1)]
            if i % 2
            else [("SKU-1004", 1), ("SKU-1005", 1 + i % 3)]
        )
        result = submit_order(
            db, principal, request_id=str(uuid.uuid4()), payload=order_xml(f"T-{i}", lines).encode()
        )
        return result.order.state

    with ThreadPoolExecutor(max_workers=16) as pool:
        states = list(pool.map(one, range(200)))

    on_hand, allocated = stock_row(db, "SKU-1005")
    assert on_hand == 50
    assert allocated <= 50
    accepted = [i for i, s in enumerate(states) if s is OrderState.ACCEPTED]
    assert allocated == sum(1 + i % 3 for i in accepted)  # exactly what the accepted orders hold
    assert 50 - allocated < 3  # and stock ran out rather than being left over
    assert stock_row(db, "SKU-1004") == (1000, len(accepted))


def test_one_request_id_from_many_threads_makes_exactly_one_order(api: Api, db: Database) -> None:
    request_id = str(uuid.uuid4())
    xml = order_xml("ONCE-1", [("SKU-1001", 1)])

    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(lambda _: api.submit(xml, request_id=request_id), range(64)))

    assert len({r.order.id for r in replies}) == 1
    assert sum(not r.replayed for r in replies) == 1
    assert count(db, "orders") == 1
    assert stock_row(db, "SKU-1001") == (500, 1)


def test_one_request_id_from_many_threads_at_the_service_level(db: Database, keys: Keys) -> None:
    from ordergate_server.service.auth import Authenticator

    principal = Authenticator(db).authenticate(keys.shop)
    assert principal is not None
    request_id = str(uuid.uuid4())
    payload = order_xml("ONCE-2", [("SKU-1001", 1)]).encode()

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(
            pool.map(
                lambda _: submit_order(db, principal, request_id=request_id, payload=payload),
                range(48),
            )
        )

    assert len({r.order.id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert count(db, "orders") == 1
    assert stock_row(db, "SKU-1001") == (500, 1)
