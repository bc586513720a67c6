"""InventoryService: proto in -> service call -> proto out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeAlias

import grpc
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from google.protobuf.timestamp_pb2 import Timestamp

from ordergate.v1 import inventory_service_pb2 as pb
from ordergate.v1 import inventory_service_pb2_grpc

from ..service import stock, stock_corrections, stock_reconciliation, stock_watch
from ..service.errors import ErrorKind, FieldViolation, ServiceError
from ..service.ordered_feed import InOrder
from ..storage import Database, stock_log
from .calls import current_principal
from .runner import Runner

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def _level(level: stock.Level) -> pb.StockLevel:
    location, on_hand, allocated, _, quarantine, on_order, next_expected = level
    return pb.StockLevel(
        location_code=location,
        on_hand=on_hand,
        allocated=allocated,
        available=stock.available(level),
        quarantine=quarantine,
        on_order=on_order,
        next_expected_date=next_expected or "",
    )


def _add_products(
    into: RepeatedCompositeFieldContainer[pb.ProductStock], items: list[stock.ProductStock]
) -> None:
    """Append `items` to a repeated ProductStock field, each with its levels and their total
    (the sums over its locations; for a bundle, of the kits). Messages are made in place with
    add(): building each and handing it over copies it, which doubled a 100-code answer's cost.
    The tuples are unpacked and the total summed in this one loop: through properties it took
    half as long again (218 against 144 us for a 100-code answer in a loop; bench/README.md)."""
    add = into.add
    for requested_code, sku, levels, bundle in items:
        message = add(requested_code=requested_code, sku=sku, found=bool(sku), bundle=bundle)
        add_level = message.locations.add
        on_hand = allocated = available = quarantine = on_order = 0
        earliest = ""
        for location, level_on_hand, level_allocated, kits, held, ordered, expected in levels:
            # stock.available(), written out: a call per level costs more than the sum
            level_available = level_on_hand - level_allocated if kits is None else kits
            if held or ordered:  # most levels have neither: three fields fewer to set
                add_level(
                    location_code=location,
                    on_hand=level_on_hand,
                    allocated=level_allocated,
                    available=level_available,
                    quarantine=held,
                    on_order=ordered,
                    next_expected_date=expected or "",
                )
                quarantine += held
                on_order += ordered
                if expected and (not earliest or expected < earliest):
                    earliest = expected
            else:
                add_level(
                    location_code=location,
                    on_hand=level_on_hand,
                    allocated=level_allocated,
                    available=level_available,
                )
            on_hand += level_on_hand
            allocated += level_allocated
            available += level_available
        total = message.total
        total.on_hand = on_hand
        total.allocated = allocated
        total.available = available
        if quarantine or on_order:
            total.quarantine = quarantine
            total.on_order = on_order
            total.next_expected_date = earliest


def _change(change: stock_log.StockChange, bundles: list[stock.ProductStock]) -> pb.StockChange:
    stamp = Timestamp()
    stamp.FromDatetime(change.at)
    message = pb.StockChange(
        change_id=change.seq,
        change_time=stamp,
        sku=change.sku,
        kind=change.kind,
        level=_level(
            (
                change.location,
                change.on_hand_after,
                change.allocated_after,
                None,
                change.quarantine_after,
                0,
                None,
            )
        ),
        order_id=change.order_id or "",
    )
    _add_products(message.bundles, bundles)
    return message


def _corrected(done: stock_corrections.Correction) -> pb.StockLevel:
    return _level((done.location, done.on_hand, done.allocated, None, done.quarantine, 0, None))


_BUCKETS = {
    pb.STOCK_BUCKET_UNSPECIFIED: stock_corrections.SELLABLE,
    pb.STOCK_BUCKET_SELLABLE: stock_corrections.SELLABLE,
    pb.STOCK_BUCKET_QUARANTINE: stock_corrections.QUARANTINE,
}


def _bucket(value: pb.StockBucket.ValueType) -> str:
    bucket = _BUCKETS.get(value)
    if bucket is None:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "BUCKET_INVALID",
            "bucket is SELLABLE or QUARANTINE.",
            field_violations=[FieldViolation("bucket", "unknown value")],
        )
    return bucket


class InventoryServicer(inventory_service_pb2_grpc.InventoryServiceServicer):
    def __init__(
        self,
        db: Database,
        run: Runner,
        read: Runner,
        stock_rose: Callable[[], None] = lambda: None,
        divergence_threshold: float = 5.0,
    ) -> None:
        self._db = db
        self._divergence_threshold = divergence_threshold
        self._run = run  # transactions
        self._read = read  # read-only calls
        # Called after a correction that may have raised available stock: the re-check of
        # stock-held orders runs at once (api/background.py).
        self._stock_rose = stock_rose

    async def GetStockLevels(
        self, request: pb.GetStockLevelsRequest, context: Context
    ) -> pb.GetStockLevelsResponse:
        items = await self._read(
            stock.get_stock_levels, self._db, list(request.codes), list(request.location_codes)
        )
        response = pb.GetStockLevelsResponse()
        _add_products(response.items, items)
        return response

    async def WatchStockLevels(
        self, request: pb.WatchStockLevelsRequest, context: Context
    ) -> AsyncIterator[pb.WatchStockLevelsResponse]:
        watch = await self._read(
            stock_watch.plan, self._db, list(request.codes), list(request.location_codes)
        )
        cursor = request.after_change_id
        if cursor <= 0:
            items, cursor = await self._read(stock_watch.snapshot, self._db, watch)
            first = pb.WatchStockLevelsResponse()
            first.snapshot.change_id = cursor
            _add_products(first.snapshot.items, items)
            yield first
        in_order: InOrder[stock_log.StockChange] = InOrder(cursor)
        loop = asyncio.get_running_loop()
        while True:
            changes = await self._read(stock_watch.poll, self._db, in_order.cursor)
            for change in in_order.ready(changes, loop.time()):
                if change.sku not in watch.skus:
                    continue
                if watch.locations and change.location not in watch.locations:
                    continue
                bundles = await self._read(
                    stock_watch.bundles_containing, self._db, watch, change.sku
                )
                yield pb.WatchStockLevelsResponse(change=_change(change, bundles))
            await asyncio.sleep(stock_watch.POLL_SECONDS)

    async def AdjustStock(
        self, request: pb.AdjustStockRequest, context: Context
    ) -> pb.AdjustStockResponse:
        done = await self._run(
            stock_corrections.adjust_stock,
            self._db,
            current_principal(),
            request_id=request.request_id,
            code=request.code,
            location=request.location_code,
            delta=request.delta,
            reason_code=request.reason_code,
            note=request.note,
            bucket=_bucket(request.bucket),
        )
        self._stock_rose()
        return pb.AdjustStockResponse(
            level=_corrected(done),
            oversold_order_ids=done.oversold_order_ids,
            replayed=done.replayed,
        )

    async def RecordStockCount(
        self, request: pb.RecordStockCountRequest, context: Context
    ) -> pb.RecordStockCountResponse:
        done = await self._run(
            stock_corrections.record_stock_count,
            self._db,
            current_principal(),
            request_id=request.request_id,
            code=request.code,
            location=request.location_code,
            counted=request.counted,
            reason=request.reason,
            bucket=_bucket(request.bucket),
        )
        self._stock_rose()
        return pb.RecordStockCountResponse(
            level=_corrected(done),
            variance=done.variance,
            oversold_order_ids=done.oversold_order_ids,
            replayed=done.replayed,
        )

    async def ReconcileStock(
        self, request: pb.ReconcileStockRequest, context: Context
    ) -> pb.ReconcileStockResponse:
        done = await self._run(
            stock_reconciliation.reconcile_stock,
            self._db,
            current_principal(),
            request_id=request.request_id,
            source=request.source,
            entries=[
                stock_reconciliation.Entry(e.code, e.location_code, e.quantity)
                for e in request.entries
            ],
            threshold_percent=request.threshold_percent,
            default_threshold=self._divergence_threshold,
            dry_run=request.dry_run,
        )
        if not done.dry_run:
            self._stock_rose()
        return pb.ReconcileStockResponse(
            reconciliation_id=done.id,
            compared=done.compared,
            differences=[
                pb.StockDifference(
                    sku=d.sku,
                    location_code=d.location,
                    ours=d.ours,
                    theirs=d.theirs,
                    difference=d.theirs - d.ours,
                    percent=d.percent,
                    diverged=d.diverged,
                )
                for d in done.differences
            ],
            diverged=done.diverged,
            threshold_percent=done.threshold_percent,
            dry_run=done.dry_run,
            oversold_order_ids=done.oversold_order_ids,
            replayed=done.replayed,
        )

    async def ListLocations(
        self, request: pb.ListLocationsRequest, context: Context
    ) -> pb.ListLocationsResponse:
        page = await self._read(
            stock.list_locations,
            self._db,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListLocationsResponse(
            locations=[
                pb.Location(code=x.code, name=x.name, priority=x.priority) for x in page.locations
            ],
            next_page_token=page.next_page_token,
        )
