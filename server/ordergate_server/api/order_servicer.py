"""OrderService: proto in -> service call -> proto out. No rules live here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1 import order_service_pb2_grpc

from ..domain.access import Principal, Role
from ..domain.model import Channel, OrderSource, OrderState
from ..formats.ubl_response import order_response
from ..service import documents, lifecycle, order_events, order_lines
from ..service import orders as order_queries
from ..service.buyer_documents import AmendmentOutcome
from ..service.errors import ErrorKind, FieldViolation, ServiceError
from ..service.ordered_feed import InOrder
from ..service.submit import (
    SubmitLimits,
    SubmitResult,
    manual_order_client,
    prepare_submission,
    submit_order,
)
from ..service.submit_queue import SubmitQueue
from ..storage import Database
from ..storage.orders import LoggedEvent
from .calls import current_principal
from .convert import (
    channel_to_proto,
    event_to_proto,
    order_to_proto,
    source_from_proto,
    state_from_proto,
    timestamp,
)
from .errors import item_error
from .metrics import Metrics
from .page_budget import PageBudget
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
        stream_window: int = 16,
        seller_name: str = "Ordergate",
        stock_rose: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._limits = limits
        self._metrics = metrics
        self._run = run  # where the blocking service calls run (api/runner.py)
        self._submit_queue = submit_queue  # submissions share transactions (group commit)
        self._stream_window = max(1, stream_window)  # SubmitOrders items in the server at once
        self._seller_name = seller_name  # the seller party of UBL OrderResponse documents
        # Called after a call that may have raised available stock (a cancel releases it): the
        # stock re-check runs at once instead of at its next tick (api/background.py).
        self._stock_rose = stock_rose

    def _answer(
        self, request: pb.SubmitOrderRequest, result: SubmitResult
    ) -> pb.SubmitOrderResponse:
        if not request.validate_only and result.amendment is None:
            self._metrics.submitted(result.order, result.replayed)
        if result.amendment is not None and result.amendment.accepted:
            self._stock_rose()  # a cancellation or a change may have freed stock
        response = pb.SubmitOrderResponse(
            order=order_to_proto(result.order), replayed=result.replayed
        )
        amended = result.amendment
        if amended is not None:
            response.amendment.CopyFrom(
                pb.BuyerAmendment(
                    document_type=amended.kind,
                    accepted=amended.accepted,
                    reason=amended.reason,
                    message=amended.message,
                )
            )
        if request.ubl_order_response or amended is not None:  # a buyer's document is answered
            response.ubl_order_response = order_response(
                result.order,
                seller_name=self._seller_name,
                issued=datetime.now(UTC),
                amendment=_amendment_answer(amended) if amended is not None else None,
            )
        return response

    async def _submit(self, principal: Principal, request: pb.SubmitOrderRequest) -> SubmitResult:
        owner, acting = principal, None
        channel, source = Channel.GRPC, OrderSource.API
        if principal.role is not Role.WEBSITE:  # staff entering an order for a client
            owner = await self._run(
                manual_order_client, self._db, principal, request.on_behalf_of_client
            )
            acting, channel, source = principal, Channel.MANUAL, OrderSource.MANUAL
        elif request.on_behalf_of_client not in ("", principal.client_name):
            raise ServiceError(
                ErrorKind.PERMISSION_DENIED,
                "ON_BEHALF_FORBIDDEN",
                "A website key submits its own orders only.",
                field_violations=[FieldViolation("on_behalf_of_client", "leave empty")],
            )
        if request.validate_only:  # reads only: nothing to commit
            return await self._run(
                submit_order,
                self._db,
                owner,
                request_id=request.request_id,
                payload=request.order_xml,
                validate_only=True,
                limits=self._limits,
                acting=acting,
                channel=channel,
                source=source,
            )
        # Reading the document is CPU work, done here; the transaction is the queue's.
        prepared = prepare_submission(
            owner,
            request_id=request.request_id,
            payload=request.order_xml,
            limits=self._limits,
            acting=acting,
            channel=channel,
            source=source,
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
        # Up to `stream_window` items are in the server at once, so a single stream fills group
        # commits as concurrent callers do; answered in the order they came. With that many
        # unanswered the next item is not read: flow control holds a fast sender back.
        principal = current_principal()
        stream = _StreamWindow(self._stream_window)
        reader = asyncio.create_task(
            stream.read(requests, lambda item: self._item(principal, item))
        )
        try:
            while (answer := await stream.next_answer()) is not None:
                yield answer
        finally:
            reader.cancel()
            stream.abandon()

    async def _item(
        self, principal: Principal, item: pb.SubmitOrdersRequest
    ) -> pb.SubmitOrdersResponse:
        request = item.order
        try:
            result = await self._submit(principal, request)
        except ServiceError as refused:
            return pb.SubmitOrdersResponse(request_id=request.request_id, error=item_error(refused))
        return pb.SubmitOrdersResponse(
            request_id=request.request_id, response=self._answer(request, result)
        )

    async def GetOrder(self, request: pb.GetOrderRequest, context: Context) -> pb.GetOrderResponse:
        order = await self._run(
            order_queries.get_order,
            self._db,
            current_principal(),
            order_id=request.id,
            client_order_id=request.client_order_id,
            client=request.client,
            customer_account=request.customer_account,
        )
        return pb.GetOrderResponse(order=order_to_proto(order))

    async def GetOrderDocument(
        self, request: pb.GetOrderDocumentRequest, context: Context
    ) -> pb.GetOrderDocumentResponse:
        found = await self._run(
            documents.get_order_document, self._db, current_principal(), request.id
        )
        return pb.GetOrderDocumentResponse(
            order_id=found.order_id,
            document=found.document,
            content_type=found.content_type,
            format=found.format,
            channel=channel_to_proto(found.channel),
            receive_time=timestamp(found.received_at),
            size_bytes=len(found.document),
            request_id=found.request_id,
        )

    async def CancelOrderLines(
        self, request: pb.CancelOrderLinesRequest, context: Context
    ) -> pb.CancelOrderLinesResponse:
        order = await self._run(
            order_lines.cancel_lines,
            self._db,
            current_principal(),
            request.id,
            [(line.line_number, line.quantity) for line in request.lines],
            request.reason,
        )
        self._stock_rose()
        return pb.CancelOrderLinesResponse(order=order_to_proto(order))

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
        self._stock_rose()
        return pb.CancelOrderResponse(order=order_to_proto(order))

    async def ListOrders(
        self, request: pb.ListOrdersRequest, context: Context
    ) -> pb.ListOrdersResponse:
        budget = PageBudget(order_to_proto)
        query = order_queries.OrderQuery(
            state=state_from_proto(request.state),
            customer_account=request.customer_account,
            client=request.client,
            hold_code=request.hold_reason,
            source=source_from_proto(request.source),
            created_after=_when(request, "create_time_after"),
            created_before=_when(request, "create_time_before"),
            updated_after=_when(request, "update_time_after"),
            updated_before=_when(request, "update_time_before"),
            by_update=request.order_by == pb.LIST_ORDERS_ORDER_BY_UPDATE_TIME,
        )
        page = await self._run(
            order_queries.list_orders,
            self._db,
            current_principal(),
            page_size=request.page_size,
            page_token=request.page_token,
            query=query,
            fits=budget.fits,
        )
        return pb.ListOrdersResponse(orders=budget.messages, next_page_token=page.next_page_token)


def _when(request: Message, name: str) -> datetime | None:
    """A Timestamp field as an aware datetime; None when it is not set."""
    if not request.HasField(name):
        return None
    stamp: Timestamp = getattr(request, name)
    return stamp.ToDatetime(tzinfo=UTC)


class _StreamWindow:
    """The items of one SubmitOrders stream in the server: at most `size` at once, each handled
    by its own task from the moment it is read, answered in the order read.

    Tasks start in the order their items were read, and asyncio runs new tasks in the order
    they were made, so the items are read and queued for storage in stream order: an earlier
    item takes stock first, as it would one at a time."""

    def __init__(self, size: int) -> None:
        self._room = asyncio.Semaphore(size)
        # In stream order: an item's task; then None at the end of the stream, or what reading
        # the stream raised (a malformed item, say), answered after the items before it.
        self._read: asyncio.Queue[asyncio.Task[pb.SubmitOrdersResponse] | BaseException | None]
        self._read = asyncio.Queue()
        self._tasks: set[asyncio.Task[pb.SubmitOrdersResponse]] = set()

    async def read(
        self,
        requests: AsyncIterator[pb.SubmitOrdersRequest],
        handle: Callable[[pb.SubmitOrdersRequest], Coroutine[Any, Any, pb.SubmitOrdersResponse]],
    ) -> None:
        try:
            while True:
                await self._room.acquire()  # before reading: an unread item stays with the sender
                item = await anext(requests, None)
                if item is None:
                    break
                task = asyncio.create_task(handle(item))
                self._tasks.add(task)
                task.add_done_callback(self._finished)
                self._read.put_nowait(task)
        except Exception as failure:
            self._read.put_nowait(failure)
            return
        self._read.put_nowait(None)

    async def next_answer(self) -> pb.SubmitOrdersResponse | None:
        """The next item's answer, once it has one; None at the stream's end. Raises what
        handling that item or reading the stream raised (the stream then ends with it)."""
        entry = await self._read.get()
        if isinstance(entry, BaseException):
            raise entry
        if entry is None:
            return None
        answer = await entry
        self._room.release()
        return answer

    def _finished(self, task: asyncio.Task[pb.SubmitOrdersResponse]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a stream that ended early never awaits it

    def abandon(self) -> None:
        """The stream ended (completed, failed, or the client went away): cancel the items
        still unanswered. One still queued for storage is dropped unstored; one already being
        stored is kept, and its request_id replays it to the client's retry."""
        for task in self._tasks:
            task.cancel()


def _amendment_answer(amended: AmendmentOutcome) -> tuple[str, bool, str]:
    """(document type, carried out, why not) for the OrderResponse."""
    why = "" if amended.accepted else f"{amended.reason}: {amended.message}"
    return amended.kind, amended.accepted, why
