"""UBL 2.1 / PEPPOL BIS Order 3 documents through the real server, on SQLite and PostgreSQL:
the two official examples, documents derived from them, the PEPPOL rules as hold reasons and the
UBL OrderResponse."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import grpc
import pytest
from lxml import etree

from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate_server.filedrop import DropSettings, FilePoller
from ordergate_server.formats.schemas import UBL_DIR, UBL_ORDER_RESPONSE_XSD, compiled
from ordergate_server.storage import Database

from ..support import EXAMPLES, Api, Keys, auth, rich_error

PEPPOL = (EXAMPLES / "ubl" / "PEPPOL-BIS3-Order_Example.xml").read_text()
OASIS = (EXAMPLES / "ubl" / "UBL-Order-2.1-Example.xml").read_text()
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"


def derive(document: str, *changes: tuple[str, str]) -> str:
    """`document` with each (old, new) applied once; fails if `old` is not there."""
    for old, new in changes:
        assert old in document, old
        document = document.replace(old, new, 1)
    return document


@pytest.fixture
def ubl_api(api: Api, ubl_catalog: None) -> Api:
    return api


def _codes(order: order_pb2.Order) -> list[tuple[str, str, str]]:
    return [(r.code, r.field, r.rule) for r in order.hold_reasons]


def test_the_peppol_example_is_accepted_and_mapped(ubl_api: Api) -> None:
    order = ubl_api.submit(PEPPOL).order

    assert order.state == order_pb2.ORDER_STATE_ACCEPTED, _codes(order)
    assert order.client_order_id == "34"
    assert order.customer_account == "7300010000001"
    assert order.currency == "NOK"
    assert order.channel == "peppol"
    assert [(line.sku, line.quantity) for line in order.lines] == [
        ("121212", 120),
        ("SItemNo011", 15),
    ]
    address = order.delivery.address
    assert (address.name, address.city, address.postal_code, address.country_code) == (
        "Helseavdeling",
        "Lørenskog",
        "1473",
        "NO",
    )
    assert list(address.street_lines) == ["Solheimsveien 10", "Add", "3rd Address line"]
    assert order.delivery.phone == "987098709"
    assert order.delivery.email == "ole@helseforetak.no"
    assert "CAD" in order.delivery.special_handling  # DeliveryTerms/SpecialTerms
    assert "Freetext note on line 1" in order.delivery.special_handling


def test_the_oasis_example_is_held_for_its_litre_line(ubl_api: Api) -> None:
    order = ubl_api.submit(OASIS).order

    assert order.state == order_pb2.ORDER_STATE_ON_HOLD
    assert _codes(order) == [("UNIT_UNSUPPORTED", "lines[0].quantity", "")]
    assert "'LTR'" in order.hold_reasons[0].message
    assert order.channel == "ubl"


def test_a_line_without_a_seller_sku_is_found_by_its_gtin(ubl_api: Api) -> None:
    by_gtin = derive(
        PEPPOL,
        (
            "<cac:SellersItemIdentification>\n\t\t\t\t\t<cbc:ID>121212</cbc:ID>\n"
            "\t\t\t\t</cac:SellersItemIdentification>",
            "",
        ),
    )
    order = ubl_api.submit(by_gtin).order

    assert order.state == order_pb2.ORDER_STATE_ACCEPTED, _codes(order)
    assert order.lines[0].submitted_code == "7560000012345"
    assert order.lines[0].sku == "121212"


def test_a_line_with_no_item_identifier_is_held(ubl_api: Api) -> None:
    no_ids = derive(
        PEPPOL,
        (
            "<cac:SellersItemIdentification>\n\t\t\t\t\t<cbc:ID>SItemNo011</cbc:ID>\n"
            "\t\t\t\t</cac:SellersItemIdentification>",
            "",
        ),
    )
    order = ubl_api.submit(no_ids).order

    assert order.state == order_pb2.ORDER_STATE_ON_HOLD
    assert ("SKU_MISSING", "lines[1].sku", "") in _codes(order)


def test_an_order_without_a_delivery_address_is_held(ubl_api: Api) -> None:
    start, end = PEPPOL.index("<cac:Delivery>"), PEPPOL.index("</cac:Delivery>") + 15
    no_delivery = PEPPOL[:start] + PEPPOL[end:]
    order = ubl_api.submit(no_delivery).order

    assert order.state == order_pb2.ORDER_STATE_ON_HOLD
    assert {code for code, _, _ in _codes(order)} == {"ADDRESS_INCOMPLETE"}
    # The buyer's contact stands in for the delivery contact.
    assert order.delivery.phone == "23055000"


def _line_level_delivery(cities: tuple[str, str]) -> str:
    """The PEPPOL example with no header delivery and each line's own delivery address."""
    start, end = PEPPOL.index("<cac:Delivery>"), PEPPOL.index("</cac:Delivery>") + 15
    document = PEPPOL[:start] + PEPPOL[end:]
    for city in cities:
        document = derive(
            document,
            (
                "<cac:Delivery>\n\t\t\t\t<cac:RequestedDeliveryPeriod>",
                "<cac:Delivery><cac:DeliveryLocation><cac:Address>"
                "<cbc:StreetName>Solheimsveien 10</cbc:StreetName>"
                f"<cbc:CityName>{city}</cbc:CityName><cbc:PostalZone>1473</cbc:PostalZone>"
                "<cac:Country><cbc:IdentificationCode>NO</cbc:IdentificationCode></cac:Country>"
                "</cac:Address></cac:DeliveryLocation><cac:RequestedDeliveryPeriod>",
            ),
        )
    return document


