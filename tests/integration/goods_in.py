"""Helpers for the goods-in tests: purchase orders, receipts, returns, stock levels."""

from __future__ import annotations

import time
import uuid

from ordergate.v1 import inbound_service_pb2 as ibp
from ordergate.v1 import inventory_service_pb2 as ipb
from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as opb
from ordergate.v1.inbound_service_pb2_grpc import InboundServiceStub
from ordergate.v1.inventory_service_pb2_grpc import InventoryServiceStub

from ..support import Api, auth


def create_po(
    api: Api,
    key: str,
    po_number: str = "PO-1",
    lines: tuple[tuple[str, int, str], ...] = (("SKU-2001", 10, "2026-12-20"),),
    *,
    location: str = "WH-MAIN",
    supplier: str = "Porzellan AG",
) -> ibp.CreatePurchaseOrderResponse:
    return InboundServiceStub(api.channel).CreatePurchaseOrder(
        ibp.CreatePurchaseOrderRequest(
            po_number=po_number,
            supplier=supplier,
            location_code=location,
            lines=[
                ibp.NewPurchaseOrderLine(code=code, quantity=quantity, expected_date=expected)
                for code, quantity, expected in lines
            ],
        ),
        metadata=auth(key),
    )


def receive(
    api: Api,
    key: str,
    po_number: str,
    lines: dict[int, tuple[int, int]] | None = None,
    *,
    reason: str = "",
    request_id: str | None = None,
) -> ibp.RecordReceiptResponse:
    """lines: PO line -> (good, damaged); default line 1 -> (10, 0)."""
    return InboundServiceStub(api.channel).RecordReceipt(
        ibp.RecordReceiptRequest(
            request_id=request_id or str(uuid.uuid4()),
            po_number=po_number,
            lines=[
                ibp.ReceiptLine(
                    line_number=number,
                    received_quantity=good,
                    damaged_quantity=damaged,
                    variance_reason=reason,
                )
                for number, (good, damaged) in (lines or {1: (10, 0)}).items()
            ],
        ),
        metadata=auth(key),
        timeout=30,
    )


def level(api: Api, key: str, sku: str, location: str = "WH-MAIN") -> ipb.StockLevel:
    reply = InventoryServiceStub(api.channel).GetStockLevels(
        ipb.GetStockLevelsRequest(codes=[sku], location_codes=[location]), metadata=auth(key)
    )
    levels = list(reply.items[0].locations)
    return levels[0] if levels else ipb.StockLevel(location_code=location)


def get_order(api: Api, key: str, order_id: str) -> order_pb2.Order:
    return api.orders.GetOrder(opb.GetOrderRequest(id=order_id), metadata=auth(key)).order


def until_state(api: Api, key: str, order_id: str, state: int, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while (order := get_order(api, key, order_id)).state != state:
        assert time.monotonic() < deadline, f"still {order.state}: {order.hold_reasons}"
        time.sleep(0.05)
