"""The asyncio client, and the source the sync client is generated from.

scripts/unasync.py turns this file into _client.py (`make sdk-sync`; a test checks that it is
fresh): `async def` becomes `def`, `await` and `async` go, AsyncClient becomes Client and the
flavour's own pieces (channel, sleep, bulk stream) come from _sync_io instead of _async_io. So
write the methods here, once, in a form that reads right in both; docstrings are the sync
client's too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import TypeVar

import grpc

from ._async_io import Documents, bulk_submit, close_channel, end_stream, open_channel, sleep
from ._common import (
    BulkResult,
    Metadata,
    OrderDocument,
    _ClientBase,
    enum_value,
    shipment_state_value,
    source_value,
    state_value,
)
from ._config import ConnectionConfig
from ._errors import OrdergateError, from_rpc_error
from ._retry import DEFAULT, DEFAULT_RETRY, RetryPolicy, _Default
from .v1 import (
    audit_service_pb2,
    audit_service_pb2_grpc,
    catalog_service_pb2,
    catalog_service_pb2_grpc,
    exception_queue_service_pb2,
    exception_queue_service_pb2_grpc,
    fulfillment_service_pb2,
    fulfillment_service_pb2_grpc,
    inbound_service_pb2,
    inbound_service_pb2_grpc,
    inventory_service_pb2,
    inventory_service_pb2_grpc,
    order_pb2,
    order_service_pb2,
    order_service_pb2_grpc,
    pricing_service_pb2,
    pricing_service_pb2_grpc,
    return_service_pb2,
    return_service_pb2_grpc,
    webhook_service_pb2,
    webhook_service_pb2_grpc,
)

T = TypeVar("T")


class AsyncClient:
    """A connection to an Ordergate server, one method per RPC.

        async with AsyncClient(target="127.0.0.1:50051", api_key="og_...") as client:
            reply = await client.submit_order(Path("order.xml"))

    Every method takes keyword-only `timeout` (seconds for the whole call including retries;
    DEFAULT: the client's), `metadata` (extra gRPC metadata) and `retry` (a RetryPolicy, None
    for no retry, DEFAULT: the client's). Failures raise OrdergateError subclasses.
    """

    def __init__(
        self,
        config: ConnectionConfig | None = None,
        *,
        target: str | None = None,
        api_key: str | None = None,
        timeout: float | None = 30.0,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        client_identity: str | None = None,
    ) -> None:
        self._base = _ClientBase(
            config,
            target=target,
            api_key=api_key,
            timeout=timeout,
            retry=retry,
            client_identity=client_identity,
        )
        self.config = self._base.config
        self._channel = open_channel(self.config)
        self._orders = order_service_pb2_grpc.OrderServiceStub(self._channel)
        self._inventory = inventory_service_pb2_grpc.InventoryServiceStub(self._channel)
        self._catalog = catalog_service_pb2_grpc.CatalogServiceStub(self._channel)
        self._pricing = pricing_service_pb2_grpc.PricingServiceStub(self._channel)
        self._fulfillment = fulfillment_service_pb2_grpc.FulfillmentServiceStub(self._channel)
        self._queue = exception_queue_service_pb2_grpc.ExceptionQueueServiceStub(self._channel)
        self._audit = audit_service_pb2_grpc.AuditServiceStub(self._channel)
        self._webhooks = webhook_service_pb2_grpc.WebhookServiceStub(self._channel)
        self._inbound = inbound_service_pb2_grpc.InboundServiceStub(self._channel)
        self._returns = return_service_pb2_grpc.ReturnServiceStub(self._channel)

    async def close(self) -> None:
        await close_channel(self._channel)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def submit_order(
        self,
        order: OrderDocument,
        *,
        request_id: str | None = None,
        validate_only: bool = False,
        ubl_order_response: bool = False,
        on_behalf_of_client: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> order_service_pb2.SubmitOrderResponse:
        """Submit one order; the response holds the stored order (ACCEPTED or ON_HOLD).

        Without `request_id`, one is derived from this client, the order id and the bytes, so
        retrying — here, or after a crash, from another process — never makes a second order.
        With `ubl_order_response`, the response's `ubl_order_response` holds a UBL 2.1
        OrderResponse document (AP accepted, AB on hold, RE cancelled). With
        `on_behalf_of_client` (a manager or operations key), the order is entered for that
        client: a phone or e-mail order, source MANUAL.
        """
        request = self._base._submit_request(
            order, request_id, validate_only, ubl_order_response, on_behalf_of_client
        )
        return await self._unary(self._orders.SubmitOrder, request, timeout, metadata, retry)

    async def submit_orders(
        self,
        orders: Documents,
        *,
        window: int = 32,
        validate_only: bool = False,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> AsyncIterator[BulkResult]:
        """Submit many orders over one stream; yields one BulkResult per order, in order.

        `orders` (an iterable, or for AsyncClient also an async iterable) is read lazily: at
        most `window` orders are in flight unanswered, so a huge or endless iterator costs
        bounded memory. A broken stream is resumed on a new one with the unanswered orders
        (their request_ids make that safe).
        """
        async for result in bulk_submit(
            self._orders,
            orders,
            lambda document: self._base._submit_request(document, None, validate_only),
            window,
            self._base._metadata(metadata),
            self._base._policy(retry, safe=True),
            _sleep_or_raise,
        ):
            yield result

    async def get_order(
        self,
        *,
        id: str = "",
        client_order_id: str = "",
        client: str = "",
        customer_account: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> order_pb2.Order:
        """One order by server id, or by the shop's order number (`client_order_id`), narrowed
        by `client` and `customer_account` when several clients or buyers use it."""
        request = (
            order_service_pb2.GetOrderRequest(id=id)
            if id
            else order_service_pb2.GetOrderRequest(
                client_order_id=client_order_id, client=client, customer_account=customer_account
            )
        )
        reply = await self._unary(self._orders.GetOrder, request, timeout, metadata, retry)
        return reply.order

    async def get_order_document(
        self,
        id: str,
        *,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> order_service_pb2.GetOrderDocumentResponse:
        """The exact bytes received for an order, with how and when: fetch, edit, then
        correct_order."""
        request = order_service_pb2.GetOrderDocumentRequest(id=id)
        return await self._unary(self._orders.GetOrderDocument, request, timeout, metadata, retry)

    async def cancel_order_lines(
        self,
        id: str,
        keep: Mapping[int, int],
        reason: str,
        *,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> order_pb2.Order:
        """Cancel lines or pieces before they ship: `keep` maps line numbers to the pieces to
        keep (0 cancels the line). It names the result, so a retry changes nothing more."""
        request = order_service_pb2.CancelOrderLinesRequest(
            id=id,
            lines=[order_pb2.LineQuantity(line_number=n, quantity=q) for n, q in keep.items()],
            reason=reason,
        )
        reply = await self._unary(self._orders.CancelOrderLines, request, timeout, metadata, retry)
        return reply.order

    async def watch_order_events(
        self,
        *,
        after_event_id: str = "",
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> AsyncIterator[order_service_pb2.WatchOrderEventsResponse]:
        """Order events as they happen, for as long as you iterate; after a dropped connection
        it resumes after the last event it delivered. Without `after_event_id` it starts with
        the next new event."""
        policy = self._base._policy(retry, safe=True)
        md = self._base._metadata(metadata)
        last = after_event_id
        backoffs = policy.backoffs()
        while True:
            request = order_service_pb2.WatchOrderEventsRequest(after_event_id=last)
            call = self._orders.WatchOrderEvents(request, metadata=md)
            try:
                async for message in call:
                    backoffs = policy.backoffs()  # a working stream resets the budget
                    last = message.event.id
                    yield message
                return
            except grpc.RpcError as exc:
                error = from_rpc_error(exc)
            finally:
                end_stream(call)  # the caller stopped iterating: end it on the server too
            await _sleep_or_raise(error, policy, backoffs, None)

    # --- ExceptionQueueService (manager) ----------------------------------------------------

    async def list_held_orders(
        self,
        *,
        reason_code: str = "",
        customer_account: str = "",
        client: str = "",
        min_age: timedelta | None = None,
        page_size: int = 0,
        page_token: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> exception_queue_service_pb2.ListHeldOrdersResponse:
        """One page of the exception queue, oldest first (manager and admin keys; a website
        lists its own held orders with iter_orders(state="ON_HOLD"))."""
        request = exception_queue_service_pb2.ListHeldOrdersRequest(
            reason_code=reason_code,
            customer_account=customer_account,
            client=client,
            page_size=page_size,
            page_token=page_token,
        )
        if min_age is not None:
            request.min_age.FromTimedelta(min_age)
        return await self._unary(self._queue.ListHeldOrders, request, timeout, metadata, retry)

    async def correct_order(
        self,
        id: str,
        order: OrderDocument,
        *,
        request_id: str | None = None,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> order_service_pb2.SubmitOrderResponse:
        """New XML for a held order (same order id), judged afresh; retried safely (the
        request_id is derived from the document unless given)."""
        submitted = self._base._submit_request(order, request_id, False)
        request = exception_queue_service_pb2.CorrectOrderRequest(
            id=id, order_xml=submitted.order_xml, request_id=submitted.request_id
        )
        reply = await self._unary(self._queue.CorrectOrder, request, timeout, metadata, retry)
        return reply.result

    async def release_order(
        self,
        id: str,
        reason: str,
        *,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> order_pb2.Order:
        """Accept a held order against overridable holds, with a reason (manager key). Never
        retried: a release that went through would be refused as NOT_ON_HOLD on a retry."""
        request = exception_queue_service_pb2.ReleaseOrderRequest(id=id, reason=reason)
        reply = await self._unary(
            self._queue.ReleaseOrder, request, timeout, metadata, retry, safe=False
        )
        return reply.order

    async def hold_order(
        self,
        id: str,
        reason: str,
        *,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> order_pb2.Order:
        """Put an accepted order that has not shipped on a manual hold, keeping its stock
        (manager); release_order lifts it. Holding it again changes nothing."""
        request = exception_queue_service_pb2.HoldOrderRequest(id=id, reason=reason)
        reply = await self._unary(self._queue.HoldOrder, request, timeout, metadata, retry)
        return reply.order

    async def recheck_orders(
        self,
        id: str = "",
        *,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> exception_queue_service_pb2.RecheckOrdersResponse:
        """Re-check orders held for stock alone now: one order, or all (empty `id`)."""
        request = exception_queue_service_pb2.RecheckOrdersRequest(id=id)
        return await self._unary(self._queue.RecheckOrders, request, timeout, metadata, retry)

    async def accept_short(
        self,
        id: str,
        reason: str,
        *,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> order_pb2.Order:
        """Accept an order held for stock alone with what one location has, cancelling the
        rest. Never retried: once accepted, a second call is refused NOT_STOCK_HELD."""
        request = exception_queue_service_pb2.AcceptShortRequest(id=id, reason=reason)
        reply = await self._unary(
            self._queue.AcceptShort, request, timeout, metadata, retry, safe=False
        )
        return reply.order

    async def list_audit_entries(
        self,
        *,
        order_id: str = "",
        subject: str = "",
        actor: str = "",
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> audit_service_pb2.ListAuditEntriesResponse:
        """One page of the audit log, oldest first (manager, admin and operations keys)."""
        request = audit_service_pb2.ListAuditEntriesRequest(
            order_id=order_id,
            subject=subject,
            actor=actor,
            page_size=page_size,
            page_token=page_token,
        )
        if start_time is not None:
            request.start_time.FromDatetime(start_time)
        if end_time is not None:
            request.end_time.FromDatetime(end_time)
        return await self._unary(self._audit.ListAuditEntries, request, timeout, metadata, retry)

    async def cancel_order(
        self,
        id: str,
        reason: str,
        *,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> order_pb2.Order:
        """Cancel an order that is ON_HOLD or ACCEPTED (its stock is released). Cancelling
        twice changes nothing, so this is retried like a read."""
        request = order_service_pb2.CancelOrderRequest(id=id, reason=reason)
        reply = await self._unary(self._orders.CancelOrder, request, timeout, metadata, retry)
        return reply.order

    # --- FulfillmentService (warehouse) -----------------------------------------------------

    async def transition_order(
        self,
        id: str,
        state: str | int,
        *,
        carrier: str = "",
        tracking_number: str = "",
        delivery_time: datetime | None = None,
        note: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> order_pb2.Order:
        """Move an order on: PICKING, PICKED, PACKED, DISPATCHED (carrier and tracking number
        required; one shipment of everything left) or DELIVERED (delivery_time required); or
        back to ACCEPTED from PICKING or PICKED (an un-pick: the reason in `note`). Repeating
        a step changes nothing."""
        request = fulfillment_service_pb2.TransitionOrderRequest(
            id=id,
            state=state_value(state),  # type: ignore[arg-type]
            carrier=carrier,
            tracking_number=tracking_number,
            note=note,
        )
        if delivery_time is not None:
            request.delivery_time.FromDatetime(delivery_time)
        reply = await self._unary(
            self._fulfillment.TransitionOrder, request, timeout, metadata, retry
        )
        return reply.order

    async def create_shipment(
        self,
        order_id: str,
        carrier: str,
        *,
        tracking_number: str = "",
        tracking_url: str = "",
        without_tracking: bool = False,
        lines: Mapping[int, int] | None = None,
        request_id: str | None = None,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> fulfillment_service_pb2.CreateShipmentResponse:
        """Record a shipment handed to a carrier: `lines` maps line numbers to pieces (None:
        everything not yet shipped). A request_id is made when none is given and reused by the
        retries, so a retry never ships twice."""
        request = fulfillment_service_pb2.CreateShipmentRequest(
            request_id=request_id or str(uuid.uuid4()),
            order_id=order_id,
            carrier=carrier,
            tracking_number=tracking_number,
            tracking_url=tracking_url,
            without_tracking=without_tracking,
            lines=[
                order_pb2.LineQuantity(line_number=n, quantity=q) for n, q in (lines or {}).items()
            ],
        )
        return await self._unary(
            self._fulfillment.CreateShipment, request, timeout, metadata, retry
        )

    async def update_shipment(
        self,
        shipment_id: str,
        *,
        state: str | int | None = None,
        tracking_number: str = "",
        tracking_url: str = "",
        delivery_time: datetime | None = None,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> fulfillment_service_pb2.UpdateShipmentResponse:
        """Move a shipment on (IN_TRANSIT, DELIVERED: delivery_time required) or add its
        tracking number. Repeating an update changes nothing."""
        request = fulfillment_service_pb2.UpdateShipmentRequest(
            shipment_id=shipment_id,
            state=shipment_state_value(state),  # type: ignore[arg-type]
            tracking_number=tracking_number,
            tracking_url=tracking_url,
        )
        if delivery_time is not None:
            request.delivery_time.FromDatetime(delivery_time)
        return await self._unary(
            self._fulfillment.UpdateShipment, request, timeout, metadata, retry
        )

    async def list_orders(
        self,
        *,
        state: str | int | None = None,
        customer_account: str = "",
        client: str = "",
        hold_reason: str = "",
        source: str | int | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        by_update_time: bool = False,
        page_size: int = 0,
        page_token: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> order_service_pb2.ListOrdersResponse:
        """One page of orders, oldest first; `state` such as "ON_HOLD". See iter_orders.

        With `by_update_time`, by the time of their last change: for polling what changed.
        Every page then has a `next_page_token`, the last one too; keep it and ask with it
        again later (docs/sdk.md, "Polling for changes")."""
        request = order_service_pb2.ListOrdersRequest(
            state=state_value(state),  # type: ignore[arg-type]
            customer_account=customer_account,
            client=client,
            hold_reason=hold_reason,
            source=source_value(source),  # type: ignore[arg-type]
            page_size=page_size,
            page_token=page_token,
            order_by=order_service_pb2.LIST_ORDERS_ORDER_BY_UPDATE_TIME
            if by_update_time
            else order_service_pb2.LIST_ORDERS_ORDER_BY_UNSPECIFIED,
        )
        for name, moment in (
            ("create_time_after", created_after),
            ("create_time_before", created_before),
            ("update_time_after", updated_after),
            ("update_time_before", updated_before),
        ):
            if moment is not None:
                getattr(request, name).FromDatetime(moment)
        return await self._unary(self._orders.ListOrders, request, timeout, metadata, retry)

    async def iter_orders(
        self,
        *,
        state: str | int | None = None,
        customer_account: str = "",
        client: str = "",
        hold_reason: str = "",
        source: str | int | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        page_size: int = 100,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
    ) -> AsyncIterator[order_pb2.Order]:
        """Every matching order, following next_page_token page by page."""
        token = ""
        while True:
            page = await self.list_orders(
                state=state,
                customer_account=customer_account,
                client=client,
                hold_reason=hold_reason,
                source=source,
                created_after=created_after,
                created_before=created_before,
                updated_after=updated_after,
                updated_before=updated_before,
                page_size=page_size,
                page_token=token,
                timeout=timeout,
                metadata=metadata,
            )
            for order in page.orders:
                yield order
            token = page.next_page_token
            if not token:
                return

    # --- InventoryService -------------------------------------------------------------------

    async def get_stock_levels(
        self,
        codes: Sequence[str],
        *,
        location_codes: Sequence[str] = (),
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> list[inventory_service_pb2.ProductStock]:
        """Stock of up to 1,000 SKUs, aliases or barcodes, per location and in total, in the
        order asked; an unknown code comes back with `found` false."""
        request = inventory_service_pb2.GetStockLevelsRequest(
            codes=list(codes), location_codes=list(location_codes)
        )
        reply = await self._unary(self._inventory.GetStockLevels, request, timeout, metadata, retry)
        return list(reply.items)

    async def watch_stock_levels(
        self,
        codes: Sequence[str],
        *,
        location_codes: Sequence[str] = (),
        after_change_id: int = 0,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> AsyncIterator[inventory_service_pb2.WatchStockLevelsResponse]:
        """A snapshot (unless resuming after `after_change_id`), then every stock change, for
        as long as you iterate. A dropped connection is re-opened after the last change seen,
        so nothing is missed; `retry` bounds the attempts in a row that fail."""
        policy = self._base._policy(retry, safe=True)
        md = self._base._metadata(metadata)
        last = after_change_id
        backoffs = policy.backoffs()
        while True:
            request = inventory_service_pb2.WatchStockLevelsRequest(
                codes=list(codes), location_codes=list(location_codes), after_change_id=last
            )
            call = self._inventory.WatchStockLevels(request, metadata=md)
            try:
                async for message in call:
                    backoffs = policy.backoffs()
                    if message.WhichOneof("event") == "change":
                        last = message.change.change_id
                    else:
                        last = message.snapshot.change_id
                    yield message
                return
            except grpc.RpcError as exc:
                error = from_rpc_error(exc)
            finally:
                end_stream(call)  # the caller stopped iterating: end it on the server too
            await _sleep_or_raise(error, policy, backoffs, None)

    async def adjust_stock(
        self,
        code: str,
        location_code: str,
        delta: int,
        reason_code: str,
        *,
        note: str = "",
        bucket: str | int | None = None,
        request_id: str | None = None,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> inventory_service_pb2.AdjustStockResponse:
        """Change on hand by `delta` (manager role); `bucket` QUARANTINE changes the
        quarantined pieces instead. A request_id is made when none is given and reused by the
        retries, so a retry never applies the change twice."""
        request = inventory_service_pb2.AdjustStockRequest(
            request_id=request_id or str(uuid.uuid4()),
            code=code,
            location_code=location_code,
            delta=delta,
            reason_code=reason_code,
            note=note,
            bucket=enum_value(  # type: ignore[arg-type]
                inventory_service_pb2.StockBucket, "STOCK_BUCKET_", bucket
            ),
        )
        return await self._unary(self._inventory.AdjustStock, request, timeout, metadata, retry)

    async def record_stock_count(
        self,
        code: str,
        location_code: str,
        counted: int,
        reason: str,
        *,
        bucket: str | int | None = None,
        request_id: str | None = None,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> inventory_service_pb2.RecordStockCountResponse:
        """Record a physical count (manager role) of the sellable pieces, or with `bucket`
        QUARANTINE of the quarantined ones; the response carries the variance."""
        request = inventory_service_pb2.RecordStockCountRequest(
            request_id=request_id or str(uuid.uuid4()),
            code=code,
            location_code=location_code,
            counted=counted,
            reason=reason,
            bucket=enum_value(  # type: ignore[arg-type]
                inventory_service_pb2.StockBucket, "STOCK_BUCKET_", bucket
            ),
        )
        return await self._unary(
            self._inventory.RecordStockCount, request, timeout, metadata, retry
        )

    async def list_locations(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> inventory_service_pb2.ListLocationsResponse:
        """One page of stock locations, in allocation priority order."""
        request = inventory_service_pb2.ListLocationsRequest(
            page_size=page_size, page_token=page_token
        )
        return await self._unary(self._inventory.ListLocations, request, timeout, metadata, retry)

    async def reconcile_stock(
        self,
        counts: Sequence[tuple[str, str, int]],
        *,
        source: str = "",
        threshold_percent: float = 0,
        dry_run: bool = False,
        request_id: str | None = None,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> inventory_service_pb2.ReconcileStockResponse:
        """Compare the warehouse's counts, (code, location, pieces) each, with Ordergate's
        stock (admin, manager): every difference comes back, those beyond the threshold (the
        server's default when 0) raise INVENTORY_DIVERGENCE; unless `dry_run`, their counts
        win. A request_id is made when none is given and reused by the retries."""
        request = inventory_service_pb2.ReconcileStockRequest(
            request_id=request_id or str(uuid.uuid4()),
            source=source,
            entries=[
                inventory_service_pb2.StockCountEntry(
                    code=code, location_code=location, quantity=quantity
                )
                for code, location, quantity in counts
            ],
            threshold_percent=threshold_percent,
            dry_run=dry_run,
        )
        return await self._unary(self._inventory.ReconcileStock, request, timeout, metadata, retry)

    # --- InboundService: purchase orders and receipts -----------------------------------------

    async def create_purchase_order(
        self,
        po_number: str,
        supplier: str,
        location_code: str,
        lines: Sequence[inbound_service_pb2.NewPurchaseOrderLine | tuple[str, int, str]],
        *,
        notes: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> inbound_service_pb2.CreatePurchaseOrderResponse:
        """Create a purchase order (admin, manager). `lines` are NewPurchaseOrderLine messages
        or (code, quantity, expected YYYY-MM-DD) tuples, numbered 1, 2, ... The same order
        again is answered (replayed), so retries are safe."""
        request = inbound_service_pb2.CreatePurchaseOrderRequest(
            po_number=po_number,
            supplier=supplier,
            location_code=location_code,
            lines=[
                line
                if isinstance(line, inbound_service_pb2.NewPurchaseOrderLine)
                else inbound_service_pb2.NewPurchaseOrderLine(
                    code=line[0], quantity=line[1], expected_date=line[2]
                )
                for line in lines
            ],
            notes=notes,
        )
        return await self._unary(
            self._inbound.CreatePurchaseOrder, request, timeout, metadata, retry
        )

    async def get_purchase_order(
        self,
        po_number: str,
        *,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> inbound_service_pb2.PurchaseOrder:
        """One purchase order with its lines, receipts and variances."""
        request = inbound_service_pb2.GetPurchaseOrderRequest(po_number=po_number)
        reply = await self._unary(self._inbound.GetPurchaseOrder, request, timeout, metadata, retry)
        return reply.purchase_order

    async def list_purchase_orders(
        self,
        *,
        state: str | int | None = None,
        supplier: str = "",
        page_size: int = 0,
        page_token: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> inbound_service_pb2.ListPurchaseOrdersResponse:
        """One page of purchase orders, newest first; `state` as OPEN, PARTLY_RECEIVED ..."""
        request = inbound_service_pb2.ListPurchaseOrdersRequest(
            state=enum_value(  # type: ignore[arg-type]
                inbound_service_pb2.PurchaseOrderState, "PURCHASE_ORDER_STATE_", state
            ),
            supplier=supplier,
            page_size=page_size,
            page_token=page_token,
        )
        return await self._unary(
            self._inbound.ListPurchaseOrders, request, timeout, metadata, retry
        )

    async def record_receipt(
        self,
        po_number: str,
        lines: Sequence[inbound_service_pb2.ReceiptLine | tuple[int, int, int]],
        *,
        note: str = "",
        variance_reason: str = "",
        request_id: str | None = None,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> inbound_service_pb2.RecordReceiptResponse:
        """Record a delivery (admin, manager, warehouse): ReceiptLine messages or (line number,
        good pieces, damaged pieces) tuples; `variance_reason` goes on tuple lines (needed for
        an over-receipt). A request_id is made when none is given and reused by the retries,
        so a retry never receives twice."""
        request = inbound_service_pb2.RecordReceiptRequest(
            request_id=request_id or str(uuid.uuid4()),
            po_number=po_number,
            lines=[
                line
                if isinstance(line, inbound_service_pb2.ReceiptLine)
                else inbound_service_pb2.ReceiptLine(
                    line_number=line[0],
                    received_quantity=line[1],
                    damaged_quantity=line[2],
                    variance_reason=variance_reason,
                )
                for line in lines
            ],
            note=note,
        )
        return await self._unary(self._inbound.RecordReceipt, request, timeout, metadata, retry)

    async def close_purchase_order(
        self,
        po_number: str,
        reason: str = "",
        *,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> inbound_service_pb2.PurchaseOrder:
        """Close a purchase order (admin, manager); open lines become UNDER variances."""
        request = inbound_service_pb2.ClosePurchaseOrderRequest(po_number=po_number, reason=reason)
        reply = await self._unary(
            self._inbound.ClosePurchaseOrder, request, timeout, metadata, retry, safe=False
        )
        return reply.purchase_order

    # --- ReturnService: returns (RMAs) with triage -------------------------------------------

    async def create_return(
        self,
        rma_id: str,
        order_id: str,
        reason: str,
        *,
        lines: Mapping[int, int] | None = None,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> return_service_pb2.CreateReturnResponse:
        """Authorize a return of an order's shipped pieces: `lines` maps line numbers to pieces
        (None: every shipped piece not already returning). The same RMA again is answered
        (replayed), so retries are safe."""
        request = return_service_pb2.CreateReturnRequest(
            rma_id=rma_id,
            order_id=order_id,
            reason=reason,
            lines=[
                order_pb2.LineQuantity(line_number=n, quantity=q) for n, q in (lines or {}).items()
            ],
        )
        return await self._unary(self._returns.CreateReturn, request, timeout, metadata, retry)

    async def get_return(
        self,
        rma_id: str,
        *,
        client: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> return_service_pb2.Return:
        """One return (`client`: for staff, when two clients use the same RMA id)."""
        request = return_service_pb2.GetReturnRequest(rma_id=rma_id, client=client)
        reply = await self._unary(self._returns.GetReturn, request, timeout, metadata, retry)
        return reply.rma

    async def list_returns(
        self,
        *,
        state: str | int | None = None,
        order_id: str = "",
        page_size: int = 0,
        page_token: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> return_service_pb2.ListReturnsResponse:
        """One page of returns, newest first; `state` as AUTHORIZED, RECEIVED, TRIAGED ..."""
        request = return_service_pb2.ListReturnsRequest(
            state=enum_value(  # type: ignore[arg-type]
                return_service_pb2.ReturnState, "RETURN_STATE_", state
            ),
            order_id=order_id,
            page_size=page_size,
            page_token=page_token,
        )
        return await self._unary(self._returns.ListReturns, request, timeout, metadata, retry)

    async def receive_return(
        self,
        rma_id: str,
        location_code: str,
        *,
        lines: Mapping[int, int] | None = None,
        client: str = "",
        note: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> return_service_pb2.Return:
        """Receive a return into quarantine at `location_code` (admin, manager, warehouse):
        `lines` maps line numbers to pieces that came (None: everything authorized)."""
        request = return_service_pb2.ReceiveReturnRequest(
            rma_id=rma_id,
            client=client,
            location_code=location_code,
            lines=[
                order_pb2.LineQuantity(line_number=n, quantity=q) for n, q in (lines or {}).items()
            ],
            note=note,
        )
        reply = await self._unary(
            self._returns.ReceiveReturn, request, timeout, metadata, retry, safe=False
        )
        return reply.rma

    async def triage_return(
        self,
        rma_id: str,
        decisions: Sequence[return_service_pb2.TriageLine | tuple[int, str]],
        *,
        client: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> return_service_pb2.Return:
        """Triage received pieces (admin, manager, warehouse): TriageLine messages, or (line
        number, RESTOCK | REWORK) tuples for all of a line's pieces (DISPOSE needs a reason:
        use a TriageLine)."""
        request = return_service_pb2.TriageReturnRequest(
            rma_id=rma_id,
            client=client,
            lines=[
                line
                if isinstance(line, return_service_pb2.TriageLine)
                else return_service_pb2.TriageLine(
                    line_number=line[0],
                    decision=enum_value(  # type: ignore[arg-type]
                        return_service_pb2.TriageDecision, "TRIAGE_DECISION_", line[1]
                    ),
                )
                for line in decisions
            ],
        )
        reply = await self._unary(
            self._returns.TriageReturn, request, timeout, metadata, retry, safe=False
        )
        return reply.rma

    # --- CatalogService (admin) -------------------------------------------------------------
    # Upserts are idempotent (the same content again changes nothing), so they are retried
    # like reads.

    async def upsert_locations(
        self,
        locations: Sequence[inventory_service_pb2.Location],
        *,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> catalog_service_pb2.SyncCounts:
        """Create or update stock locations."""
        request = catalog_service_pb2.UpsertLocationsRequest(locations=locations)
        reply = await self._unary(self._catalog.UpsertLocations, request, timeout, metadata, retry)
        return reply.counts

    async def upsert_products(
        self,
        products: Sequence[catalog_service_pb2.Product],
        *,
        batch_size: int = 1000,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> catalog_service_pb2.SyncCounts:
        """Create or update products, streamed in batches; all of them or none are applied."""
        batches = [
            catalog_service_pb2.UpsertProductsRequest(products=products[i : i + batch_size])
            for i in range(0, len(products), batch_size)
        ]
        reply = await self._unary(
            lambda _, **kw: self._catalog.UpsertProducts(iter(batches), **kw),
            None,
            timeout,
            metadata,
            retry,
        )
        return reply.counts

    async def rename_sku(
        self,
        old_sku: str,
        new_sku: str,
        *,
        transition_end: datetime | None = None,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> bool:
        """Fold `old_sku` into `new_sku`; the old code is accepted until `transition_end`.
        Returns False when the rename was already in place exactly so."""
        request = catalog_service_pb2.RenameSkuRequest(old_sku=old_sku, new_sku=new_sku)
        if transition_end is not None:
            request.transition_end.FromDatetime(transition_end)
        reply = await self._unary(self._catalog.RenameSku, request, timeout, metadata, retry)
        return reply.changed

    async def upsert_customers(
        self,
        customers: Sequence[catalog_service_pb2.Customer],
        *,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> catalog_service_pb2.SyncCounts:
        """Create or update customers."""
        request = catalog_service_pb2.UpsertCustomersRequest(customers=customers)
        reply = await self._unary(self._catalog.UpsertCustomers, request, timeout, metadata, retry)
        return reply.counts

    async def upsert_price_lists(
        self,
        price_lists: Sequence[catalog_service_pb2.PriceList],
        *,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> catalog_service_pb2.SyncCounts:
        """Create or update price lists (each list's entries are replaced)."""
        request = catalog_service_pb2.UpsertPriceListsRequest(price_lists=price_lists)
        reply = await self._unary(self._catalog.UpsertPriceLists, request, timeout, metadata, retry)
        return reply.counts

    async def upsert_contract_prices(
        self,
        contract_prices: Sequence[catalog_service_pb2.ContractPrice],
        *,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> catalog_service_pb2.SyncCounts:
        """Replace the contract prices of the customers named."""
        request = catalog_service_pb2.UpsertContractPricesRequest(contract_prices=contract_prices)
        reply = await self._unary(
            self._catalog.UpsertContractPrices, request, timeout, metadata, retry
        )
        return reply.counts

    async def upsert_credit_notes(
        self,
        credit_notes: Sequence[catalog_service_pb2.CreditNote],
        *,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> catalog_service_pb2.SyncCounts:
        """Create or update credit notes."""
        request = catalog_service_pb2.UpsertCreditNotesRequest(credit_notes=credit_notes)
        reply = await self._unary(
            self._catalog.UpsertCreditNotes, request, timeout, metadata, retry
        )
        return reply.counts

    # --- PricingService ---------------------------------------------------------------------

    async def get_customer_prices(
        self,
        customer_account: str,
        items: Sequence[tuple[str, int]],
        *,
        price_time: datetime | None = None,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> pricing_service_pb2.GetCustomerPricesResponse:
        """Unit price, currency and rule for each (code, quantity), for one customer."""
        request = pricing_service_pb2.GetCustomerPricesRequest(
            customer_account=customer_account,
            items=[pricing_service_pb2.PriceQuery(code=c, quantity=q) for c, q in items],
        )
        if price_time is not None:
            request.price_time.FromDatetime(price_time)
        return await self._unary(self._pricing.GetCustomerPrices, request, timeout, metadata, retry)

    async def list_credit_notes(
        self,
        customer_account: str,
        *,
        page_size: int = 0,
        page_token: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> pricing_service_pb2.ListCreditNotesResponse:
        """A customer's open credit notes and the remaining balance per currency."""
        request = pricing_service_pb2.ListCreditNotesRequest(
            customer_account=customer_account, page_size=page_size, page_token=page_token
        )
        return await self._unary(self._pricing.ListCreditNotes, request, timeout, metadata, retry)

    # --- WebhookService (a website key: its own client's; admin: any client's) --------------

    async def create_webhook_endpoint(
        self,
        url: str,
        event_types: Sequence[str] = (),
        *,
        description: str = "",
        client: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> webhook_service_pb2.CreateWebhookEndpointResponse:
        """Register an endpoint for `event_types` (none: all). The answer's `secret` (whsec_...)
        is shown this once. Never retried: a retry would register a second endpoint."""
        request = webhook_service_pb2.CreateWebhookEndpointRequest(
            client=client, url=url, event_types=event_types, description=description
        )
        return await self._unary(
            self._webhooks.CreateWebhookEndpoint, request, timeout, metadata, retry, safe=False
        )

    async def list_webhook_endpoints(
        self,
        *,
        client: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> list[webhook_service_pb2.WebhookEndpoint]:
        """The endpoints, oldest first."""
        request = webhook_service_pb2.ListWebhookEndpointsRequest(client=client)
        reply = await self._unary(
            self._webhooks.ListWebhookEndpoints, request, timeout, metadata, retry
        )
        return list(reply.endpoints)

    async def update_webhook_endpoint(
        self,
        id: str,
        *,
        url: str | None = None,
        event_types: Sequence[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> webhook_service_pb2.WebhookEndpoint:
        """Change what is given (None: unchanged); enabled=True resumes a disabled endpoint."""
        endpoint = webhook_service_pb2.WebhookEndpoint(id=id)
        paths: list[str] = []
        if url is not None:
            endpoint.url, paths = url, [*paths, "url"]
        if event_types is not None:
            endpoint.event_types[:], paths = list(event_types), [*paths, "event_types"]
        if description is not None:
            endpoint.description, paths = description, [*paths, "description"]
        if enabled is not None:
            endpoint.enabled, paths = enabled, [*paths, "enabled"]
        if not paths:
            raise ValueError("name something to change: url, event_types, description, enabled")
        request = webhook_service_pb2.UpdateWebhookEndpointRequest(endpoint=endpoint)
        request.update_mask.paths[:] = paths
        reply = await self._unary(
            self._webhooks.UpdateWebhookEndpoint, request, timeout, metadata, retry
        )
        return reply.endpoint

    async def delete_webhook_endpoint(
        self,
        id: str,
        *,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> None:
        """Delete an endpoint and its deliveries."""
        request = webhook_service_pb2.DeleteWebhookEndpointRequest(id=id)
        await self._unary(
            self._webhooks.DeleteWebhookEndpoint, request, timeout, metadata, retry, safe=False
        )

    async def rotate_webhook_secret(
        self,
        id: str,
        *,
        overlap: timedelta | None = None,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> webhook_service_pb2.RotateWebhookSecretResponse:
        """A new secret (shown this once); the old one signs too for `overlap` (None: 24 h).
        Never retried: a retry would rotate again."""
        request = webhook_service_pb2.RotateWebhookSecretRequest(id=id)
        if overlap is not None:
            request.overlap.FromTimedelta(overlap)
        return await self._unary(
            self._webhooks.RotateWebhookSecret, request, timeout, metadata, retry, safe=False
        )

    async def list_webhook_deliveries(
        self,
        *,
        endpoint_id: str = "",
        event_id: str = "",
        state: str | int = 0,
        page_size: int = 0,
        page_token: str = "",
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> webhook_service_pb2.ListWebhookDeliveriesResponse:
        """One page of deliveries, newest first, each with its attempts. `state`: PENDING,
        DELIVERED or FAILED."""
        if isinstance(state, str):
            state = webhook_service_pb2.WebhookDeliveryState.Value(
                f"WEBHOOK_DELIVERY_STATE_{state.upper()}"
            )
        request = webhook_service_pb2.ListWebhookDeliveriesRequest(
            endpoint_id=endpoint_id,
            event_id=event_id,
            state=state,  # type: ignore[arg-type]
            page_size=page_size,
            page_token=page_token,
        )
        return await self._unary(
            self._webhooks.ListWebhookDeliveries, request, timeout, metadata, retry
        )

    async def redeliver_webhook_events(
        self,
        endpoint_id: str,
        *,
        event_id: str = "",
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        timeout: float | _Default | None = DEFAULT,
        metadata: Metadata = (),
        retry: RetryPolicy | _Default | None = DEFAULT,
    ) -> int:
        """Send one event (by id), or every event from `start_time` (to `end_time`), to the
        endpoint again; returns how many. Never retried: a retry would send them twice more."""
        request = webhook_service_pb2.RedeliverWebhookEventsRequest(
            endpoint_id=endpoint_id, event_id=event_id
        )
        if start_time is not None:
            request.start_time.FromDatetime(start_time)
        if end_time is not None:
            request.end_time.FromDatetime(end_time)
        reply = await self._unary(
            self._webhooks.RedeliverWebhookEvents, request, timeout, metadata, retry, safe=False
        )
        return reply.events

    # --- plumbing ---------------------------------------------------------------------------

    async def _unary(
        self,
        rpc: Callable[..., Awaitable[T]],
        request: object,
        timeout: float | _Default | None,
        metadata: Metadata,
        retry: RetryPolicy | _Default | None,
        *,
        safe: bool = True,
    ) -> T:
        """Call `rpc`, retrying what the policy retries when the call is `safe` to repeat
        (a read, or a change that carries its request_id or is idempotent)."""
        policy = self._base._policy(retry, safe=safe)
        budget = self._base._timeout_for(timeout)
        deadline = None if budget is None else time.monotonic() + budget
        backoffs = policy.backoffs()
        md = self._base._metadata(metadata)
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await rpc(request, timeout=remaining, metadata=md)
            except grpc.RpcError as exc:
                error = from_rpc_error(exc)
            await _sleep_or_raise(error, policy, backoffs, deadline)


async def _sleep_or_raise(
    error: OrdergateError, policy: RetryPolicy, backoffs: Iterator[float], deadline: float | None
) -> None:
    delay = next(backoffs, None) if error.code in policy.retry_codes else None
    if delay is not None and error.retry_after is not None:
        delay = max(delay, error.retry_after)  # never sooner than the server advised
    if delay is None or (deadline is not None and time.monotonic() + delay >= deadline):
        raise error
    await sleep(delay)
