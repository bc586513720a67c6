"""InventoryService: live stock per location and in total, on SQLite and PostgreSQL."""

from __future__ import annotations

import grpc
import pytest

from ordergate.v1 import inventory_service_pb2 as pb
from ordergate.v1.inventory_service_pb2_grpc import InventoryServiceStub

from ..support import Api, auth, order_xml, rich_error


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
