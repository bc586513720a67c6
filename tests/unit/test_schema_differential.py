"""lxml (the hot path) and xmlschema (the reference validator) agree on every document we have,
for the native schema and for the vendored OASIS UBL 2.1 Order schema."""

from __future__ import annotations

import io
from pathlib import Path
from xml.etree import ElementTree

import pytest
import xmlschema
from lxml import etree

from ordergate_server.formats.schemas import NATIVE_ORDER_XSD, UBL_ORDER_XSD, compiled

from ..support import EXAMPLES, order_xml

UBL_EXAMPLE = (EXAMPLES / "ubl" / "PEPPOL-BIS3-Order_Example.xml").read_text()


def _schema_for(payload: bytes) -> Path:
    return (
        UBL_ORDER_XSD
        if b"urn:oasis:names:specification:ubl:schema:xsd:Order-2" in payload
        else NATIVE_ORDER_XSD
    )


def _ubl(old: str, new: str) -> str:
    assert old in UBL_EXAMPLE, old
    return UBL_EXAMPLE.replace(old, new, 1)


def _documents() -> list[tuple[str, bytes]]:
    docs = [
        (p.relative_to(EXAMPLES).as_posix(), p.read_bytes())
        for p in sorted(EXAMPLES.rglob("*.xml"))
    ]
    variants = {
        "generated": order_xml(),
        "no-line-number": order_xml().replace("<LineNumber>1</LineNumber>", ""),
        "quantity-word": order_xml().replace("<Quantity>1</Quantity>", "<Quantity>one</Quantity>"),
        "negative-price": order_xml().replace(
            "<UnitPrice>9.90</UnitPrice>", "<UnitPrice>-1</UnitPrice>"
        ),
        "price-5-decimals": order_xml().replace("9.90", "9.12345"),
        "currency-lowercase": order_xml(currency="eur"),
        "four-streets": order_xml().replace(
            "<Street>Lindenstraße 12</Street>", "<Street>a</Street>" * 4
        ),
        "date-with-zone": order_xml().replace("2026-11-23T10:00:00Z", "2026-11-23+01:00"),
        "bad-date": order_xml().replace("2026-11-23T10:00:00Z", "23.11.2026"),
        "line-number-zero": order_xml().replace(
            "<LineNumber>1</LineNumber>", "<LineNumber>0</LineNumber>"
        ),
        "unknown-element": order_xml().replace(
            "<Channel>web</Channel>", "<Channel>web</Channel><Foo/>"
        ),
        "sku-and-barcode": order_xml().replace(
            "<Sku>SKU-1001</Sku>", "<Sku>A</Sku><Barcode>1</Barcode>"
        ),
        "long-id": order_xml("X" * 65),
        "wrong-namespace": order_xml().replace("urn:ordergate:order:v1", "urn:ordergate:order:v2"),
        "ubl-no-issue-date": _ubl("<cbc:IssueDate>2018-09-01</cbc:IssueDate>", ""),
        "ubl-bad-date": _ubl("2018-09-01", "01.09.2018"),
        "ubl-quantity-word": _ubl(
            '<cbc:Quantity unitCode="EA">120</cbc:Quantity>',
            '<cbc:Quantity unitCode="EA">many</cbc:Quantity>',
        ),
        "ubl-quantity-decimal": _ubl(">120</cbc:Quantity>", ">120.0</cbc:Quantity>"),
        "ubl-no-lines": UBL_EXAMPLE[: UBL_EXAMPLE.index("<cac:OrderLine>")] + "</Order>",
        "ubl-unknown-element": _ubl("<cbc:Note>Information", "<cbc:Foo/><cbc:Note>Information"),
        "ubl-out-of-order": _ubl(
            "<cbc:ID>34</cbc:ID>\n\t<cbc:SalesOrderID>112233</cbc:SalesOrderID>",
            "<cbc:SalesOrderID>112233</cbc:SalesOrderID><cbc:ID>34</cbc:ID>",
        ),
        "ubl-no-buyer": _ubl("<cac:BuyerCustomerParty>", "<cac:Unknown>").replace(
            "</cac:BuyerCustomerParty>", "</cac:Unknown>"
        ),
    }
    docs += [(name, xml.encode()) for name, xml in variants.items()]
    return docs


class References:
    """xmlschema's compiled schemas, built once per module (the UBL one takes seconds)."""

    def __init__(self) -> None:
        self._schemas: dict[Path, xmlschema.XMLSchema] = {}

    def __getitem__(self, path: Path) -> xmlschema.XMLSchema:
        if path not in self._schemas:
            self._schemas[path] = xmlschema.XMLSchema(str(path))
        return self._schemas[path]


@pytest.fixture(scope="module")
def references() -> References:
    return References()


@pytest.mark.parametrize(
    ("name", "payload"), _documents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_validators_agree(references: References, name: str, payload: bytes) -> None:
    schema = _schema_for(payload)
    assert _lxml_verdict(schema, payload) == _xmlschema_verdict(references[schema], payload), name


def _lxml_verdict(schema: Path, payload: bytes) -> bool:
    try:
        tree = etree.fromstring(payload, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return False
    return bool(compiled(schema).validate(tree))


def _xmlschema_verdict(reference: xmlschema.XMLSchema, payload: bytes) -> bool:
    # A file-like object: a str payload could be taken for a path or URL by xmlschema.
    try:
        return bool(reference.is_valid(io.BytesIO(payload)))
    except ElementTree.ParseError:  # not well-formed: no schema can accept it
        return False


@pytest.mark.parametrize("schema", [NATIVE_ORDER_XSD, UBL_ORDER_XSD], ids=["native", "ubl"])
def test_the_documents_cover_both_verdicts(references: References, schema: Path) -> None:
    verdicts = {
        _xmlschema_verdict(references[schema], payload)
        for _, payload in _documents()
        if _schema_for(payload) == schema
    }
    assert verdicts == {True, False}


def test_schema_file_is_in_the_package() -> None:
    assert Path(NATIVE_ORDER_XSD).is_file()
