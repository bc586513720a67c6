"""Stock holds resolve themselves, on SQLite and PostgreSQL, against a real server.

An order held for stock alone (INSUFFICIENT_STOCK) is accepted once stock rises — by an
adjustment, a count, a cancel releasing stock — oldest first, exactly once, with an event naming
what rose; staff can re-check at once. An accepted order left short by a count or a store sale
goes back to the queue as STOCK_SHORT and is re-checked the same way. Re-checks racing new
submissions and cancels never oversell and never accept an order twice.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor

import grpc
import pytest
from sqlalchemy import select

from ordergate.v1 import exception_queue_service_pb2 as qpb
from ordergate.v1 import inventory_service_pb2 as ipb
from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1.exception_queue_service_pb2_grpc import ExceptionQueueServiceStub
from ordergate.v1.inventory_service_pb2_grpc import InventoryServiceStub
from ordergate_server.domain.access import Principal, Role
from ordergate_server.domain.model import OrderState
from ordergate_server.service import lifecycle, recheck, stock_corrections
from ordergate_server.service.submit import submit_order
from ordergate_server.storage import Database
from ordergate_server.storage import tables as t

from ..support import Api, Keys, ServerThread, auth, order_xml, rich_error, scrape
from .stock import stock_row

ON_HOLD, ACCEPTED = order_pb2.ORDER_STATE_ON_HOLD, order_pb2.ORDER_STATE_ACCEPTED


def _get(api: Api, order_id: str) -> order_pb2.Order:
    return api.orders.GetOrder(pb.GetOrderRequest(id=order_id), metadata=auth(api.key)).order


def _until_accepted(api: Api, order_id: str, seconds: float = 15) -> order_pb2.Order:
    deadline = time.monotonic() + seconds
    while (order := _get(api, order_id)).state != ACCEPTED:
        assert time.monotonic() < deadline, f"never accepted: {order.state} {order.hold_reasons}"
        time.sleep(0.05)
    return order


def _set_stock(api: Api, keys: Keys, sku: str, on_hand: int, location: str = "WH-MAIN") -> None:
    InventoryServiceStub(api.channel).RecordStockCount(
        ipb.RecordStockCountRequest(
            request_id=str(uuid.uuid4()),
            code=sku,
            location_code=location,
            counted=on_hand,
            reason="stocktake",
        ),
        metadata=auth(keys.manager),
    )


def _adjust(api: Api, keys: Keys, sku: str, delta: int) -> ipb.AdjustStockResponse:
    return InventoryServiceStub(api.channel).AdjustStock(
        ipb.AdjustStockRequest(
            request_id=str(uuid.uuid4()),
            code=sku,
            location_code="WH-MAIN",
            delta=delta,
            reason_code="RECEIVED",
        ),
        metadata=auth(keys.manager),
    )


def test_a_stock_held_order_is_accepted_when_stock_arrives(
    api: Api, keys: Keys, db: Database
) -> None:
    _set_stock(api, keys, "SKU-1003", 0)
    held = api.submit(order_xml("SH-1", [("SKU-1003", 3)])).order
    assert held.state == ON_HOLD
    assert [r.code for r in held.hold_reasons] == ["INSUFFICIENT_STOCK"]
    assert held.stock_hold

    _adjust(api, keys, "SKU-1003", 2)  # not yet enough
    time.sleep(0.5)
    assert _get(api, held.id).state == ON_HOLD
    _adjust(api, keys, "SKU-1003", 1)
    accepted = _until_accepted(api, held.id)

    assert accepted.allocation_location == "WH-MAIN"
    assert not accepted.hold_reasons
    event = accepted.events[-1]
    assert (event.type, event.actor) == ("ACCEPTED", "system")
    assert "re-checked after ADJUSTMENT of SKU-1003 at WH-MAIN (+1 available" in event.detail
    assert stock_row(db, "SKU-1003") == (3, 3)


def test_the_oldest_stock_held_order_gets_the_stock_first(api: Api, keys: Keys) -> None:
    _set_stock(api, keys, "SKU-1003", 0)
    older = api.submit(order_xml("SH-OLD", [("SKU-1003", 2)])).order
    newer = api.submit(order_xml("SH-NEW", [("SKU-1003", 2)])).order
    _adjust(api, keys, "SKU-1003", 2)
    _until_accepted(api, older.id)
    time.sleep(0.5)
    assert _get(api, newer.id).state == ON_HOLD


def test_a_cancel_releases_stock_to_the_held_order(api: Api, keys: Keys) -> None:
    _set_stock(api, keys, "SKU-1003", 2)
    taking = api.submit(order_xml("SH-T", [("SKU-1003", 2)])).order
    waiting = api.submit(order_xml("SH-W", [("SKU-1003", 2)])).order
    assert (taking.state, waiting.state) == (ACCEPTED, ON_HOLD)
    api.orders.CancelOrder(
        pb.CancelOrderRequest(id=taking.id, reason="changed mind"), metadata=auth(api.key)
    )
    accepted = _until_accepted(api, waiting.id)
    assert "re-checked after RELEASE of SKU-1003" in accepted.events[-1].detail


def test_staff_recheck_one_order_or_all(api: Api, keys: Keys, db: Database) -> None:
    """The stock arrives behind the log's back (a load of the catalog); a re-check finds it."""
    _set_stock(api, keys, "SKU-1003", 0)
    one = api.submit(order_xml("SH-R1", [("SKU-1003", 1)])).order
    two = api.submit(order_xml("SH-R2", [("SKU-1003", 1)])).order
    with db.transaction() as tx:
        tx.execute(t.stock.update().where(t.stock.c.sku == "SKU-1003").values(on_hand=2))
    queue = ExceptionQueueServiceStub(api.channel)
    done = queue.RecheckOrders(qpb.RecheckOrdersRequest(id=one.id), metadata=auth(keys.manager))
    assert (done.checked, list(done.accepted_order_ids)) == (1, [one.id])
    assert _get(api, one.id).events[-1].detail.startswith("re-checked by floor-manager")
    every = queue.RecheckOrders(qpb.RecheckOrdersRequest(), metadata=auth(keys.operations))
    assert list(every.accepted_order_ids) == [two.id]
    # An order held for something else is not re-checked: it needs a person.
    other = api.submit(order_xml("SH-R3", [("NOPE", 1)])).order
    with pytest.raises(grpc.RpcError) as refused:
        queue.RecheckOrders(qpb.RecheckOrdersRequest(id=other.id), metadata=auth(keys.manager))
    error = rich_error(refused.value)
    assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOT_STOCK_HELD")


