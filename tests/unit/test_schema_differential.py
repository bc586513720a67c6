"""lxml (the hot path) and xmlschema (the reference validator) agree on every document we have."""

from __future__ import annotations

import io
from pathlib import Path
from xml.etree import ElementTree

import pytest
import xmlschema
from lxml import etree

from ordergate_server.formats.schemas import NATIVE_ORDER_XSD, compiled

from ..support import EXAMPLES, order_xml


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
    }
    docs += [(name, xml.encode()) for name, xml in variants.items()]
    return docs


@pytest.fixture(scope="module")
def reference() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(NATIVE_ORDER_XSD))


@pytest.mark.parametrize(
    ("name", "payload"), _documents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_validators_agree(reference: xmlschema.XMLSchema, name: str, payload: bytes) -> None:
    assert _lxml_verdict(payload) == _xmlschema_verdict(reference, payload), name


def _lxml_verdict(payload: bytes) -> bool:
    try:
        tree = etree.fromstring(payload, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return False
    return bool(compiled(NATIVE_ORDER_XSD).validate(tree))


def _xmlschema_verdict(reference: xmlschema.XMLSchema, payload: bytes) -> bool:
    # A file-like object: a str payload could be taken for a path or URL by xmlschema.
    try:
        return bool(reference.is_valid(io.BytesIO(payload)))
    except ElementTree.ParseError:  # not well-formed: no schema can accept it
        return False


def test_the_documents_cover_both_verdicts(reference: xmlschema.XMLSchema) -> None:
    verdicts = {_xmlschema_verdict(reference, payload) for _, payload in _documents()}
    assert verdicts == {True, False}


def test_schema_file_is_in_the_package() -> None:
    assert Path(NATIVE_ORDER_XSD).is_file()
