"""The SDK against a live server: results, errors, idempotent retries, bulk, async."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from sdk_support import EXAMPLES, DemoServer, FlakyProxy, order_xml, start_demo_server

from ordergate import AsyncClient, Client, ConnectionConfig, RetryPolicy, errors
from ordergate.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc, return_service_pb2

ACCEPTED = order_pb2.ORDER_STATE_ACCEPTED
ON_HOLD = order_pb2.ORDER_STATE_ON_HOLD


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(demo: DemoServer) -> Iterator[Client]:
    with Client(target=demo.target, api_key=demo.key) as client:
        yield client


def test_submit_from_path_bytes_and_str(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "order.xml"
    path.write_text(order_xml(unique("P")), encoding="utf-8")
    assert client.submit_order(path).order.state == ACCEPTED
    assert client.submit_order(order_xml(unique("B")).encode()).order.state == ACCEPTED
    assert client.submit_order(order_xml(unique("S"))).order.state == ACCEPTED


def test_a_str_is_xml_never_a_file_name(client: Client) -> None:
    reply = client.submit_order(str(EXAMPLES / "minimal-order.xml"))
    assert reply.order.state == ON_HOLD
    assert reply.order.hold_reasons[0].code == "XML_MALFORMED"


def test_a_held_order_is_a_result_not_an_exception(client: Client) -> None:
    reply = client.submit_order(order_xml(unique("H"), sku="NOPE-1"))
    assert reply.order.state == ON_HOLD
    assert [(r.code, r.field) for r in reply.order.hold_reasons] == [
        ("SKU_UNKNOWN", "lines[0].sku")
    ]


def test_the_derived_request_id_turns_a_retry_from_anywhere_into_a_replay(demo: DemoServer) -> None:
    xml = order_xml(unique("R"))
    with Client(target=demo.target, api_key=demo.key) as first:
        original = first.submit_order(xml)
    with Client(target=demo.target, api_key=demo.key) as after_a_crash:
        again = after_a_crash.submit_order(xml)
    assert not original.replayed
    assert again.replayed
    assert again.order.id == original.order.id


def test_errors_carry_code_reason_and_field_violations(client: Client, demo: DemoServer) -> None:
    request_id = str(uuid.uuid4())
    client.submit_order(order_xml(unique("E")), request_id=request_id)
    with pytest.raises(errors.InvalidArgumentError) as caught:
        client.submit_order(order_xml(unique("E")), request_id=request_id)
    assert caught.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert caught.value.field_violations[0].field == "request_id"

    with (
        Client(target=demo.target, api_key="og_0000_wrong") as stranger,
        pytest.raises(errors.UnauthenticatedError) as denied,
    ):
        stranger.get_order(client_order_id="x")
    assert denied.value.reason == "API_KEY_INVALID"
    assert isinstance(denied.value, errors.OrdergateError)

    with pytest.raises(errors.NotFoundError):
        client.get_order(id=str(uuid.uuid4()))


def test_duplicate_order_id_with_other_content_is_already_exists(client: Client) -> None:
    order_id = unique("D")
    client.submit_order(order_xml(order_id, quantity=1))
    with pytest.raises(errors.AlreadyExistsError) as caught:
        client.submit_order(order_xml(order_id, quantity=2))
    assert caught.value.reason == "DUPLICATE_ORDER_ID"
    assert caught.value.metadata["order_id"] == order_id


def test_get_and_iterate_orders(client: Client) -> None:
    held_ids = {client.submit_order(order_xml(unique("L"), sku="NOPE")).order.id for _ in range(5)}
    got = client.get_order(id=next(iter(held_ids)))
    assert got.state == ON_HOLD
    listed = {o.id for o in client.iter_orders(state="ON_HOLD", page_size=2)}
    assert held_ids <= listed
    assert held_ids <= {o.id for o in client.iter_orders(state="ON_HOLD")}


def test_validate_only_stores_nothing(client: Client) -> None:
    order_id = unique("V")
    reply = client.submit_order(order_xml(order_id), validate_only=True)
    assert reply.order.state == ACCEPTED
    assert not reply.order.id
    with pytest.raises(errors.NotFoundError):
        client.get_order(client_order_id=order_id)


def test_a_connection_killed_mid_call_still_makes_exactly_one_order(demo: DemoServer) -> None:
    proxy = FlakyProxy(demo.target)
    order_id = unique("K")
    xml = order_xml(order_id)
    proxy.cut_after(len(xml.encode()))  # the request reaches the server; the answer never returns
    try:
        with Client(target=proxy.target, api_key=demo.key) as client:
            reply = client.submit_order(xml)
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert proxy.accepted >= 2  # the retry came in on a new connection
    assert reply.replayed  # the server had made the order on the first attempt
    with Client(target=demo.target, api_key=demo.key) as direct:
        matching = [o for o in direct.iter_orders() if o.client_order_id == order_id]
    assert [o.id for o in matching] == [reply.order.id]


def test_unavailable_is_retried_with_backoff_then_succeeds(demo: DemoServer) -> None:
    proxy = FlakyProxy(demo.target)
    proxy.refuse(2)
    try:
        with Client(target=proxy.target, api_key=demo.key) as client:
            reply = client.submit_order(order_xml(unique("U")))
    finally:
        proxy.close()
    assert reply.order.state == ACCEPTED
    assert proxy.accepted >= 3


def test_without_retry_unavailable_is_raised(demo: DemoServer) -> None:
    proxy = FlakyProxy(demo.target)
    proxy.refuse(1)
    try:
        with (
            Client(target=proxy.target, api_key=demo.key, retry=None) as client,
            pytest.raises(errors.UnavailableError),
        ):
            client.submit_order(order_xml(unique("N")))
    finally:
        proxy.close()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_busy_server_is_retried_no_sooner_than_it_advises(tmp_path: Path, kind: str) -> None:
    """A server serving all the calls it takes at once answers SERVER_BUSY with a RetryInfo;
    the SDK waits at least that long between attempts, so even a quick policy outlasts a
    short rush, and the call goes through once the server has room."""
    # One worker (each has its own slots), with one slot.
    busy = start_demo_server(
        tmp_path, {"ORDERGATE_WORKERS": "1", "ORDERGATE_MAX_CONCURRENT_RPCS": "1"}
    )
    release = threading.Event()

    def one_order_then_wait() -> Iterator[order_service_pb2.SubmitOrdersRequest]:
        yield order_service_pb2.SubmitOrdersRequest(
            order=order_service_pb2.SubmitOrderRequest(
                request_id=str(uuid.uuid4()), order_xml=order_xml(unique("HOLD")).encode()
            )
        )
        release.wait(30)

    try:
        with grpc.insecure_channel(busy.target) as channel:
            stub = order_service_pb2_grpc.OrderServiceStub(channel)
            # An open bulk submission holds the server's one slot.
            held = stub.SubmitOrders(
                one_order_then_wait(), metadata=(("authorization", f"Bearer {busy.key}"),)
            )
            assert next(iter(held)).response.order.state == ACCEPTED  # the stream is served
            with Client(target=busy.target, api_key=busy.key, retry=None) as client:
                refused: errors.OrdergateError | None = None
                try:
                    client.list_orders(page_size=1)
                except errors.UnavailableError as error:
                    refused = error
            assert refused is not None
            assert refused.reason == "SERVER_BUSY"
            assert refused.retry_after == 0.25

            quick = RetryPolicy(max_attempts=4, initial_backoff_s=0.001, max_backoff_s=0.002)
            threading.Timer(0.4, release.set).start()  # the rush ends
            started = time.monotonic()
            if kind == "sync":
                with Client(target=busy.target, api_key=busy.key, retry=quick) as client:
                    reply = client.submit_order(order_xml(unique("BUSY")))
            else:

                async def submit() -> order_service_pb2.SubmitOrderResponse:
                    async with AsyncClient(target=busy.target, api_key=busy.key, retry=quick) as c:
                        return await c.submit_order(order_xml(unique("BUSY")))

                reply = asyncio.run(submit())
            # Three waits of a few milliseconds would have given up before the rush ended.
            assert reply.order.state == ACCEPTED
            assert time.monotonic() - started >= 0.4
            assert list(held) == []
    finally:
        release.set()
        busy.stop()


def test_an_unreachable_server_gives_up_within_the_retry_budget() -> None:
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02)
    with (
        Client(ConnectionConfig(target="127.0.0.1:9"), retry=policy, timeout=5) as client,
        pytest.raises(errors.UnavailableError),
    ):
        client.get_order(id="x")


def test_bulk_submit_reads_lazily_and_answers_each_in_order(client: Client) -> None:
    pulled = 0
    answered = 0
    in_flight_peak = 0
    window = 8

    def documents() -> Iterator[str]:
        nonlocal pulled
        for i in range(120):
            pulled += 1
            yield order_xml(unique(f"BULK{i}"), sku="NOPE" if i % 10 == 0 else "SKU-1004")

    for result in client.submit_orders(documents(), window=window):
        answered += 1
        in_flight_peak = max(in_flight_peak, pulled - answered)
        assert result.error is None
        assert result.order is not None
        expected = ON_HOLD if (answered - 1) % 10 == 0 else ACCEPTED
        assert result.order.state == expected
    assert answered == pulled == 120
    assert in_flight_peak <= window  # never more than the window unanswered


def test_bulk_submit_reports_a_refused_item_and_goes_on(client: Client) -> None:
    order_id = unique("BD")
    client.submit_order(order_xml(order_id, quantity=1))
    docs = [order_xml(unique("B1")), order_xml(order_id, quantity=3), order_xml(unique("B2"))]
    results = list(client.submit_orders(docs))
    assert results[0].order is not None
    assert results[0].order.state == ACCEPTED
    assert isinstance(results[1].error, errors.AlreadyExistsError)
    assert results[1].error.reason == "DUPLICATE_ORDER_ID"
    assert results[2].order is not None
    assert results[2].order.state == ACCEPTED


def test_bulk_submit_resumes_after_a_broken_stream_without_doubling(demo: DemoServer) -> None:
    proxy = FlakyProxy(demo.target)
    docs = [order_xml(unique(f"BR{i}")) for i in range(20)]
    proxy.cut_after(3 * len(docs[0].encode()))  # break the stream after a few orders went out
    try:
        with Client(target=proxy.target, api_key=demo.key) as client:
            results = list(client.submit_orders(docs, window=4))
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert len(results) == 20
    assert all(r.order is not None and r.order.state == ACCEPTED for r in results)
    ids = [r.order.id for r in results if r.order is not None]
    assert len(set(ids)) == 20


def test_async_client_does_the_same(demo: DemoServer) -> None:
    async def scenario() -> None:
        async with AsyncClient(target=demo.target, api_key=demo.key) as client:
            xml = order_xml(unique("A"))
            first = await client.submit_order(xml)
            again = await client.submit_order(xml)
            assert first.order.state == ACCEPTED
            assert again.replayed
            assert again.order.id == first.order.id
            held = await client.submit_order(order_xml(unique("AH"), sku="NOPE"))
            assert held.order.state == ON_HOLD
            assert (await client.get_order(id=first.order.id)).id == first.order.id
            ids = [o.id async for o in client.iter_orders(state="ON_HOLD", page_size=1)]
            assert held.order.id in ids
            results = [
                r
                async for r in client.submit_orders(
                    [order_xml(unique(f"AB{i}")) for i in range(10)]
                )
            ]
            assert [r.order.state for r in results if r.order] == [ACCEPTED] * 10
            with pytest.raises(errors.AlreadyExistsError):
                await client.submit_order(order_xml(first.order.client_order_id, quantity=9))

    asyncio.run(scenario())


def test_async_client_survives_a_killed_connection(demo: DemoServer) -> None:
    proxy = FlakyProxy(demo.target)
    xml = order_xml(unique("AK"))
    proxy.cut_after(len(xml.encode()))

    async def scenario() -> None:
        async with AsyncClient(target=proxy.target, api_key=demo.key) as client:
            reply = await client.submit_order(xml)
            assert reply.replayed

    try:
        asyncio.run(scenario())
    finally:
        proxy.close()
    assert proxy.cuts == 1


def test_stock_levels_follow_a_submission(client: Client) -> None:
    [before] = client.get_stock_levels(["SKU-1005"])
    client.submit_order(order_xml(unique("SL"), sku="SKU-1005", quantity=3))
    after, unknown = client.get_stock_levels(["SKU-1005", "NOPE-9"], location_codes=["WH-MAIN"])
    assert after.total.allocated == before.total.allocated + 3
    assert after.total.available == before.total.available - 3
    assert not unknown.found
    with pytest.raises(errors.InvalidArgumentError) as caught:
        client.get_stock_levels([])
    assert caught.value.reason == "CODES_MISSING"
    assert [x.code for x in client.list_locations().locations] == ["WH-MAIN", "STORE-BER"]


def test_catalog_upserts_as_admin(demo: DemoServer, client: Client) -> None:
    from ordergate.v1 import catalog_service_pb2 as cpb

    product = cpb.Product(sku=unique("NEW"), name="New product", barcodes=[unique("BC")])
    with Client(target=demo.target, api_key=demo.admin_key) as admin:
        created = admin.upsert_products([product], batch_size=1)
        again = admin.upsert_products([product])
    assert (created.created, again.unchanged) == (1, 1)
    [stock] = client.get_stock_levels([product.barcodes[0]])
    assert stock.sku == product.sku
    with pytest.raises(errors.PermissionDeniedError):
        client.upsert_products([product])  # a website key may not change the catalog


def test_async_catalog_upsert(demo: DemoServer) -> None:
    from ordergate.v1 import catalog_service_pb2 as cpb

    async def scenario() -> None:
        async with AsyncClient(target=demo.target, api_key=demo.admin_key) as admin:
            counts = await admin.upsert_products([cpb.Product(sku=unique("AS"), name="Async")])
            assert counts.created == 1

    asyncio.run(scenario())


def test_customer_prices_and_credit(client: Client) -> None:
    reply = client.get_customer_prices("C-1001", [("SKU-1001", 12), ("SKU-1002", 1), ("NOPE", 1)])
    assert reply.currency == "EUR"
    assert [(i.sku, i.unit_price, i.rule) for i in reply.items[:2]] == [
        ("SKU-1001", "29.50", "price list EU-B2B, from 12 pieces"),
        ("SKU-1002", "11.00", "contract price"),
    ]
    assert not reply.items[2].found
    credit = client.list_credit_notes("C-1001")
    assert [(b.currency, b.remaining) for b in credit.balances] == [("EUR", "20.00")]
    with pytest.raises(errors.NotFoundError):
        client.get_customer_prices("C-UNKNOWN", [("SKU-1001", 1)])


def test_a_stock_adjustment_retried_after_a_lost_answer_applies_once(demo: DemoServer) -> None:
    with Client(target=demo.target, api_key=demo.key) as shop:
        [before] = shop.get_stock_levels(["SKU-1005"], location_codes=["WH-MAIN"])
    proxy = FlakyProxy(demo.target)
    note = "forklift " * 200  # a large request, so the cut falls inside it, after the handshake
    proxy.cut_after(len(note) // 2)  # the request reaches the server; its answer is lost
    try:
        with Client(target=proxy.target, api_key=demo.manager_key) as manager:
            reply = manager.adjust_stock("SKU-1005", "WH-MAIN", -3, "DAMAGED", note=note)
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert reply.replayed
    assert reply.level.on_hand == before.total.on_hand - 3
    with Client(target=demo.target, api_key=demo.manager_key) as manager:
        counted = manager.record_stock_count("SKU-1005", "WH-MAIN", 150, "stocktake")
    assert counted.variance == 150 - reply.level.on_hand


def test_the_stock_watch_helper_resumes_after_a_dropped_connection(demo: DemoServer) -> None:
    proxy = FlakyProxy(demo.target)
    try:
        with (
            Client(target=proxy.target, api_key=demo.key) as watcher,
            Client(target=demo.target, api_key=demo.key) as shop,
        ):
            stream = watcher.watch_stock_levels(["SKU-1003"])
            snapshot = next(stream).snapshot
            shop.submit_order(order_xml(unique("WA"), sku="SKU-1003", quantity=1))
            first = next(stream).change
            proxy.drop_all()  # the watcher's connection dies
            for _ in range(2):  # changes while it is down
                shop.submit_order(order_xml(unique("WB"), sku="SKU-1003", quantity=1))
            missed = [next(stream).change for _ in range(2)]
    finally:
        proxy.close()
    allocated = [first.level.allocated] + [c.level.allocated for c in missed]
    assert allocated == [allocated[0], allocated[0] + 1, allocated[0] + 2]
    assert snapshot.change_id < first.change_id < missed[0].change_id < missed[1].change_id
    assert proxy.accepted >= 2  # it reconnected


def test_warehouse_transitions_and_cancel(demo: DemoServer, client: Client) -> None:
    from datetime import UTC, datetime

    order = client.submit_order(order_xml(unique("FL"))).order
    with Client(target=demo.target, api_key=demo.warehouse_key) as warehouse:
        for state in ("PICKING", "PICKED", "PACKED"):
            warehouse.transition_order(order.id, state)
        with pytest.raises(errors.InvalidArgumentError) as caught:
            warehouse.transition_order(order.id, "DISPATCHED", carrier="DHL")
        assert caught.value.reason == "EVIDENCE_MISSING"
        warehouse.transition_order(order.id, "DISPATCHED", carrier="DHL", tracking_number="1Z9")
        done = warehouse.transition_order(order.id, "DELIVERED", delivery_time=datetime.now(UTC))
    assert done.state == order_pb2.ORDER_STATE_DELIVERED
    other = client.submit_order(order_xml(unique("CX"))).order
    assert client.cancel_order(other.id, "customer changed their mind").state == (
        order_pb2.ORDER_STATE_CANCELLED
    )
    with pytest.raises(errors.FailedPreconditionError) as refused:
        client.cancel_order(order.id, "too late")
    assert refused.value.reason == "ILLEGAL_TRANSITION"


def test_the_order_event_watch_resumes_after_a_dropped_connection(demo: DemoServer) -> None:
    proxy = FlakyProxy(demo.target)
    try:
        with (
            Client(target=proxy.target, api_key=demo.key) as watcher,
            Client(target=demo.target, api_key=demo.key) as shop,
        ):
            start = shop.submit_order(order_xml(unique("EV0"))).order.events[-1].id
            stream = watcher.watch_order_events(after_event_id=start)
            first_id = shop.submit_order(order_xml(unique("EV1"))).order.id
            assert next(stream).order_id == first_id
            proxy.drop_all()
            later = [shop.submit_order(order_xml(unique(f"EV{i}"))).order.id for i in (2, 3)]
            assert [next(stream).order_id for _ in later] == later
    finally:
        proxy.close()
    assert proxy.accepted >= 2


def test_the_exception_queue_for_a_manager(demo: DemoServer, client: Client) -> None:
    order_id = unique("EQ")
    held = client.submit_order(order_xml(order_id, sku="NOPE")).order
    with Client(target=demo.target, api_key=demo.manager_key) as manager:
        page = manager.list_held_orders(reason_code="SKU_UNKNOWN", page_size=500)
        assert held.id in [o.id for o in page.orders]
        fixed = manager.correct_order(held.id, order_xml(order_id))
        assert fixed.order.state == ACCEPTED
        other = client.submit_order(order_xml(unique("EQP")).replace("+49 40 1234567", "n/a")).order
        released = manager.release_order(other.id, "number confirmed by phone")
        assert released.state == ACCEPTED
        with pytest.raises(errors.FailedPreconditionError) as caught:
            manager.release_order(other.id, "again")
        assert caught.value.reason == "NOT_ON_HOLD"


def test_an_order_worked_after_intake_with_the_sync_client(
    demo: DemoServer, client: Client
) -> None:
    """A phone order entered by a manager, a line cut, packed, shipped in two parts, one
    delivered; its document read back; all through the SDK's staff methods."""
    order_id = unique("LIFE")
    xml = order_xml(order_id, quantity=3)
    with (
        Client(target=demo.target, api_key=demo.manager_key) as manager,
        Client(target=demo.target, api_key=demo.warehouse_key) as warehouse,
    ):
        entered = manager.submit_order(xml, on_behalf_of_client="demo-shop").order
        assert (entered.source, entered.entered_by) == (
            order_pb2.ORDER_SOURCE_MANUAL,
            "sdk-manager",
        )
        found = manager.get_order(client_order_id=order_id, client="demo-shop")
        assert found.id == entered.id
        assert manager.get_order_document(entered.id).document == xml.encode()
        cut = manager.cancel_order_lines(entered.id, {1: 2}, "customer called")
        assert cut.lines[0].cancelled_quantity == 1
        for state in ("PICKING", "PICKED", "PACKED"):
            warehouse.transition_order(entered.id, state)
        part = warehouse.create_shipment(entered.id, "DHL", tracking_number="T1", lines={1: 1})
        assert part.order.state == order_pb2.ORDER_STATE_PARTLY_DISPATCHED
        rest = warehouse.create_shipment(entered.id, "DHL", tracking_number="T2")
        assert rest.order.state == order_pb2.ORDER_STATE_DISPATCHED
        moved = warehouse.update_shipment(part.shipment.id, state="IN_TRANSIT")
        assert moved.shipment.state == order_pb2.SHIPMENT_STATE_IN_TRANSIT
        manual = list(manager.iter_orders(source="MANUAL", client="demo-shop"))
        assert entered.id in [o.id for o in manual]


