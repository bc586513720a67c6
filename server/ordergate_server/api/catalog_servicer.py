"""CatalogService: proto in -> validated specs -> service call -> counts out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from ordergate.v1 import catalog_service_pb2 as pb
from ordergate.v1 import catalog_service_pb2_grpc

from ..domain.access import Principal
from ..domain.catalog import (
    ContractPriceSpec,
    CreditNoteSpec,
    CustomerSpec,
    LocationSpec,
    PriceEntry,
    PriceListSpec,
    ProductSpec,
)
from ..service import catalog_sync
from ..service.errors import ErrorKind, FieldViolation, ServiceError
from ..storage import Database
from .calls import current_principal
from .runner import Runner

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
# "Valid since always", for a price whose valid_from is not set.
_BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


def _decimal(value: str, field: str) -> Decimal:
    try:
        result = Decimal(value)
    except InvalidOperation:
        result = Decimal("NaN")
    if not result.is_finite():
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "CATALOG_INVALID",
            f"{field}: {value!r} is not a decimal number.",
            field_violations=[FieldViolation(field, "a decimal number such as 12.50")],
        )
    return result


def _time(message: Message, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    stamp: Timestamp = getattr(message, name)
    return stamp.ToDatetime(tzinfo=UTC)


def _counts(counts: catalog_sync.SyncCounts) -> pb.SyncCounts:
    return pb.SyncCounts(created=counts.created, updated=counts.updated, unchanged=counts.unchanged)


def _product(p: pb.Product, i: int) -> ProductSpec:
    return ProductSpec(
        sku=p.sku,
        name=p.name,
        barcodes=tuple(p.barcodes),
        aliases=tuple(p.aliases),
        requires_special_handling=p.requires_special_handling,
        components=tuple((c.sku, c.quantity) for c in p.components),
        list_price=_decimal(p.list_price, f"products[{i}].list_price") if p.list_price else None,
        list_currency=p.list_currency,
    )


def _rename_in_transaction(
    db: Database, principal: Principal, old: str, new: str, end: datetime
) -> bool:
    with db.transaction() as tx:
        return catalog_sync.rename_sku(tx, principal, old, new, end)


class CatalogServicer(catalog_service_pb2_grpc.CatalogServiceServicer):
    def __init__(self, db: Database, run: Runner) -> None:
        self._db = db
        self._run = run

    async def UpsertLocations(
        self, request: pb.UpsertLocationsRequest, context: Context
    ) -> pb.UpsertLocationsResponse:
        specs = [LocationSpec(x.code, x.name, x.priority) for x in request.locations]
        counts = await self._run(
            catalog_sync.in_transaction,
            self._db,
            catalog_sync.upsert_locations,
            current_principal(),
            specs,
        )
        return pb.UpsertLocationsResponse(counts=_counts(counts))

    async def UpsertProducts(
        self, requests: AsyncIterator[pb.UpsertProductsRequest], context: Context
    ) -> pb.UpsertProductsResponse:
        principal = current_principal()
        specs: list[ProductSpec] = []
        async for batch in requests:
            specs.extend(_product(p, len(specs) + i) for i, p in enumerate(batch.products))
        counts = await self._run(
            catalog_sync.in_transaction, self._db, catalog_sync.upsert_products, principal, specs
        )
        return pb.UpsertProductsResponse(counts=_counts(counts))

    async def RenameSku(
        self, request: pb.RenameSkuRequest, context: Context
    ) -> pb.RenameSkuResponse:
        changed = await self._run(
            _rename_in_transaction,
            self._db,
            current_principal(),
            request.old_sku,
            request.new_sku,
            _time(request, "transition_end") or datetime.now(UTC),
        )
        return pb.RenameSkuResponse(changed=changed)

    async def UpsertCustomers(
        self, request: pb.UpsertCustomersRequest, context: Context
    ) -> pb.UpsertCustomersResponse:
        specs = [
            CustomerSpec(
                c.account, c.name, c.currency, c.requires_special_handling, c.client, c.price_list
            )
            for c in request.customers
        ]
        counts = await self._run(
            catalog_sync.in_transaction,
            self._db,
            catalog_sync.upsert_customers,
            current_principal(),
            specs,
        )
        return pb.UpsertCustomersResponse(counts=_counts(counts))

    async def UpsertPriceLists(
        self, request: pb.UpsertPriceListsRequest, context: Context
    ) -> pb.UpsertPriceListsResponse:
        specs = [
            PriceListSpec(
                code=p.code,
                name=p.name,
                currency=p.currency,
                entries=tuple(
                    PriceEntry(
                        sku=e.sku,
                        min_quantity=e.min_quantity,
                        unit_price=_decimal(
                            e.unit_price, f"price_lists[{i}].entries[{j}].unit_price"
                        ),
                        valid_from=_time(e, "valid_from") or _BEGINNING,
                        valid_to=_time(e, "valid_to"),
                    )
                    for j, e in enumerate(p.entries)
                ),
            )
            for i, p in enumerate(request.price_lists)
        ]
        counts = await self._run(
            catalog_sync.in_transaction,
            self._db,
            catalog_sync.upsert_price_lists,
            current_principal(),
            specs,
        )
        return pb.UpsertPriceListsResponse(counts=_counts(counts))

    async def UpsertContractPrices(
        self, request: pb.UpsertContractPricesRequest, context: Context
    ) -> pb.UpsertContractPricesResponse:
        specs = [
            ContractPriceSpec(
                customer=c.customer_account,
                sku=c.sku,
                unit_price=_decimal(c.unit_price, f"contract_prices[{i}].unit_price"),
                valid_from=_time(c, "valid_from") or _BEGINNING,
                valid_to=_time(c, "valid_to"),
            )
            for i, c in enumerate(request.contract_prices)
        ]
        counts = await self._run(
            catalog_sync.in_transaction,
            self._db,
            catalog_sync.upsert_contract_prices,
            current_principal(),
            specs,
        )
        return pb.UpsertContractPricesResponse(counts=_counts(counts))

    async def UpsertCreditNotes(
        self, request: pb.UpsertCreditNotesRequest, context: Context
    ) -> pb.UpsertCreditNotesResponse:
        specs = [
            CreditNoteSpec(
                id=n.id,
                customer=n.customer_account,
                currency=n.currency,
                amount=_decimal(n.amount, f"credit_notes[{i}].amount"),
                remaining=_decimal(n.remaining, f"credit_notes[{i}].remaining"),
                issued_at=_time(n, "issue_time") or datetime.now(UTC),
                expires_at=_time(n, "expire_time"),
            )
            for i, n in enumerate(request.credit_notes)
        ]
        counts = await self._run(
            catalog_sync.in_transaction,
            self._db,
            catalog_sync.upsert_credit_notes,
            current_principal(),
            specs,
        )
        return pb.UpsertCreditNotesResponse(counts=_counts(counts))
