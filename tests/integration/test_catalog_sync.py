"""CatalogService: idempotent, validated, audited bulk upserts, on SQLite and PostgreSQL."""

from __future__ import annotations

import grpc
import pytest

from ordergate.v1 import catalog_service_pb2 as cpb
from ordergate.v1 import inventory_service_pb2 as ipb
from ordergate.v1.inventory_service_pb2_grpc import InventoryServiceStub
from ordergate_server.storage import Database, audit

from ..support import Api, Keys, auth, order_xml, rich_error
from .catalog_api import Catalog, counts
from .stock import count


@pytest.fixture
def catalog(api: Api, keys: Keys) -> Catalog:
    return Catalog(api, keys.admin)


def kit() -> cpb.Product:
    return cpb.Product(
        sku="KIT-T1",
        name="Barista kit",
        barcodes=["4006381398888"],
        aliases=["BARISTA-T"],
        components=[
            cpb.BundleComponent(sku="SKU-1001", quantity=1),
            cpb.BundleComponent(sku="SKU-1002", quantity=2),
        ],
        list_price="79.00",
        list_currency="EUR",
    )


def test_upserts_are_idempotent_and_audit_only_real_changes(catalog: Catalog, db: Database) -> None:
    assert counts(catalog.products(kit())) == (1, 0, 0)
    assert counts(catalog.products(kit())) == (0, 0, 1)  # the same again: nothing changes
    changed = kit()
    changed.name = "Barista kit (2026)"
    assert counts(catalog.products(changed)) == (0, 1, 0)

    with db.reader() as conn:
        entries = audit.entries_for(conn, "product/KIT-T1")
    assert [(e.action, e.actor, e.role) for e in entries] == [
        ("product.create", "ops-admin", "admin"),
        ("product.update", "ops-admin", "admin"),
    ]
    assert entries[0].before is None
    assert entries[1].before["name"] == "Barista kit"
    assert entries[1].after["name"] == "Barista kit (2026)"
    assert entries[1].after["components"] == [["SKU-1001", 1], ["SKU-1002", 2]]


def test_new_codes_resolve_in_stock_queries(api: Api, catalog: Catalog) -> None:
    catalog.products(kit())
    stub = InventoryServiceStub(api.channel)
    items = stub.GetStockLevels(
        ipb.GetStockLevelsRequest(codes=["BARISTA-T", "4006381398888"]), metadata=auth(api.key)
    ).items
    assert [(i.sku, i.found) for i in items] == [("KIT-T1", True), ("KIT-T1", True)]


def test_ten_thousand_products_in_one_call(api: Api, catalog: Catalog, db: Database) -> None:
    products = [
        cpb.Product(sku=f"BULK-{n:05d}", name=f"Bulk product {n}", barcodes=[f"2{n:012d}"])
        for n in range(10_000)
    ]
    audited_before = count(db, "audit_entries")
    assert counts(catalog.products(*products)) == (10_000, 0, 0)
    assert count(db, "products") >= 10_000
    assert count(db, "audit_entries") == audited_before + 10_000
    again = catalog.products(*products)
    assert counts(again) == (0, 0, 10_000)
    assert count(db, "audit_entries") == audited_before + 10_000


@pytest.mark.parametrize(
    ("product", "field"),
    [
        (cpb.Product(sku="", name="x"), "products[1].sku"),
        (cpb.Product(sku="X-1", name=""), "products[1].name"),
        (
            cpb.Product(sku="X-1", name="x", list_price="1", list_currency="euro"),
            "products[1].list_currency",
        ),
        (
            cpb.Product(
                sku="X-1", name="x", components=[cpb.BundleComponent(sku="NOPE", quantity=1)]
            ),
            "products.components",
        ),
        (
            cpb.Product(
                sku="X-1", name="x", components=[cpb.BundleComponent(sku="SKU-1001", quantity=0)]
            ),
            "products[1].components[0].quantity",
        ),
        (
            cpb.Product(sku="X-1", name="x", barcodes=["4006381333931"]),
            "products.codes",
        ),  # SKU-1001's
        (cpb.Product(sku="X-1", name="x", aliases=["SKU-1002"]), "products.codes"),
    ],
)
def test_invalid_products_change_nothing_and_name_the_field(
    catalog: Catalog, db: Database, product: cpb.Product, field: str
) -> None:
    before = count(db, "products")
    with pytest.raises(grpc.RpcError) as caught:
        catalog.products(cpb.Product(sku="OK-1", name="fine"), product)
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "CATALOG_INVALID"
    assert field in [f for f, _ in error.field_violations]
    assert count(db, "products") == before  # OK-1 was not stored either