def test_holds_rechecks_and_accept_short_with_the_async_client(
    demo: DemoServer, client: Client
) -> None:
    held = client.submit_order(order_xml(unique("SHORT"), sku="SKU-1003", quantity=10_000)).order
    assert held.stock_hold
    accepted = client.submit_order(order_xml(unique("HOLD"))).order

    async def work() -> None:
        async with AsyncClient(target=demo.target, api_key=demo.manager_key) as manager:
            checked = await manager.recheck_orders(held.id)
            assert (checked.checked, list(checked.accepted_order_ids)) == (1, [])
            with pytest.raises(errors.FailedPreconditionError) as refused:
                await manager.release_order(held.id, "nothing to override")
            assert refused.value.reason == "AWAITING_STOCK"
            short = await manager.accept_short(held.id, "take what is there")
            assert short.state == ACCEPTED
            assert short.lines[0].cancelled_quantity > 0
            on_hold = await manager.hold_order(accepted.id, "check the address")
            assert on_hold.hold_reasons[0].code == "MANUAL_HOLD"
            page = await manager.list_held_orders(reason_code="MANUAL_HOLD", client="demo-shop")
            assert accepted.id in [o.id for o in page.orders]
            back = await manager.release_order(accepted.id, "address fine")
            assert back.state == ACCEPTED

    asyncio.run(work())