def test_a_release_keeps_its_override_and_waits_for_stock(api: Api, keys: Keys) -> None:
    """Held for a bad phone and, once released, short of stock: it waits for stock with only
    INSUFFICIENT_STOCK, and goes through by itself when stock comes."""
    _set_stock(api, keys, "SKU-1003", 0)
    xml = order_xml("SH-P", [("SKU-1003", 1)]).replace("+49 40 1234567", "12")
    held = api.submit(xml).order
    assert [r.code for r in held.hold_reasons] == ["PHONE_INVALID"]
    released = (
        ExceptionQueueServiceStub(api.channel)
        .ReleaseOrder(
            qpb.ReleaseOrderRequest(id=held.id, reason="customer confirmed by phone"),
            metadata=auth(keys.manager),
        )
        .order
    )
    assert released.state == ON_HOLD
    assert [r.code for r in released.hold_reasons] == ["INSUFFICIENT_STOCK"]
    assert released.stock_hold
    _adjust(api, keys, "SKU-1003", 1)
    assert _until_accepted(api, held.id).allocation_location == "WH-MAIN"


def test_an_order_left_short_goes_back_to_the_queue_and_is_rechecked(
    keys: Keys, db: Database
) -> None:
    metrics = ServerThread(db, metrics_listen="127.0.0.1:0")
    try:
        with grpc.insecure_channel(metrics.target) as channel:
            api = Api(channel, keys.shop)
            _set_stock(api, keys, "SKU-1003", 4)
            first = api.submit(order_xml("SS-1", [("SKU-1003", 2)])).order
            second = api.submit(order_xml("SS-2", [("SKU-1003", 2)])).order
            _set_stock(api, keys, "SKU-1003", 3)  # a count finds one missing
            short = _get(api, second.id)
            assert short.state == ON_HOLD
            assert [r.code for r in short.hold_reasons] == ["STOCK_SHORT"]
            assert _get(api, first.id).state == ACCEPTED  # the older one keeps its stock
            assert stock_row(db, "SKU-1003") == (3, 2)
            held = (
                ExceptionQueueServiceStub(channel)
                .ListHeldOrders(
                    qpb.ListHeldOrdersRequest(reason_code="STOCK_SHORT"),
                    metadata=auth(keys.manager),
                )
                .orders
            )
            assert [o.id for o in held] == [second.id]
            depth = scrape(metrics)[
                ("ordergate_exception_queue_depth", (("reason", "STOCK_SHORT"),))
            ]
            assert depth == 1
            _adjust(api, keys, "SKU-1003", 1)
            assert _until_accepted(api, second.id).events[-1].type == "ACCEPTED"
    finally:
        metrics.stop()


