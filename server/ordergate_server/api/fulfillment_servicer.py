"""FulfillmentService: proto in -> service call -> proto out."""

from __future__ import annotations

from datetime import UTC
from typing import Any, TypeAlias

import grpc

from ordergate.v1 import fulfillment_service_pb2 as pb
from ordergate.v1 import fulfillment_service_pb2_grpc

from ..domain.model import OrderState
from ..service import lifecycle, shipments
from ..service.errors import ErrorKind, FieldViolation, ServiceError
from ..storage import Database
from .calls import current_principal
from .convert import (
    order_to_proto,
    shipment_state_from_proto,
    shipment_to_proto,
    state_from_proto,
)
from .runner import Runner

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

_WAREHOUSE_STATES = {
    OrderState.ACCEPTED,  # an un-pick, from PICKING or PICKED
    OrderState.PICKING,
    OrderState.PICKED,
    OrderState.PACKED,
    OrderState.DISPATCHED,
    OrderState.DELIVERED,
}


class FulfillmentServicer(fulfillment_service_pb2_grpc.FulfillmentServiceServicer):
    def __init__(self, db: Database, run: Runner) -> None:
        self._db = db
        self._run = run

    async def TransitionOrder(
        self, request: pb.TransitionOrderRequest, context: Context
    ) -> pb.TransitionOrderResponse:
        target = state_from_proto(request.state)
        if target not in _WAREHOUSE_STATES:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                "STATE_INVALID",
                "state must be PICKING, PICKED, PACKED, DISPATCHED, DELIVERED, or ACCEPTED to "
                "un-pick (cancel with OrderService.CancelOrder).",
                field_violations=[FieldViolation("state", "not a warehouse state")],
            )
        delivered = (
            request.delivery_time.ToDatetime(tzinfo=UTC)
            if request.HasField("delivery_time")
            else None
        )
        order = await self._run(
            lifecycle.transition,
            self._db,
            current_principal(),
            request.id,
            target,
            lifecycle.Evidence(
                carrier=request.carrier,
                tracking_number=request.tracking_number,
                delivered_at=delivered,
                reason=request.note,
            ),
        )
        return pb.TransitionOrderResponse(order=order_to_proto(order))

    async def CreateShipment(
        self, request: pb.CreateShipmentRequest, context: Context
    ) -> pb.CreateShipmentResponse:
        order, shipment = await self._run(
            shipments.create_shipment,
            self._db,
            current_principal(),
            request_id=request.request_id,
            order_id=request.order_id,
            handover=shipments.Handover(
                carrier=request.carrier,
                tracking_number=request.tracking_number,
                tracking_url=request.tracking_url,
                without_tracking=request.without_tracking,
            ),
            lines=[(line.line_number, line.quantity) for line in request.lines],
        )
        return pb.CreateShipmentResponse(
            order=order_to_proto(order), shipment=shipment_to_proto(shipment)
        )

    async def UpdateShipment(
        self, request: pb.UpdateShipmentRequest, context: Context
    ) -> pb.UpdateShipmentResponse:
        order, shipment = await self._run(
            shipments.update_shipment,
            self._db,
            current_principal(),
            request.shipment_id,
            state=shipment_state_from_proto(request.state),
            tracking_number=request.tracking_number,
            tracking_url=request.tracking_url,
            delivered_at=request.delivery_time.ToDatetime(tzinfo=UTC)
            if request.HasField("delivery_time")
            else None,
        )
        return pb.UpdateShipmentResponse(
            order=order_to_proto(order), shipment=shipment_to_proto(shipment)
        )