def test_goods_in_with_the_async_client(demo: DemoServer) -> None:
    """A purchase order received (a retry applied once), then a shipped order's return
    received and restocked; the stock levels tell each step."""

    async def scenario() -> None:
        async with (
            AsyncClient(target=demo.target, api_key=demo.admin_key) as admin,
            AsyncClient(target=demo.target, api_key=demo.warehouse_key) as warehouse,
            AsyncClient(target=demo.target, api_key=demo.key) as shop,
        ):
            po = unique("PO")
            created = await admin.create_purchase_order(
                po, "Porzellan AG", "WH-MAIN", [("SKU-1003", 8, "2026-12-24")]
            )
            assert not created.replayed
            [item] = await shop.get_stock_levels(["SKU-1003"], location_codes=["WH-MAIN"])
            before = item.total
            assert before.on_order >= 8
            request_id = str(uuid.uuid4())
            receipt = await warehouse.record_receipt(po, [(1, 8, 0)], request_id=request_id)
            again = await warehouse.record_receipt(po, [(1, 8, 0)], request_id=request_id)
            assert again.replayed
            assert again.receipt.receipt_id == receipt.receipt.receipt_id
            [item] = await shop.get_stock_levels(["SKU-1003"], location_codes=["WH-MAIN"])
            assert item.total.on_hand == before.on_hand + 8
            assert item.total.on_order == before.on_order - 8

            order = (await shop.submit_order(order_xml(unique("AR"), sku="SKU-1003"))).order
            for state in ("PICKING", "PICKED", "PACKED"):
                await warehouse.transition_order(order.id, state)
            await warehouse.create_shipment(order.id, "DHL", tracking_number="JJD0002")
            rma = unique("RMA")
            made = await shop.create_return(rma, order.id, "not needed")
            assert made.rma.state == return_service_pb2.RETURN_STATE_AUTHORIZED
            got = await warehouse.receive_return(rma, "WH-MAIN")
            assert got.lines[0].awaiting_triage == 1
            done = await warehouse.triage_return(rma, [(1, "RESTOCK")])
            assert done.state == return_service_pb2.RETURN_STATE_COMPLETED
            assert (await shop.get_return(rma)).credit_note_id == done.credit_note_id
            listed = await shop.list_returns(order_id=order.id)
            assert [r.rma_id for r in listed.returns] == [rma]

    asyncio.run(scenario())
