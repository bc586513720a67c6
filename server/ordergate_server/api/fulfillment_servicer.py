"""FulfillmentService: proto in -> service call -> proto out."""

from __future__ import annotations

from datetime import UTC
from typing import Any, TypeAlias

import grpc

from ordergate.v1 import fulfillment_service_pb2 as pb
from ordergate.v1 import fulfillment_service_pb2_grpc

from ..domain.model import OrderState
from ..service import lifecycle
from ..service.errors import ErrorKind, FieldViolation, ServiceError
from ..storage import Database
from .convert import order_to_proto, state_from_proto
from .interceptors import current_principal
from .runner import Runner

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

_WAREHOUSE_STATES = {
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
                "state must be PICKING, PICKED, PACKED, DISPATCHED or DELIVERED "
                "(cancel with OrderService.CancelOrder).",
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
