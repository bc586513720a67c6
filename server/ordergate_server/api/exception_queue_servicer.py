"""ExceptionQueueService: proto in -> service call -> proto out."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from ordergate.v1 import exception_queue_service_pb2 as pb
from ordergate.v1 import exception_queue_service_pb2_grpc, order_service_pb2

from ..service import exception_queue, recheck
from ..storage import Database
from .calls import current_principal
from .convert import order_to_proto
from .page_budget import PageBudget
from .runner import Runner

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class ExceptionQueueServicer(exception_queue_service_pb2_grpc.ExceptionQueueServiceServicer):
    def __init__(self, db: Database, run: Runner) -> None:
        self._db = db
        self._run = run

    async def ListHeldOrders(
        self, request: pb.ListHeldOrdersRequest, context: Context
    ) -> pb.ListHeldOrdersResponse:
        budget = PageBudget(order_to_proto)
        _, token = await self._run(
            exception_queue.list_held_orders,
            self._db,
            current_principal(),
            reason_code=request.reason_code,
            customer_account=request.customer_account,
            client=request.client,
            min_age=request.min_age.ToTimedelta() if request.HasField("min_age") else None,
            page_size=request.page_size,
            page_token=request.page_token,
            fits=budget.fits,
        )
        return pb.ListHeldOrdersResponse(orders=budget.messages, next_page_token=token)

    async def CorrectOrder(
        self, request: pb.CorrectOrderRequest, context: Context
    ) -> pb.CorrectOrderResponse:
        result = await self._run(
            exception_queue.correct_order,
            self._db,
            current_principal(),
            request.id,
            request.order_xml,
            request.request_id,
        )
        return pb.CorrectOrderResponse(
            result=order_service_pb2.SubmitOrderResponse(
                order=order_to_proto(result.order), replayed=result.replayed
            )
        )

    async def ReleaseOrder(
        self, request: pb.ReleaseOrderRequest, context: Context
    ) -> pb.ReleaseOrderResponse:
        order = await self._run(
            exception_queue.release_order, self._db, current_principal(), request.id, request.reason
        )
        return pb.ReleaseOrderResponse(order=order_to_proto(order))

    async def HoldOrder(
        self, request: pb.HoldOrderRequest, context: Context
    ) -> pb.HoldOrderResponse:
        order = await self._run(
            exception_queue.hold_order, self._db, current_principal(), request.id, request.reason
        )
        return pb.HoldOrderResponse(order=order_to_proto(order))

    async def RecheckOrders(
        self, request: pb.RecheckOrdersRequest, context: Context
    ) -> pb.RecheckOrdersResponse:
        done = await self._run(recheck.recheck, self._db, current_principal(), request.id)
        return pb.RecheckOrdersResponse(checked=done.checked, accepted_order_ids=done.accepted)

    async def AcceptShort(
        self, request: pb.AcceptShortRequest, context: Context
    ) -> pb.AcceptShortResponse:
        order = await self._run(
            exception_queue.accept_short, self._db, current_principal(), request.id, request.reason
        )
        return pb.AcceptShortResponse(order=order_to_proto(order))
