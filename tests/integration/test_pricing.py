"""PricingService over a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from ordergate.v1 import catalog_service_pb2 as cpb
from ordergate.v1 import pricing_service_pb2 as pb
from ordergate.v1.pricing_service_pb2_grpc import PricingServiceStub

from ..support import Api, Keys, auth, rich_error
from .catalog_api import Catalog


def stamp(text: str) -> Timestamp:
    value = Timestamp()
    value.FromJsonString(text)
    return value


@pytest.fixture
def priced(api: Api, keys: Keys) -> PricingServiceStub:
    catalog = Catalog(api, keys.admin)
    catalog.products(
        cpb.Product(
            sku="SKU-1001",
            name="Espresso cups, set of 6",
            barcodes=["4006381333931"],
            aliases=["CUP-SET-6"],
            list_price="39.90",
            list_currency="EUR",
        ),
        cpb.Product(
            sku="SKU-1002",
            name="Milk jug 0.5 l",
            barcodes=["4006381333948"],
            list_price="14.90",
            list_currency="EUR",
        ),
    )
    catalog.products(cpb.Product(sku="NOPRICE-1", name="Not priced anywhere"))
    catalog.price_lists(
        cpb.PriceList(
            code="EU-TEST",
            name="EU wholesale",
            currency="EUR",
            entries=[
                cpb.PriceListEntry(sku="SKU-1001", min_quantity=1, unit_price="30.00"),
                cpb.PriceListEntry(sku="SKU-1001", min_quantity=12, unit_price="27.50"),
            ],
        )
    )
    catalog.customers(
        cpb.Customer(
            account="C-1001",
            name="Café Lindner GmbH",
            currency="EUR",
            client="shop-a",
            price_list="EU-TEST",
        ),
        cpb.Customer(account="C-2002", name="Brew & Co Ltd", currency="GBP", client="shop-b"),
    )
    catalog.contract_prices(
        cpb.ContractPrice(
            customer_account="C-1001",
            sku="SKU-1002",
            unit_price="11.00",
            valid_from=stamp("2026-01-01T00:00:00Z"),
            valid_to=stamp("2027-01-01T00:00:00Z"),
        )
    )
    catalog.credit_notes(
        cpb.CreditNote(
            id="CN-T1", customer_account="C-1001", currency="EUR", amount="50.00", remaining="20.00"
        ),
        cpb.CreditNote(
            id="CN-T2", customer_account="C-1001", currency="EUR", amount="10.00", remaining="5.50"
        ),
        cpb.CreditNote(
            id="CN-T3", customer_account="C-1001", currency="EUR", amount="10.00", remaining="0"
        ),
        cpb.CreditNote(
            id="CN-T4",
            customer_account="C-1001",
            currency="EUR",
            amount="99.00",
            remaining="99.00",
            expire_time=stamp("2020-01-01T00:00:00Z"),
        ),
    )
    return PricingServiceStub(api.channel)


def prices(
    stub: PricingServiceStub,
    key: str,
    account: str,
    *items: tuple[str, int],
    at: str = "2026-11-23T12:00:00Z",
) -> pb.GetCustomerPricesResponse:
    return stub.GetCustomerPrices(
        pb.GetCustomerPricesRequest(
            customer_account=account,
            items=[pb.PriceQuery(code=code, quantity=quantity) for code, quantity in items],
            price_time=stamp(at),
        ),
        metadata=auth(key),
    )


def test_each_item_gets_its_price_and_the_rule(priced: PricingServiceStub, keys: Keys) -> None:
    reply = prices(
        priced,
        keys.shop,
        "C-1001",
        ("SKU-1001", 1),
        ("CUP-SET-6", 12),
        ("4006381333948", 2),
        ("NOPE", 1),
        ("NOPRICE-1", 1),
    )
    assert reply.currency == "EUR"
    got = [
        (i.requested_code, i.sku, i.found, i.priced, i.unit_price, i.source, i.rule)
        for i in reply.items
    ]
    assert got == [
        (
            "SKU-1001",
            "SKU-1001",
            True,
            True,
            "30.00",
            pb.PRICE_SOURCE_PRICE_LIST,
            "price list EU-TEST, from 1 pieces",
        ),
        (
            "CUP-SET-6",
            "SKU-1001",
            True,
            True,
            "27.50",
            pb.PRICE_SOURCE_PRICE_LIST,
            "price list EU-TEST, from 12 pieces",
        ),
        (
            "4006381333948",
            "SKU-1002",
            True,
            True,
            "11.00",
            pb.PRICE_SOURCE_CONTRACT,
            "contract price",
        ),
        ("NOPE", "", False, False, "", pb.PRICE_SOURCE_UNSPECIFIED, ""),
        (
            "NOPRICE-1",
            "NOPRICE-1",
            True,
            False,
            "",
            pb.PRICE_SOURCE_UNSPECIFIED,
            "",
        ),  # no price at all
    ]


def test_validity_dates_are_honoured(priced: PricingServiceStub, keys: Keys) -> None:
    [after] = prices(priced, keys.shop, "C-1001", ("SKU-1002", 1), at="2027-02-01T00:00:00Z").items
    assert (after.unit_price, after.source) == ("14.90", pb.PRICE_SOURCE_LIST_PRICE)


def test_a_website_asks_only_about_its_own_customers(
    priced: PricingServiceStub, keys: Keys
) -> None:
    for account in ("C-2002", "C-NOBODY"):
        with pytest.raises(grpc.RpcError) as caught:
            prices(priced, keys.shop, account, ("SKU-1001", 1))
        error = rich_error(caught.value)
        assert (error.code, error.reason) == (grpc.StatusCode.NOT_FOUND, "CUSTOMER_NOT_FOUND")
    assert prices(priced, keys.admin, "C-2002", ("SKU-1001", 1)).currency == "GBP"


def test_quantities_must_be_positive(priced: PricingServiceStub, keys: Keys) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        prices(priced, keys.shop, "C-1001", ("SKU-1001", 0))
    assert rich_error(caught.value).field_violations[0][0] == "items[0].quantity"


def test_open_credit_notes_and_balance(priced: PricingServiceStub, keys: Keys) -> None:
    first = priced.ListCreditNotes(
        pb.ListCreditNotesRequest(customer_account="C-1001", page_size=2), metadata=auth(keys.shop)
    )
    assert [n.id for n in first.credit_notes] == ["CN-2026-001", "CN-T1"]  # the demo has one
    assert [(b.currency, b.remaining) for b in first.balances] == [("EUR", "45.50")]
    second = priced.ListCreditNotes(
        pb.ListCreditNotesRequest(
            customer_account="C-1001", page_size=2, page_token=first.next_page_token
        ),
        metadata=auth(keys.shop),
    )
    assert [(n.id, n.remaining) for n in second.credit_notes] == [
        ("CN-T2", "5.50")
    ]  # used-up and expired left out
    assert not second.next_page_token
    with pytest.raises(grpc.RpcError) as caught:
        priced.ListCreditNotes(
            pb.ListCreditNotesRequest(customer_account="C-2002"), metadata=auth(keys.shop)
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
