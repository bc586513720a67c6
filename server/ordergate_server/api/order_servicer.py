"""OrderService: proto in -> service call -> proto out. No rules live here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, TypeAlias

import grpc

from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1 import order_service_pb2_grpc

from ..domain.access import Principal
from ..domain.model import OrderState
from ..formats.ubl_response import order_response
from ..service import lifecycle, order_events
from ..service import orders as order_queries
from ..service.errors import ServiceError
from ..service.ordered_feed import InOrder
from ..service.submit import SubmitLimits, SubmitResult, prepare_submission, submit_order
from ..service.submit_queue import SubmitQueue
from ..storage import Database
from ..storage.orders import LoggedEvent
from .convert import event_to_proto, order_to_proto, state_from_proto
from .errors import item_error
from .interceptors import current_principal
from .metrics import Metrics
from .runner import Runner

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class OrderServicer(order_service_pb2_grpc.OrderServiceServicer):
    def __init__(
        self,
        db: Database,
        limits: SubmitLimits,
        run: Runner,
        metrics: Metrics,
        *,
        submit_queue: SubmitQueue,
        seller_name: str = "Ordergate",
    ) -> None:
        self._db = db
        self._limits = limits
        self._metrics = metrics
        self._run = run  # where the blocking service calls run (api/runner.py)
        self._submit_queue = submit_queue  # submissions share transactions (group commit)
        self._seller_name = seller_name  # the seller party of UBL OrderResponse documents

    def _answer(
        self, request: pb.SubmitOrderRequest, result: SubmitResult
    ) -> pb.SubmitOrderResponse:
        if not request.validate_only:
            self._metrics.submitted(result.order, result.replayed)
        response = pb.SubmitOrderResponse(
            order=order_to_proto(result.order), replayed=result.replayed
        )
        if request.ubl_order_response:
            response.ubl_order_response = order_response(
                result.order, seller_name=self._seller_name, issued=datetime.now(UTC)
            )
        return response

    async def _submit(self, principal: Principal, request: pb.SubmitOrderRequest) -> SubmitResult:
        if request.validate_only:  # reads only: nothing to commit
            return await self._run(
                submit_order,
                self._db,
                principal,
                request_id=request.request_id,
                payload=request.order_xml,
                validate_only=True,
                limits=self._limits,
            )
        # Reading the document is CPU work, done here; the transaction is the queue's.
        prepared = prepare_submission(
            principal, request_id=request.request_id, payload=request.order_xml, limits=self._limits
        )
        return await self._submit_queue.submit(prepared)

    async def SubmitOrder(
        self, request: pb.SubmitOrderRequest, context: Context
    ) -> pb.SubmitOrderResponse:
        result = await self._submit(current_principal(), request)
        return self._answer(request, result)

    async def SubmitOrders(
        self, requests: AsyncIterator[pb.SubmitOrdersRequest], context: Context
    ) -> AsyncIterator[pb.SubmitOrdersResponse]:
        principal = current_principal()
        # One at a time: the next item is read only after this one is answered (backpressure).
        async for item in requests:
            request = item.order
            try:
                result = await self._submit(principal, request)
            except ServiceError as refused:
                yield pb.SubmitOrdersResponse(
                    request_id=request.request_id, error=item_error(refused)
                )
                continue
            yield pb.SubmitOrdersResponse(
                request_id=request.request_id, response=self._answer(request, result)
            )

    async def GetOrder(self, request: pb.GetOrderRequest, context: Context) -> pb.GetOrderResponse:
        order = await self._run(
            order_queries.get_order,
            self._db,
            current_principal(),
            order_id=request.id,
            client_order_id=request.client_order_id,
        )
        return pb.GetOrderResponse(order=order_to_proto(order))

    async def WatchOrderEvents(
        self, request: pb.WatchOrderEventsRequest, context: Context
    ) -> AsyncIterator[pb.WatchOrderEventsResponse]:
        principal = current_principal()
        cursor = await self._run(order_events.start_after, self._db, request.after_event_id)
        feed: InOrder[LoggedEvent] = InOrder(cursor)
        loop = asyncio.get_running_loop()
        while True:
            logged = await self._run(order_events.poll, self._db, feed.cursor)
            for item in feed.ready(logged, loop.time()):
                if order_events.visible(principal, item):
                    yield pb.WatchOrderEventsResponse(
                        order_id=item.order_id,
                        client_order_id=item.client_order_id,
                        client=item.client,
                        event=event_to_proto(item.event),
                    )
            await asyncio.sleep(order_events.POLL_SECONDS)

    async def CancelOrder(
        self, request: pb.CancelOrderRequest, context: Context
    ) -> pb.CancelOrderResponse:
        order = await self._run(
            lifecycle.transition,
            self._db,
            current_principal(),
            request.id,
            OrderState.CANCELLED,
            lifecycle.Evidence(reason=request.reason),
        )
        return pb.CancelOrderResponse(order=order_to_proto(order))

    async def ListOrders(
        self, request: pb.ListOrdersRequest, context: Context
    ) -> pb.ListOrdersResponse:
        page = await self._run(
            order_queries.list_orders,
            self._db,
            current_principal(),
            page_size=request.page_size,
            page_token=request.page_token,
            state=state_from_proto(request.state),
            customer_account=request.customer_account,
            client=request.client,
        )
        return pb.ListOrdersResponse(
            orders=[order_to_proto(order) for order in page.orders],
            next_page_token=page.next_page_token,
        )
