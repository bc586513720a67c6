"""InventoryService: proto in -> service call -> proto out."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from ordergate.v1 import inventory_service_pb2 as pb
from ordergate.v1 import inventory_service_pb2_grpc

from ..service import stock
from ..storage import Database
from .runner import Runner

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def _level(level: stock.Level) -> pb.StockLevel:
    return pb.StockLevel(
        location_code=level.location,
        on_hand=level.on_hand,
        allocated=level.allocated,
        available=level.available,
    )


class InventoryServicer(inventory_service_pb2_grpc.InventoryServiceServicer):
    def __init__(self, db: Database, run: Runner) -> None:
        self._db = db
        self._run = run

    async def GetStockLevels(
        self, request: pb.GetStockLevelsRequest, context: Context
    ) -> pb.GetStockLevelsResponse:
        items = await self._run(
            stock.get_stock_levels, self._db, list(request.codes), list(request.location_codes)
        )
        return pb.GetStockLevelsResponse(
            items=[
                pb.ProductStock(
                    requested_code=item.requested_code,
                    sku=item.sku,
                    found=item.found,
                    locations=[_level(level) for level in item.levels],
                    total=_level(item.total),
                    bundle=item.bundle,
                )
                for item in items
            ]
        )

    async def ListLocations(
        self, request: pb.ListLocationsRequest, context: Context
    ) -> pb.ListLocationsResponse:
        page = await self._run(
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
