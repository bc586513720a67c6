"""Property-based fuzzing of the XML pipeline (hypothesis): whatever the bytes, reading an order
and judging it never raises; it gives an order or a problem submission with reasons.

Bounded: a fixed number of examples per property, derandomized so CI runs the same cases each
time (a failure is reproducible from the test alone). A crash found here becomes an @example.
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ordergate_server.domain.model import OrderDraft
from ordergate_server.domain.rules import CatalogFacts, check_order
from ordergate_server.formats import DocumentLimits, UnreadableOrder, read_order
from ordergate_server.formats.batch import split_batch

from ..support import EXAMPLES, order_xml

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

SEEDS = [
    order_xml().encode(),
    (EXAMPLES / "full-order.xml").read_bytes(),
    (EXAMPLES / "ubl" / "PEPPOL-BIS3-Order_Example.xml").read_bytes(),
    (EXAMPLES / "ubl" / "UBL-Order-2.1-Example.xml").read_bytes(),
]

# Pieces that steer mutations towards the parser's interesting corners.
TOKENS = [
    b"<!DOCTYPE a [<!ENTITY x 'y'>]>",
    b"&x;",
    b"<![CDATA[",
    b"]]>",
    b"<?xml version='1.0' encoding='UTF-16'?>",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\x00",
    b"</",
    b"<",
    b">",
    b'"',
    b"xmlns:cbc='urn:x'",
    b"<Quantity>-1.5e9</Quantity>",
    b"<cbc:Quantity unitCode='KGM'>NaN</cbc:Quantity>",
    b"&#0;",
    b"&#x110000;",
    "\u202e\ufeff".encode(),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed document with a few random cuts, insertions and replacements."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "token"]))
        if action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif action == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        else:
            data[at:at] = draw(st.sampled_from(TOKENS))
    return bytes(data)


def _judged(payload: bytes) -> None:
    result = read_order(payload, DocumentLimits())
    assert isinstance(result, OrderDraft | UnreadableOrder)
    if isinstance(result, UnreadableOrder):
        assert result.reasons
        assert all(reason.message for reason in result.reasons)
    else:
        check_order(result, CatalogFacts(products={}, customer=None, ordering_client_id=1))


@FUZZ
@given(st.binary(max_size=4096))
@example(b"<Order xmlns='urn:ordergate:order:v1'/>")
@example(b"\xfe\xff\x00<")
def test_any_bytes_are_answered(payload: bytes) -> None:
    _judged(payload)


@FUZZ
@given(mutated())
def test_mutated_orders_are_answered(payload: bytes) -> None:
    _judged(payload)


@FUZZ
@given(mutated())
def test_mutated_batches_split_or_decline(payload: bytes) -> None:
    wrapped = (
        b'<Orders xmlns="urn:ordergate:order:v1">' + payload.split(b"?>", 1)[-1] + b"</Orders>"
    )
    parts = split_batch(wrapped, DocumentLimits())
    for part in parts or []:
        _judged(part)


@FUZZ
@given(st.text(max_size=300))
def test_any_text_in_a_field_is_answered(text: str) -> None:
    for field in ("OrderId", "CustomerAccount", "Sku", "Quantity", "Phone", "Country"):
        document = order_xml().replace(f"<{field}>", f"<{field}>{_escape(text)}", 1)
        _judged(document.encode("utf-8", errors="surrogatepass"))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
