"""PricingService: proto in -> service call -> proto out."""

from __future__ import annotations

from datetime import UTC
from typing import Any, TypeAlias

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ordergate.v1 import catalog_service_pb2 as catalog_pb
from ordergate.v1 import pricing_service_pb2 as pb
from ordergate.v1 import pricing_service_pb2_grpc

from ..domain.pricing import PriceSource
from ..service import pricing
from ..storage import Database
from .calls import current_principal
from .runner import Runner

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

_SOURCES = {
    PriceSource.CONTRACT: pb.PRICE_SOURCE_CONTRACT,
    PriceSource.PRICE_LIST: pb.PRICE_SOURCE_PRICE_LIST,
    PriceSource.LIST_PRICE: pb.PRICE_SOURCE_LIST_PRICE,
}


def _stamp(value: Any) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


class PricingServicer(pricing_service_pb2_grpc.PricingServiceServicer):
    def __init__(self, db: Database, read: Runner) -> None:
        self._db = db
        self._read = read  # every call here only reads

    async def GetCustomerPrices(
        self, request: pb.GetCustomerPricesRequest, context: Context
    ) -> pb.GetCustomerPricesResponse:
        at = request.price_time.ToDatetime(tzinfo=UTC) if request.HasField("price_time") else None
        answer = await self._read(
            pricing.get_customer_prices,
            self._db,
            current_principal(),
            request.customer_account,
            [(item.code, item.quantity) for item in request.items],
            at,
        )
        return pb.GetCustomerPricesResponse(
            customer_account=answer.account,
            currency=answer.currency,
            items=[
                pb.CustomerPrice(
                    requested_code=item.requested_code,
                    sku=item.sku,
                    quantity=item.quantity,
                    found=bool(item.sku),
                    priced=item.price is not None,
                    unit_price=str(item.price.unit_price) if item.price else "",
                    currency=item.price.currency if item.price else "",
                    source=_SOURCES[item.price.source]
                    if item.price
                    else pb.PRICE_SOURCE_UNSPECIFIED,
                    rule=item.price.rule if item.price else "",
                )
                for item in answer.items
            ],
        )

    async def ListCreditNotes(
        self, request: pb.ListCreditNotesRequest, context: Context
    ) -> pb.ListCreditNotesResponse:
        page = await self._read(
            pricing.list_credit_notes,
            self._db,
            current_principal(),
            request.customer_account,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListCreditNotesResponse(
            credit_notes=[
                catalog_pb.CreditNote(
                    id=n.id,
                    customer_account=n.customer,
                    currency=n.currency,
                    amount=str(n.amount),
                    remaining=str(n.remaining),
                    issue_time=_stamp(n.issued_at),
                    expire_time=_stamp(n.expires_at),
                )
                for n in page.notes
            ],
            balances=[
                pb.CreditBalance(currency=currency, remaining=str(total))
                for currency, total in page.balances.items()
            ],
            next_page_token=page.next_page_token,
        )
