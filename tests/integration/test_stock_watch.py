"""WatchStockLevels: a snapshot, then every change within a second, resumable without loss."""

from __future__ import annotations

import time
import uuid

from ordergate.v1 import inventory_service_pb2 as pb
from ordergate.v1.inventory_service_pb2_grpc import InventoryServiceStub

from ..support import Api, Keys, auth, order_xml


def watch(api: Api, *codes: str, after: int = 0) -> object:
    return InventoryServiceStub(api.channel).WatchStockLevels(
        pb.WatchStockLevelsRequest(codes=list(codes), after_change_id=after),
        metadata=auth(api.key),
        timeout=30,
    )


def test_snapshot_then_a_concurrent_submission_within_a_second(api: Api) -> None:
    stream = watch(api, "SKU-1001", "KIT-1")
    first = next(stream)  # type: ignore[call-overload]
    assert first.WhichOneof("event") == "snapshot"
    assert [i.sku for i in first.snapshot.items] == ["SKU-1001", "KIT-1"]
    assert first.snapshot.items[1].total.available == 150

    order = api.submit(order_xml("W-1", [("SKU-1001", 4)])).order
    committed = time.monotonic()
    message = next(stream)  # type: ignore[call-overload]
    latency = time.monotonic() - committed
    stream.cancel()  # type: ignore[attr-defined]

    change = message.change
    assert (change.sku, change.kind, change.order_id) == ("SKU-1001", "ALLOCATION", order.id)
    assert (change.level.location_code, change.level.allocated, change.level.available) == (
        "WH-MAIN",
        4,
        496,
    )
    assert change.change_id > first.snapshot.change_id
    assert [(b.sku, b.total.available) for b in change.bundles] == [
        ("KIT-1", 150)
    ]  # 496 cups, 300 jugs
    assert latency < 1.0


def test_a_reconnect_with_the_last_change_id_misses_nothing(api: Api, keys: Keys) -> None:
    stream = watch(api, "SKU-1002")
    snapshot = next(stream).snapshot  # type: ignore[call-overload]
    api.submit(order_xml("W-2", [("SKU-1002", 1)]))
    seen = next(stream).change  # type: ignore[call-overload]
    stream.cancel()  # type: ignore[attr-defined]  # the connection drops here

    # While nobody watches: two more orders and a manager's count.
    api.submit(order_xml("W-3", [("SKU-1002", 2)]))
    InventoryServiceStub(api.channel).RecordStockCount(
        pb.RecordStockCountRequest(
            request_id=str(uuid.uuid4()),
            code="SKU-1002",
            location_code="WH-MAIN",
            counted=290,
            reason="cycle count",
        ),
        metadata=auth(keys.manager),
    )
    api.submit(order_xml("W-4", [("SKU-1002", 3)]))

    resumed = watch(api, "SKU-1002", after=seen.change_id)
    missed = [next(resumed).change for _ in range(3)]  # type: ignore[call-overload]
    resumed.cancel()  # type: ignore[attr-defined]
    assert seen.change_id > snapshot.change_id
    assert [(c.kind, c.level.on_hand, c.level.allocated) for c in missed] == [
        ("ALLOCATION", 300, 3),
        ("COUNT", 290, 3),
        ("ALLOCATION", 290, 6),
    ]
    assert [c.change_id for c in missed] == sorted(c.change_id for c in missed)