def test_a_delivery_address_at_line_level_is_used(ubl_api: Api) -> None:
    order = ubl_api.submit(_line_level_delivery(("Lørenskog", "Lørenskog"))).order

    assert order.state == order_pb2.ORDER_STATE_ACCEPTED, _codes(order)
    assert order.delivery.address.city == "Lørenskog"
    assert order.delivery.address.name == "Helseforetak"  # the buyer, with no delivery party


def test_lines_with_different_delivery_addresses_are_held(ubl_api: Api) -> None:
    order = ubl_api.submit(_line_level_delivery(("Lørenskog", "Oslo"))).order

    assert order.state == order_pb2.ORDER_STATE_ON_HOLD
    assert _codes(order) == [("DELIVERY_SPLIT", "delivery.address", "")]


def test_the_same_order_id_from_the_same_buyer_with_other_content_is_refused(
    ubl_api: Api,
) -> None:
    assert ubl_api.submit(PEPPOL).order.state == order_pb2.ORDER_STATE_ACCEPTED
    changed = derive(
        PEPPOL,
        (
            '<cbc:Quantity unitCode="EA">15</cbc:Quantity>',
            '<cbc:Quantity unitCode="EA">16</cbc:Quantity>',
        ),
    )

    with pytest.raises(grpc.RpcError) as refused:
        ubl_api.submit(changed)

    error = rich_error(refused.value)
    assert error.code == grpc.StatusCode.ALREADY_EXISTS
    assert error.reason == "DUPLICATE_ORDER_ID"
    assert error.metadata["order_id"] == "34"
    # The identical document again is a replay of the accepted order, not a second one.
    again = ubl_api.submit(PEPPOL)
    assert again.replayed


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ('<cbc:Quantity unitCode="C62">15.0</cbc:Quantity>', []),
        ('<cbc:Quantity unitCode="H87">15</cbc:Quantity>', []),
        ("<cbc:Quantity>15</cbc:Quantity>", []),
        (
            '<cbc:Quantity unitCode="EA">1.5</cbc:Quantity>',
            [("QUANTITY_INVALID", "lines[1].quantity", "")],
        ),
        (
            '<cbc:Quantity unitCode="KGM">15</cbc:Quantity>',
            [("UNIT_UNSUPPORTED", "lines[1].quantity", "")],
        ),
        (
            '<cbc:Quantity unitCode="BX">15</cbc:Quantity>',
            [("UNIT_UNSUPPORTED", "lines[1].quantity", "")],
        ),
    ],
    ids=["whole-decimal", "piece", "no-unit", "fraction", "kilogram", "box"],
)
def test_quantities_are_whole_pieces(
    ubl_api: Api, quantity: str, expected: list[tuple[str, str, str]]
) -> None:
    document = derive(PEPPOL, ('<cbc:Quantity unitCode="EA">15</cbc:Quantity>', quantity))
    order = ubl_api.submit(document).order
    assert _codes(order) == expected
    if not expected:
        assert order.lines[1].quantity == 15


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            [("<cbc:ID>2</cbc:ID>", "<cbc:ID>1</cbc:ID>")],
            [
                ("LINE_NUMBER_DUPLICATE", "lines[0].line_number", "PEPPOL-T01-R001"),
                ("LINE_NUMBER_DUPLICATE", "lines[1].line_number", "PEPPOL-T01-R001"),
            ],
        ),
        (
            [(">15</cbc:Quantity>", ">-15</cbc:Quantity>")],
            [("QUANTITY_INVALID", "lines[1].quantity", "PEPPOL-T01-R004")],
        ),
        (
            [
                (
                    '<cbc:LineExtensionAmount currencyID="NOK">225.00',
                    '<cbc:LineExtensionAmount currencyID="EUR">225.00',
                )
            ],
            [("CURRENCY_INCONSISTENT", "currency", "PEPPOL-T01-R003")],
        ),
        (
            [('currencyID="NOK">225.00<', 'currencyID="NOK">226.00<')],
            [("TOTAL_MISMATCH", "total", "PEPPOL-T01-R008")],
        ),
    ],
    ids=["duplicate-line-id", "negative-quantity", "second-currency", "total-mismatch"],
)
def test_peppol_rules_hold_the_order_with_their_rule_ids(
    ubl_api: Api, changes: list[tuple[str, str]], expected: list[tuple[str, str, str]]
) -> None:
    order = ubl_api.submit(derive(PEPPOL, *changes)).order
    assert order.state == order_pb2.ORDER_STATE_ON_HOLD
    assert _codes(order) == expected