def test_rechecks_racing_submits_and_cancels_never_oversell_nor_accept_twice(
    db: Database, keys: Keys
) -> None:
    """Twenty held orders for one scarce SKU; meanwhile, from many threads: stock arrives a
    piece at a time, new orders come in for it, accepted orders are cancelled, and re-check
    passes run. At the end the stock row holds exactly what the accepted orders hold, never
    more than is on hand, and no order was allocated twice."""
    with db.reader() as conn:
        client_id = conn.execute(
            select(t.clients.c.id).where(t.clients.c.name == "shop-a")
        ).scalar_one()
    shop = Principal(client_id, "shop-a", Role.WEBSITE)
    manager = Principal(client_id, "floor-manager", Role.MANAGER)
    stock_corrections.record_stock_count(
        db,
        manager,
        request_id=str(uuid.uuid4()),
        code="SKU-1003",
        location="WH-MAIN",
        counted=5,
        reason="start",
    )

    def submit(n: int) -> tuple[str, OrderState]:
        result = submit_order(
            db,
            shop,
            request_id=str(uuid.uuid4()),
            payload=order_xml(f"RACE-{n}", [("SKU-1003", 1)]).encode(),
        )
        return result.order.id, result.order.state

    first = [submit(n) for n in range(25)]  # 5 accepted, 20 held
    accepted = [order_id for order_id, state in first if state is OrderState.ACCEPTED]
    assert len(accepted) == 5
    stop = threading.Event()

    def arrive(_: int) -> None:
        stock_corrections.adjust_stock(
            db,
            manager,
            request_id=str(uuid.uuid4()),
            code="SKU-1003",
            location="WH-MAIN",
            delta=1,
            reason_code="RECEIVED",
        )

    def cancel(order_id: str) -> None:
        lifecycle.transition(
            db, manager, order_id, OrderState.CANCELLED, lifecycle.Evidence(reason="race")
        )

    def recheck_loop() -> None:
        while not stop.is_set():
            recheck.after_stock_changes(db)

    checkers = [threading.Thread(target=recheck_loop) for _ in range(2)]
    for checker in checkers:
        checker.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            work: list[Future[object]] = [pool.submit(arrive, n) for n in range(10)]
            work += [pool.submit(submit, 100 + n) for n in range(10)]
            work += [pool.submit(cancel, order_id) for order_id in accepted[:3]]
            for done in work:
                done.result()
    finally:
        stop.set()
        for checker in checkers:
            checker.join()
    recheck.after_stock_changes(db)  # what the loops left: finish it

    with db.reader() as conn:
        states = dict(conn.execute(select(t.orders.c.id, t.orders.c.state)).all())
        allocations = Counter(
            order_id
            for (order_id,) in conn.execute(
                select(t.stock_changes.c.order_id).where(t.stock_changes.c.kind == "ALLOCATION")
            )
        )
    holding = [i for i, state in states.items() if state == "ACCEPTED"]
    on_hand, allocated = stock_row(db, "SKU-1003")
    assert on_hand == 5 + 10
    assert allocated == len(holding)  # every piece allocated is held by an accepted order
    assert allocated <= on_hand
    assert max(allocations.values()) == 1  # no order allocated twice
    # Every piece that could serve a held order does: none is left held while stock is free.
    still_held = [i for i, state in states.items() if state == "ON_HOLD"]
    assert not still_held or allocated == on_hand
