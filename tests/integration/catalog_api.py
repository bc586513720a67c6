"""Calling CatalogService from the tests (admin key)."""

from __future__ import annotations

from collections.abc import Iterator

from ordergate.v1 import catalog_service_pb2 as cpb
from ordergate.v1.catalog_service_pb2_grpc import CatalogServiceStub

from ..support import Api, auth


class Catalog:
    def __init__(self, api: Api, key: str) -> None:
        self.stub = CatalogServiceStub(api.channel)
        self.md = auth(key)

    def products(self, *products: cpb.Product, batch: int = 1000) -> cpb.SyncCounts:
        def batches() -> Iterator[cpb.UpsertProductsRequest]:
            for start in range(0, len(products), batch):
                yield cpb.UpsertProductsRequest(products=products[start : start + batch])

        return self.stub.UpsertProducts(batches(), metadata=self.md, timeout=120).counts

    def customers(self, *customers: cpb.Customer) -> cpb.SyncCounts:
        return self.stub.UpsertCustomers(
            cpb.UpsertCustomersRequest(customers=customers), metadata=self.md
        ).counts

    def price_lists(self, *lists: cpb.PriceList) -> cpb.SyncCounts:
        return self.stub.UpsertPriceLists(
            cpb.UpsertPriceListsRequest(price_lists=lists), metadata=self.md
        ).counts

    def contract_prices(self, *prices: cpb.ContractPrice) -> cpb.SyncCounts:
        return self.stub.UpsertContractPrices(
            cpb.UpsertContractPricesRequest(contract_prices=prices), metadata=self.md
        ).counts

    def credit_notes(self, *notes: cpb.CreditNote) -> cpb.SyncCounts:
        return self.stub.UpsertCreditNotes(
            cpb.UpsertCreditNotesRequest(credit_notes=notes), metadata=self.md
        ).counts


def counts(value: cpb.SyncCounts) -> tuple[int, int, int]:
    return (value.created, value.updated, value.unchanged)
