"""InboundService: proto in -> service call -> proto out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import grpc

from ordergate.v1 import inbound_service_pb2 as pb
from ordergate.v1 import inbound_service_pb2_grpc

from ..service.inbound import purchase_orders as po
from ..storage import Database
from ..storage import purchase_orders as store
from .calls import current_principal
from .convert import timestamp
from .runner import Runner

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

_STATES = {
    po.OPEN: pb.PURCHASE_ORDER_STATE_OPEN,
    po.PARTLY_RECEIVED: pb.PURCHASE_ORDER_STATE_PARTLY_RECEIVED,
    po.RECEIVED: pb.PURCHASE_ORDER_STATE_RECEIVED,
    po.CLOSED: pb.PURCHASE_ORDER_STATE_CLOSED,
}
_STATE_NAMES = {value: key for key, value in _STATES.items()}


def purchase_order_to_proto(order: store.PurchaseOrder) -> pb.PurchaseOrder:
    closed = order.state in (po.CLOSED, po.RECEIVED)
    return pb.PurchaseOrder(
        po_number=order.po_number,
        supplier=order.supplier,
        location_code=order.location,
        state=_STATES[order.state],
        notes=order.notes,
        lines=[
            pb.PurchaseOrderLine(
                line_number=line.line_number,
                sku=line.sku,
                quantity=line.quantity,
                expected_date=line.expected_date,
                notes=line.notes,
                received_quantity=line.received,
                damaged_quantity=line.damaged,
                open_quantity=0 if closed else line.open,
            )
            for line in order.lines
        ],
        receipts=[_receipt(receipt) for receipt in order.receipts],
        variances=[
            pb.ReceiptVariance(
                line_number=v.line_number,
                kind=v.kind,
                quantity=v.quantity,
                actor=v.actor,
                reason=v.reason,
                time=timestamp(v.at),
                receipt_id=v.receipt_id or "",
            )
            for v in order.variances
        ],
        create_time=timestamp(order.created_at),
        update_time=timestamp(order.updated_at),
        created_by=order.created_by,
        close_reason=order.close_reason,
    )


def _receipt(receipt: store.Receipt) -> pb.Receipt:
    return pb.Receipt(
        receipt_id=receipt.id,
        receive_time=timestamp(receipt.received_at),
        actor=receipt.actor,
        note=receipt.note,
        lines=[
            pb.ReceiptLine(
                line_number=line.line_number,
                received_quantity=line.received,
                damaged_quantity=line.damaged,
            )
            for line in receipt.lines
        ],
    )


class InboundServicer(inbound_service_pb2_grpc.InboundServiceServicer):
    def __init__(
        self, db: Database, run: Runner, stock_rose: Callable[[], None] = lambda: None
    ) -> None:
        self._db = db
        self._run = run
        # A receipt raises stock: the re-check of stock-held orders runs at once.
        self._stock_rose = stock_rose

    async def CreatePurchaseOrder(
        self, request: pb.CreatePurchaseOrderRequest, context: Context
    ) -> pb.CreatePurchaseOrderResponse:
        order, replayed = await self._run(
            po.create_purchase_order,
            self._db,
            current_principal(),
            po_number=request.po_number,
            supplier=request.supplier,
            location=request.location_code,
            lines=[
                po.NewLine(
                    line.line_number, line.code, line.quantity, line.expected_date, line.notes
                )
                for line in request.lines
            ],
            notes=request.notes,
        )
        return pb.CreatePurchaseOrderResponse(
            purchase_order=purchase_order_to_proto(order), replayed=replayed
        )

    async def GetPurchaseOrder(
        self, request: pb.GetPurchaseOrderRequest, context: Context
    ) -> pb.GetPurchaseOrderResponse:
        order = await self._run(po.get_purchase_order, self._db, request.po_number)
        return pb.GetPurchaseOrderResponse(purchase_order=purchase_order_to_proto(order))

    async def ListPurchaseOrders(
        self, request: pb.ListPurchaseOrdersRequest, context: Context
    ) -> pb.ListPurchaseOrdersResponse:
        page = await self._run(
            po.list_purchase_orders,
            self._db,
            state=_STATE_NAMES.get(request.state, ""),
            supplier=request.supplier,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListPurchaseOrdersResponse(
            purchase_orders=[purchase_order_to_proto(o) for o in page.purchase_orders],
            next_page_token=page.next_page_token,
        )

    async def RecordReceipt(
        self, request: pb.RecordReceiptRequest, context: Context
    ) -> pb.RecordReceiptResponse:
        receipt_id, order, replayed = await self._run(
            po.record_receipt,
            self._db,
            current_principal(),
            request_id=request.request_id,
            po_number=request.po_number,
            lines=[
                po.ReceivedLine(
                    line.line_number,
                    line.code,
                    line.received_quantity,
                    line.damaged_quantity,
                    line.variance_reason,
                )
                for line in request.lines
            ],
            note=request.note,
        )
        self._stock_rose()
        receipt = next(r for r in order.receipts if r.id == receipt_id)
        return pb.RecordReceiptResponse(
            receipt=_receipt(receipt),
            purchase_order=purchase_order_to_proto(order),
            replayed=replayed,
        )

    async def ClosePurchaseOrder(
        self, request: pb.ClosePurchaseOrderRequest, context: Context
    ) -> pb.ClosePurchaseOrderResponse:
        order = await self._run(
            po.close_purchase_order,
            self._db,
            current_principal(),
            po_number=request.po_number,
            reason=request.reason,
        )
        return pb.ClosePurchaseOrderResponse(purchase_order=purchase_order_to_proto(order))