def test_a_schema_invalid_ubl_order_keeps_its_id_and_says_where(ubl_api: Api) -> None:
    order = ubl_api.submit(derive(PEPPOL, ("<cbc:IssueDate>2018-09-01</cbc:IssueDate>", ""))).order

    assert order.state == order_pb2.ORDER_STATE_ON_HOLD
    assert order.client_order_id == "34"
    assert [r.code for r in order.hold_reasons] == ["SCHEMA_INVALID"]
    assert "IssueDate" in order.hold_reasons[0].message


# --- the UBL OrderResponse ---


def _response_of(api: Api, document: str, request_id: str) -> etree._Element:
    reply = api.orders.SubmitOrder(
        pb.SubmitOrderRequest(
            request_id=request_id, order_xml=document.encode(), ubl_order_response=True
        ),
        metadata=auth(api.key),
        timeout=30,
    )
    response = etree.fromstring(reply.ubl_order_response)
    schema = compiled(UBL_ORDER_RESPONSE_XSD)
    assert schema.validate(response), schema.error_log
    return response


def _cbc(response: etree._Element, name: str) -> list[str]:
    return [e.text or "" for e in response.iterfind(f"{{{CBC}}}{name}")]


def test_order_responses_answer_accepted_pending_and_rejected(ubl_api: Api, keys: Keys) -> None:
    accepted_id = str(uuid.uuid4())
    accepted = _response_of(ubl_api, PEPPOL, accepted_id)
    assert _cbc(accepted, "OrderResponseCode") == ["AP"]
    reference = accepted.find(
        "{urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2}OrderReference"
    )
    assert reference is not None
    assert reference.findtext(f"{{{CBC}}}ID") == "34"

    # Both examples are order 34; as another order of the same buyer it needs its own id.
    other_order = derive(OASIS, ("<cbc:ID>34</cbc:ID>", "<cbc:ID>35</cbc:ID>"))
    held = _response_of(ubl_api, other_order, str(uuid.uuid4()))
    assert _cbc(held, "OrderResponseCode") == ["AB"]
    assert any(note.startswith("UNIT_UNSUPPORTED") for note in _cbc(held, "Note"))

    order_id = _cbc(accepted, "SalesOrderID")[0]
    ubl_api.orders.CancelOrder(
        pb.CancelOrderRequest(id=order_id, reason="buyer withdrew"),
        metadata=auth(keys.manager),
        timeout=30,
    )
    rejected = _response_of(ubl_api, PEPPOL, accepted_id)  # a retry of the first submission
    assert _cbc(rejected, "OrderResponseCode") == ["RE"]


def test_no_order_response_unless_asked(ubl_api: Api) -> None:
    assert ubl_api.submit(PEPPOL).ubl_order_response == b""


# --- the same pipeline from a drop folder, and the vendored schemas ---


def test_a_ubl_file_dropped_in_a_folder_is_imported(
    db: Database, ubl_catalog: None, tmp_path: Path
) -> None:
    inbox = tmp_path / "drop" / "shop-a" / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "peppol.xml").write_text(PEPPOL)

    summary = FilePoller(db, DropSettings(root=tmp_path / "drop", settle_seconds=0)).run_due()

    assert summary.processed == 1
    assert (tmp_path / "drop" / "shop-a" / "processed" / "peppol.xml").exists()


def test_the_vendored_ubl_schemas_are_unmodified() -> None:
    recorded = {}
    for line in (UBL_DIR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name] = digest
    on_disk = {
        path.relative_to(UBL_DIR).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((UBL_DIR / "xsd").rglob("*.xsd"))
    }
    assert on_disk == recorded
    assert len(on_disk) == 19