def test_customers_price_lists_contract_prices_and_credit_notes(
    catalog: Catalog, db: Database
) -> None:
    assert counts(
        catalog.price_lists(
            cpb.PriceList(
                code="EU-TEST",
                name="EU wholesale",
                currency="EUR",
                entries=[
                    cpb.PriceListEntry(sku="SKU-1001", min_quantity=1, unit_price="25.00"),
                    cpb.PriceListEntry(sku="SKU-1001", min_quantity=10, unit_price="22.50"),
                ],
            )
        )
    ) == (1, 0, 0)
    assert counts(
        catalog.customers(
            cpb.Customer(
                account="C-9",
                name="Neu GmbH",
                currency="EUR",
                client="shop-a",
                price_list="EU-TEST",
            )
        )
    ) == (1, 0, 0)
    assert counts(
        catalog.contract_prices(
            cpb.ContractPrice(customer_account="C-9", sku="SKU-1002", unit_price="9.99")
        )
    ) == (1, 0, 0)
    assert counts(
        catalog.credit_notes(
            cpb.CreditNote(
                id="CN-T1",
                customer_account="C-9",
                currency="EUR",
                amount="50.00",
                remaining="20.00",
            )
        )
    ) == (1, 0, 0)
    assert counts(
        catalog.contract_prices(
            cpb.ContractPrice(customer_account="C-9", sku="SKU-1002", unit_price="9.99")
        )
    ) == (0, 0, 1)
    with db.reader() as conn:
        assert [e.action for e in audit.entries_for(conn, "customer/C-9")] == ["customer.create"]
        assert audit.entries_for(conn, "contract_prices/C-9")[0].after == {
            "prices": [["SKU-1002", "9.99", "1970-01-01T00:00:00+00:00", None]]
        }


@pytest.mark.parametrize(
    ("customer", "field"),
    [
        (
            cpb.Customer(account="C-8", name="x", currency="EUR", client="nobody"),
            "customers[0].client",
        ),
        (
            cpb.Customer(account="C-8", name="x", currency="EUR", price_list="NOPE"),
            "customers[0].price_list",
        ),
        (cpb.Customer(account="C-8", name="x", currency="eur"), "customers[0].currency"),
    ],
)
def test_invalid_customers_are_refused(
    catalog: Catalog, customer: cpb.Customer, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        catalog.customers(customer)
    assert field in [f for f, _ in rich_error(caught.value).field_violations]


def test_bad_decimals_and_balances_are_refused(catalog: Catalog) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        catalog.credit_notes(
            cpb.CreditNote(
                id="CN-2", customer_account="C-1001", currency="EUR", amount="10", remaining="11"
            )
        )
    assert rich_error(caught.value).field_violations[0][0] == "credit_notes[0].remaining"
    with pytest.raises(grpc.RpcError) as caught:
        catalog.contract_prices(
            cpb.ContractPrice(customer_account="C-1001", sku="SKU-1001", unit_price="cheap")
        )
    assert rich_error(caught.value).field_violations[0][0] == "contract_prices[0].unit_price"


def _rename(catalog: Catalog, old: str, new: str, end: str | None) -> bool:
    request = cpb.RenameSkuRequest(old_sku=old, new_sku=new)
    if end:
        request.transition_end.FromJsonString(end)
    return catalog.stub.RenameSku(request, metadata=catalog.md).changed


def test_a_renamed_sku_shares_one_stock_during_the_window(api: Api, catalog: Catalog) -> None:
    catalog.products(cpb.Product(sku="CUPS-6", name="Espresso cups, set of 6 (new code)"))
    assert _rename(catalog, "SKU-1001", "CUPS-6", "2999-01-01T00:00:00Z")
    assert not _rename(catalog, "SKU-1001", "CUPS-6", "2999-01-01T00:00:00Z")  # nothing new

    stub = InventoryServiceStub(api.channel)
    old, new, barcode, kit = stub.GetStockLevels(
        ipb.GetStockLevelsRequest(codes=["SKU-1001", "CUPS-6", "4006381333931", "KIT-1"]),
        metadata=auth(api.key),
    ).items
    assert (old.sku, new.sku, barcode.sku) == ("CUPS-6", "CUPS-6", "CUPS-6")
    assert old.total.on_hand == new.total.on_hand == 512  # the old product's stock moved over
    assert kit.total.available == 150  # the bundle now counts the new code

    order = api.submit(order_xml("RN-1", [("SKU-1001", 2)])).order
    assert (order.state, order.lines[0].sku) == (2, "CUPS-6")  # ACCEPTED, canonical SKU


def test_after_the_window_the_old_code_is_held_naming_the_new_one(
    api: Api, catalog: Catalog
) -> None:
    catalog.products(cpb.Product(sku="JUG-05", name="Milk jug 0.5 l (new code)"))
    assert _rename(catalog, "SKU-1002", "JUG-05", None)  # no window: refused at once
    order = api.submit(order_xml("RN-2", [("SKU-1002", 1)])).order
    [reason] = order.hold_reasons
    assert (reason.code, reason.field) == ("SKU_RENAMED", "lines[0].sku")
    assert "'JUG-05'" in reason.message
    stub = InventoryServiceStub(api.channel)
    [old] = stub.GetStockLevels(
        ipb.GetStockLevelsRequest(codes=["SKU-1002"]), metadata=auth(api.key)
    ).items
    assert not old.found
    assert api.submit(order_xml("RN-3", [("JUG-05", 1)])).order.state == 2


def test_renames_are_validated(catalog: Catalog) -> None:
    for old, new, field in (
        ("SKU-1001", "NOT-THERE", "new_sku"),
        ("NOT-THERE", "SKU-1002", "old_sku"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            _rename(catalog, old, new, None)
        assert field in [f for f, _ in rich_error(caught.value).field_violations]
