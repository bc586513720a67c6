"""AuditService.ListAuditEntries: filter by order, subject, actor and time; pages."""

from __future__ import annotations

import json
import uuid

from google.protobuf.timestamp_pb2 import Timestamp

from ordergate.v1 import audit_service_pb2 as pb
from ordergate.v1 import inventory_service_pb2 as ipb
from ordergate.v1 import order_service_pb2 as opb
from ordergate.v1.audit_service_pb2_grpc import AuditServiceStub
from ordergate.v1.inventory_service_pb2_grpc import InventoryServiceStub

from ..support import Api, Keys, auth, order_xml


def entries(api: Api, key: str, **filters: object) -> pb.ListAuditEntriesResponse:
    request = pb.ListAuditEntriesRequest(**filters)  # type: ignore[arg-type]
    return AuditServiceStub(api.channel).ListAuditEntries(request, metadata=auth(key))


def test_filters_and_pages(api: Api, keys: Keys) -> None:
    order = api.submit(order_xml("AU-1")).order
    api.orders.CancelOrder(
        opb.CancelOrderRequest(id=order.id, reason="duplicate"), metadata=auth(keys.manager)
    )
    InventoryServiceStub(api.channel).RecordStockCount(
        ipb.RecordStockCountRequest(
            request_id=str(uuid.uuid4()),
            code="SKU-1005",
            location_code="WH-MAIN",
            counted=199,
            reason="count",
        ),
        metadata=auth(keys.manager),
    )

    [cancelled] = entries(api, keys.operations, order_id=order.id).entries
    assert (cancelled.action, cancelled.actor, cancelled.role, cancelled.reason) == (
        "order.cancelled",
        "floor-manager",
        "manager",
        "duplicate",
    )
    assert json.loads(cancelled.before_json) == {"state": "ACCEPTED"}
    by_manager = entries(api, keys.admin, actor="floor-manager").entries
    assert [e.action for e in by_manager] == ["order.cancelled", "stock.count"]
    assert [
        e.subject for e in entries(api, keys.manager, subject="stock/SKU-1005@WH-MAIN").entries
    ] == ["stock/SKU-1005@WH-MAIN"]
    later = Timestamp()
    later.FromJsonString("2999-01-01T00:00:00Z")
    assert list(entries(api, keys.admin, start_time=later).entries) == []

    first = entries(api, keys.admin, page_size=1)
    second = entries(api, keys.admin, page_size=1, page_token=first.next_page_token)
    assert first.entries[0].id < second.entries[0].id
