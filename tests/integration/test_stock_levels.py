"""InventoryService: live stock per location and in total, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import grpc
import pytest

from ordergate.v1 import inventory_service_pb2 as pb
from ordergate.v1.inventory_service_pb2_grpc import InventoryServiceStub
from ordergate_server.service import stock
from ordergate_server.service.stock import ProductStock, get_stock_levels
from ordergate_server.storage import Database
from ordergate_server.storage import tables as t

from ..support import Api, Keys, ServerThread, auth, order_xml, rich_error


def levels(api: Api, *codes: str, locations: tuple[str, ...] = ()) -> list[pb.ProductStock]:
    stub = InventoryServiceStub(api.channel)
    reply = stub.GetStockLevels(
        pb.GetStockLevelsRequest(codes=list(codes), location_codes=list(locations)),
        metadata=auth(api.key),
    )
    return list(reply.items)


def quantities(level: pb.StockLevel) -> tuple[str, int, int, int]:
    return (level.location_code, level.on_hand, level.allocated, level.available)


def test_levels_per_location_and_total_follow_allocations(api: Api) -> None:
    api.submit(order_xml("ST-1", [("SKU-1001", 5)]))
    [item] = levels(api, "SKU-1001")
    assert item.found
    assert item.sku == "SKU-1001"
    assert [quantities(x) for x in item.locations] == [
        ("WH-MAIN", 500, 5, 495),
        ("STORE-BER", 12, 0, 12),
    ]
    assert quantities(item.total) == ("", 512, 5, 507)


def test_aliases_and_barcodes_name_the_canonical_sku_and_unknowns_do_not_fail(api: Api) -> None:
    items = levels(api, "CUP-SET-6", "4006381333948", "NOPE-1", "SKU-1001")
    assert [(i.requested_code, i.sku, i.found) for i in items] == [
        ("CUP-SET-6", "SKU-1001", True),
        ("4006381333948", "SKU-1002", True),
        ("NOPE-1", "", False),
        ("SKU-1001", "SKU-1001", True),
    ]
    assert not items[2].locations
    assert items[0].total == items[3].total


def test_location_filter_gives_a_stores_own_stock(api: Api) -> None:
    [item] = levels(api, "SKU-1001", locations=("STORE-BER",))
    assert [quantities(x) for x in item.locations] == [("STORE-BER", 12, 0, 12)]
    assert quantities(item.total) == ("", 12, 0, 12)


@pytest.mark.parametrize(
    ("codes", "locations", "reason"),
    [
        ([], (), "CODES_MISSING"),
        ([f"SKU-{i}" for i in range(1001)], (), "TOO_MANY_CODES"),
        (["SKU-1001"], ("NOWHERE",), "LOCATION_UNKNOWN"),
    ],
)
def test_bad_requests_are_invalid_argument(
    api: Api, codes: list[str], locations: tuple[str, ...], reason: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        levels(api, *codes, locations=locations)
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == reason
    assert error.field_violations


def test_a_thousand_codes_in_one_call(api: Api) -> None:
    codes = ["SKU-1001", "SKU-1002"] * 500
    items = levels(api, *codes)
    assert len(items) == 1000
    assert all(i.found for i in items)


def test_list_locations_in_priority_order_with_pages(api: Api) -> None:
    stub = InventoryServiceStub(api.channel)
    first = stub.ListLocations(pb.ListLocationsRequest(page_size=1), metadata=auth(api.key))
    assert [x.code for x in first.locations] == ["WH-MAIN"]
    second = stub.ListLocations(
        pb.ListLocationsRequest(page_size=1, page_token=first.next_page_token),
        metadata=auth(api.key),
    )
    assert [(x.code, x.priority) for x in second.locations] == [("STORE-BER", 50)]
    assert not second.next_page_token


def test_a_bundle_is_the_minimum_over_its_components_per_location(api: Api) -> None:
    # Demo KIT-1 = 1 x SKU-1001 + 2 x SKU-1002. WH-MAIN: 500 and 300 -> 150 kits;
    # STORE-BER: 12 of SKU-1001 but no SKU-1002 -> 0 kits.
    [kit] = levels(api, "KIT-1")
    assert kit.bundle
    assert [(x.location_code, x.available, x.on_hand, x.allocated) for x in kit.locations] == [
        ("WH-MAIN", 150, 0, 0),
        ("STORE-BER", 0, 0, 0),
    ]
    assert kit.total.available == 150
    api.submit(order_xml("KIT-A", [("SKU-1002", 101)]))  # 199 left: 99 kits
    [kit] = levels(api, "KIT-1")
    assert kit.total.available == 99


def test_a_bundle_order_allocates_its_components_never_the_bundle(api: Api) -> None:
    order = api.submit(order_xml("KIT-B", [("KIT-1", 3)])).order
    assert order.state == 2  # ACCEPTED
    assert [(line.sku, line.quantity) for line in order.lines] == [("KIT-1", 3)]
    cups, jugs = levels(api, "SKU-1001", "SKU-1002")
    assert (cups.locations[0].allocated, jugs.locations[0].allocated) == (3, 6)
    too_many = api.submit(order_xml("KIT-C", [("KIT-1", 200)])).order
    assert [(r.code, r.field) for r in too_many.hold_reasons] == [
        ("INSUFFICIENT_STOCK", "lines[0].quantity")
    ]
    assert "SKU-1002" in too_many.hold_reasons[0].message


@pytest.mark.parametrize("locations", [(), ("STORE-BER",), ("WH-MAIN", "STORE-BER")])
def test_many_codes_in_one_call_answer_as_each_code_alone(
    api: Api, db: Database, locations: tuple[str, ...]
) -> None:
    """The read takes one statement when every code is a plain SKU and more for aliases,
    barcodes and bundles; mixing them in one call must not change any code's answer."""
    with db.transaction() as tx:  # a bundle that is also asked for by an alias
        tx.execute(t.product_codes.insert().values(code="BARISTA", kind="alias", sku="KIT-1"))
    api.submit(order_xml("MIX-1", [("SKU-1002", 7), ("SKU-1001", 2)]))
    codes = ["KIT-1", "SKU-1003", "CUP-SET-6", "BARISTA", "4006381333948", "NOPE-1", "KIT-1"]
    mixed = levels(api, *codes, locations=locations)
    alone = [levels(api, code, locations=locations)[0] for code in codes]
    assert mixed == alone
    assert [(i.sku, i.bundle) for i in mixed] == [
        ("KIT-1", True),
        ("SKU-1003", False),
        ("SKU-1001", False),
        ("KIT-1", True),
        ("SKU-1002", False),
        ("", False),
        ("KIT-1", True),
    ]
    kit_in = {x.location_code: x.available for x in mixed[0].locations}
    jugs_in = {x.location_code: x.available for x in mixed[4].locations}
    assert kit_in.get("WH-MAIN", 0) == jugs_in.get("WH-MAIN", 0) // 2


@pytest.mark.parametrize("read_threads", [0, 2])
def test_reads_run_inline_or_on_their_threads_as_configured(
    db: Database, keys: Keys, monkeypatch: pytest.MonkeyPatch, read_threads: int
) -> None:
    """ORDERGATE_DB_READ_THREADS: 0 reads on the event loop's own thread (the default); more
    gives reads a pool, for a database far away. Either way the answer is the same."""
    threads: list[str] = []

    def recording(*args: Any, **kwargs: Any) -> list[ProductStock]:
        threads.append(threading.current_thread().name)
        return get_stock_levels(*args, **kwargs)

    monkeypatch.setattr(stock, "get_stock_levels", recording)
    running = ServerThread(db, db_read_threads=read_threads)
    try:
        with grpc.insecure_channel(running.target) as channel:
            [item] = levels(Api(channel, keys.shop), "SKU-1001")
    finally:
        running.stop()
    assert quantities(item.total) == ("", 512, 0, 512)
    assert len(threads) == 1
    assert threads[0].startswith("ordergate-db") == (read_threads > 0)
    assert (threads[0] == running.loop_thread_name) == (read_threads == 0)
